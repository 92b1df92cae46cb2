"""The context map: hidden states of texts (or of a word's corpus occurrences) for one or more models, mapped.

Per model, the states at every kept layer are stacked and ONE projection is fitted on them all, so
positions are comparable across layers and each token's path through the layers is a line on one map.
Several models are each fitted on their own and then aligned onto the first model's map by similarity
Procrustes on the points both share: the same text token (same text, same character span, whitespace
aside) at the same layer slot, or the same corpus occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engines import Engine
from ..errors import EmbedlensError
from ..lens import ModelLens, as_lens
from ..logitlens.tuned_files import resolve_decoder
from ..models.running import LayerSpec, check_texts
from ..reduce.options import ReduceOptions
from ..reduce.sweep import check_perplexities
from ..render.context import context_figure, group_colors
from ..render.notebook import result_html
from ..render.sweep import SweepPage
from ..timing import Timings
from .decoded_top import add_decoded_top
from .occurrences import DEFAULT_MAX_OCCURRENCES, DEFAULT_WINDOW, Occurrences, occurrences, word_pattern
from .projection import MIN_SHARED, ContextProjection, procrustes, project, project_sweep
from .states import DEFAULT_BATCH_SIZE, HiddenStates, hidden_states

SHARED_PROJECTION = "one projection per model, fitted once on the states of all kept layers stacked together"


@dataclass
class ContextPanel:
    """One model's map. ``table`` holds one entry per point (layer-major: every point of the first kept
    layer, then the next ...): text, position, token_id, token, display, layer, slot, group, focus,
    snippet, snippet_start/end (where the word sits in the snippet), doc, char_start/end."""

    alias: str
    model: dict[str, Any]
    layers: list[int]
    source: HiddenStates | Occurrences
    table: dict[str, Any]
    projection: ContextProjection
    coords: np.ndarray
    alignment: dict[str, Any] | None = None

    @property
    def n_points(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_per_layer(self) -> int:
        return self.n_points // max(len(self.layers), 1)


@dataclass
class ContextMap:
    """Everything ``embedlens context`` draws and saves. ``figure()`` gives the Plotly figure."""

    kind: str  # "texts" | "occurrences"
    texts: list[str]
    focus: str | None
    method: str
    dims: int
    seed: int
    runs: int
    layer_spec: str
    keep_special: bool
    panels: list[ContextPanel]
    notes: list[str] = field(default_factory=list)
    alignment_problem: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    sweep: Any = None  # a PerplexitySweep (embedlens.reduce.sweep) when several perplexities were asked for

    @property
    def multi_layer(self) -> bool:
        return any(len(p.layers) > 1 for p in self.panels)

    def title(self) -> str:
        what = (f"'{self.focus}' in context: {len(self.panels[0].source)} occurrences" if self.kind == "occurrences"
                else f"{len(self.texts)} text{'s' if len(self.texts) != 1 else ''}")
        models = ", ".join(p.alias for p in self.panels)
        return f"{what} · {models}"

    def subtitle(self) -> str:
        parts = []
        for p in self.panels:
            pr = p.projection
            bit = f"{self.method.upper() if self.method != 'tsne' else 't-SNE'}"
            if self.method == "tsne" and "perplexity" in pr.params:
                bit += f" (perplexity {float(pr.params['perplexity']):.3g})"
            if self.method == "umap" and "n_neighbors" in pr.params:
                bit += f" (n_neighbors {pr.params['n_neighbors']})"
            if pr.stability is not None:
                bit += f", stability {pr.stability:.2f} over {pr.runs} runs"
            else:
                bit += ", 1 run (several runs would measure stability)"
            parts.append(f"{p.alias}: {bit}" if len(self.panels) > 1 else bit)
        layers = "; ".join(f"layers {_layers_text(p.layers)}" for p in self.panels[:1])
        if self.multi_layer:
            layers += " — one projection shared by all layers"
        return " | ".join(parts) + f" | {layers}"

    def figure(self) -> Any:
        return context_figure(self)

    def _repr_html_(self) -> str:
        """Shown inline by Jupyter: title, projection figures, notes and the interactive map, offline."""
        return result_html(self.figure(), self.title(), [self.subtitle(), *self.notes])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "texts": list(self.texts), "focus": self.focus, "method": self.method, "dims": self.dims,
            "seed": self.seed, "runs": self.runs, "layer_spec": self.layer_spec, "keep_special": self.keep_special,
            "projection_scope": SHARED_PROJECTION if self.multi_layer else "one projection per model",
            "models": [{"alias": p.alias, **p.model, "layers": list(p.layers), "n_points": p.n_points,
                        "projection": p.projection.to_dict(), "alignment": p.alignment} for p in self.panels],
            "alignment_problem": self.alignment_problem, "notes": list(self.notes), "settings": dict(self.settings),
            "timings": dict(self.timings), "sweep": None if self.sweep is None else self.sweep.to_dict(),
        }

    def sweep_page(self) -> Any:
        """The small multiples of a perplexity sweep (:class:`~embedlens.render.sweep.SweepPage`), points coloured
        by text (or written form) as in context.html."""
        if self.sweep is None:
            raise EmbedlensError("this context map is not a perplexity sweep (give several perplexities)")
        t = self.panels[0].table
        colors = group_colors(self)
        palette = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in colors.values()], dtype=np.uint8)
        index = {g: i for i, g in enumerate(colors)}
        rgb = palette[np.fromiter((index[g] for g in t["group"]), dtype=np.int64, count=len(t["group"]))]
        details = [f"{g} · layer {layer}" for g, layer in zip(t["group"], t["layer"].tolist(), strict=True)]
        panels = [(f"perplexity {m.perplexity:g}" + (f" (clamped to {m.params['perplexity']:.3g})"
                                                     if m.params["perplexity"] != m.perplexity else ""), m.quality_text())
                  for m in self.sweep.maps]
        return SweepPage(title=f"{self.title()} · perplexity sweep",
                         subtitle=f"t-SNE, same seed ({self.seed}), one k-NN graph of {self.sweep.graph['k']} "
                                  "neighbours per point shared by every map · hover a point: the same point is marked "
                                  "on every map", display=list(t["display"]), details=details, rgb=rgb,
                         legend=[[c, g] for g, c in colors.items()], legend_title="text" if self.kind == "texts"
                         else "written as", panels=panels, coords=[m.coords for m in self.sweep.maps])


def _layers_text(layers: Sequence[int]) -> str:
    if len(layers) > 3 and list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}–{layers[-1]}"
    return ",".join(map(str, layers))


def _aliases(lenses: Sequence[Any]) -> list[str]:
    out: list[str] = []
    for lens in lenses:
        name = str(lens.name)
        alias, k = name, 2
        while alias in out:
            alias, k = f"{name}-{k}", k + 1
        out.append(alias)
    return out


def _strip_spans(text: str, offsets: np.ndarray) -> np.ndarray:
    """Token character spans without their leading/trailing whitespace (tokenizers differ on that)."""
    out = offsets.copy()
    for j, (a, b) in enumerate(offsets.tolist()):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if lead < len(piece):
            out[j] = (a + lead, b - trail)
    return out


def _short(text: str, width: int = 28) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _text_table(hs: HiddenStates, alias: str, focus: str | None, ignore_case: bool) -> dict[str, Any]:
    pattern = word_pattern(focus, ignore_case=ignore_case) if focus else None
    cols: dict[str, list] = {k: [] for k in ("text", "position", "token_id", "token", "display", "focus", "snippet",
                                            "char_start", "char_end", "key_start", "key_end")}
    for i, ts in enumerate(hs.texts):
        n = len(ts.ids)
        if pattern is not None:
            spans = np.asarray([m.span() for m in pattern.finditer(ts.text)], dtype=np.int64).reshape(-1, 2)
            hit = ((ts.offsets[:, None, 0] < spans[None, :, 1]) & (ts.offsets[:, None, 1] > spans[None, :, 0])).any(axis=1)
        else:
            hit = np.zeros(n, dtype=bool)
        keys = _strip_spans(ts.text, ts.offsets)
        cols["text"].append(np.full(n, i))
        cols["position"].append(ts.positions)
        cols["token_id"].append(ts.ids)
        cols["token"].extend(ts.tokens)
        cols["display"].extend(ts.display)
        cols["focus"].append(hit)
        cols["snippet"].extend([ts.text] * n)
        cols["char_start"].append(ts.offsets[:, 0])
        cols["char_end"].append(ts.offsets[:, 1])
        cols["key_start"].append(keys[:, 0])
        cols["key_end"].append(keys[:, 1])
    base = {k: (np.concatenate(v) if k not in ("token", "display", "snippet") else v) for k, v in cols.items()}
    labels = [f"text {i + 1}: {_short(ts.text)}" for i, ts in enumerate(hs.texts)]
    base["group"] = [labels[t] for t in base["text"].tolist()]
    base["doc"] = [""] * len(base["group"])
    base["snippet_start"] = base["char_start"]
    base["snippet_end"] = base["char_end"]
    return _by_layer(base, hs.layers, alias)


def _occurrence_table(occ: Occurrences, alias: str) -> dict[str, Any]:
    n = len(occ)
    base = {
        "text": np.arange(n), "position": np.asarray([0] * n), "token_id": np.asarray([t[0] for t in occ.token_ids]),
        "token": list(occ.token_raw), "display": list(occ.token_display), "focus": np.ones(n, dtype=bool),
        "snippet": list(occ.snippets), "char_start": occ.spans[:, 0], "char_end": occ.spans[:, 1],
        "key_start": occ.spans[:, 0], "key_end": occ.spans[:, 1], "group": list(occ.forms), "doc": list(occ.docs),
        "snippet_start": occ.snippet_spans[:, 0], "snippet_end": occ.snippet_spans[:, 1],
    }
    return _by_layer(base, occ.layers, alias)


def _by_layer(base: dict[str, Any], layers: Sequence[int], alias: str) -> dict[str, Any]:
    """Repeat per-point columns once per kept layer (layer-major), adding layer, slot and model."""
    n_l = len(layers)
    n = len(base["group"])
    out: dict[str, Any] = {}
    for k, v in base.items():
        out[k] = np.tile(np.asarray(v), n_l) if isinstance(v, np.ndarray) else list(v) * n_l
    out["layer"] = np.repeat(np.asarray(layers, dtype=np.int64), n)
    out["slot"] = np.repeat(np.arange(n_l, dtype=np.int64), n)
    out["model"] = [alias] * (n * n_l)
    return out


def _align(panels: list[ContextPanel], kind: str) -> str | None:
    """Align every panel onto the first by similarity Procrustes on shared points; return a problem, if any."""
    if len(panels) < 2:
        return None
    ref = panels[0]
    same_depth = len({len(p.layers) for p in panels}) == 1
    problems = []

    def keys(p: ContextPanel) -> dict[tuple, int]:
        t = p.table
        slots = t["slot"] if same_depth else np.where(t["slot"] == len(p.layers) - 1, -1, -2)
        doc = t["doc"]
        out: dict[tuple, int] = {}
        for row, (d, a, b, s, x) in enumerate(zip(doc, t["key_start"].tolist(), t["key_end"].tolist(),
                                                 slots.tolist(), t["text"].tolist(), strict=True)):
            if s == -2:
                continue
            key = (d, a, b, s) if kind == "occurrences" else (x, a, b, s)
            out.setdefault(key, row)
        return out

    ref_keys = keys(ref)
    ref.alignment = {"aligned": True, "reference": True}
    for p in panels[1:]:
        mine = keys(p)
        shared = [k for k in mine if k in ref_keys]
        if len(shared) < MIN_SHARED:
            why = (f"{p.alias} shares only {len(shared)} token(s) with {ref.alias} (same text and character span"
                   f"{'' if same_depth else ', last kept layer'}); Procrustes needs at least {MIN_SHARED}")
            p.alignment = {"aligned": False, "reason": why}
            problems.append(why)
            continue
        rows_p = np.asarray([mine[k] for k in shared])
        rows_r = np.asarray([ref_keys[k] for k in shared])
        fit = procrustes(p.coords[rows_p], ref.coords[rows_r], scale=True)
        p.coords = fit.apply(p.coords)
        p.projection.aligned_runs = [fit.apply(m) for m in p.projection.aligned_runs]
        p.alignment = {"aligned": True, "aligned_to": ref.alias, "method": "orthogonal Procrustes with scale",
                       "matched_on": "same text and character span, same layer slot" if kind == "texts"
                       else "same corpus occurrence", **fit.to_dict()}
    return "; ".join(problems) if problems else None


def context_map(
    models: Sequence[Any] | Any,
    texts: Sequence[str] | None = None,
    *,
    corpus: Any = None,
    focus: str | None = None,
    layers: LayerSpec = -1,
    reduce: ReduceOptions | None = None,
    runs: int = 1,
    perplexities: Sequence[float] | None = None,
    keep_special: bool = False,
    max_occurrences: int = DEFAULT_MAX_OCCURRENCES,
    window: int = DEFAULT_WINDOW,
    ignore_case: bool = True,
    decoder: Any = "logit",
    batch_size: int | None = None,
    progress: bool = True,
    engine: Engine | None = None,
    states_dir: Any = None,
) -> ContextMap:
    """Hidden states of ``texts`` (or of every occurrence of ``focus`` in ``corpus``) mapped per model.

    Args:
        models: one model (spec or ModelLens) or several; several are aligned onto the first.
        texts: the texts, when no ``corpus`` is given.
        corpus: an opened corpus (:func:`~embedlens.corpus.reading.open_corpus`) or a corpus spec; then
            ``focus`` is the word whose occurrences are mapped.
        focus: the word to highlight in ``texts`` (every position of it), or to look for in ``corpus``.
        decoder: the hovers' next-token lens: ``"logit"``, ``"tuned"`` (the model's cached tuned lens) or a
            lens path (:func:`~embedlens.logitlens.tuned_files.resolve_decoder`, checked before any weight is read).
        layers: ``-1``, ``"all"`` or ``"0,6,12"``; with several, one projection is shared by all layers.
        reduce: the map (:class:`~embedlens.reduce.options.ReduceOptions`; default t-SNE 2-D, seed 0: see
            :func:`~embedlens.contextual.projection.project`); its ``seed`` also seeds the sample of occurrences
            when there are more than ``max_occurrences``.
        runs: fit the map this many times (seeds ``seed, seed + 1, ...``) and measure its stability.
        perplexities: several t-SNE perplexities (one model, one run) make a sweep
            (:func:`~embedlens.reduce.sweep.perplexity_sweep`, ``ContextMap.sweep``): one map per value from one
            k-NN graph; the panel shows the largest.
        engine, states_dir: where the occurrence states are computed and written (see
            :func:`~embedlens.contextual.occurrences.occurrences`).
    """
    timings = Timings()
    reduce = ReduceOptions("tsne") if reduce is None else reduce
    if reduce.method == "axes":
        raise EmbedlensError("word axes map a vocabulary; hidden states take `pca`, `tsne` or `umap`")
    model_list = list(models) if isinstance(models, list | tuple) else [models]
    if not model_list:
        raise EmbedlensError("no model given")
    points = _Points.checked(texts, corpus, focus, layers=layers, keep_special=keep_special,
                             max_occurrences=max_occurrences, window=window, ignore_case=ignore_case,
                             batch_size=batch_size, progress=progress, seed=reduce.seed, engine=engine,
                             states_dir=states_dir)
    reduce, sweep_values = _sweep_values(reduce, perplexities, runs=runs, n_models=len(model_list))
    lenses = [as_lens(m) for m in model_list]
    decoders = [resolve_decoder(decoder, lens) if lens.meta.get("causal") else None for lens in lenses]
    notes: list[str] = []
    panels: list[ContextPanel] = []
    sweep = None
    for lens, lens_decoder, alias in zip(lenses, decoders, _aliases(lenses), strict=True):
        prefix = f"{alias}: " if len(lenses) > 1 else ""  # whose note it is, when there are several
        with timings.stage(f"{alias}: states"):
            src, table = points.read(lens, alias, notes, one_model=len(lenses) == 1)
        with timings.stage(f"{alias}: projection"):
            proj, sweep = _project(src, table, lens, alias, lens_decoder, reduce, runs, sweep_values, notes, prefix)
        notes.extend(prefix + n for n in proj.notes)
        if proj.point_stability is not None:
            table["stability"] = proj.point_stability.astype(np.float32)
        panels.append(ContextPanel(alias, {**lens.manifest()}, list(src.layers), src, table, proj, proj.coords.copy()))
    problem = _align(panels, points.kind)
    if problem:
        notes.append(f"maps drawn unaligned: {problem}")
    timings["total"] = timings.since_start()
    return ContextMap(points.kind, points.texts, focus, reduce.method, reduce.n_components, reduce.seed, runs,
                      str(layers), keep_special, panels, notes, problem, points.settings(reduce, sweep_values, panels),
                      dict(timings), sweep)


@dataclass
class _Points:
    """What a context map's points are (``texts``' tokens, or ``focus``'s occurrences in ``corpus``) and how
    each model's states of them are read."""

    kind: str  # "texts" or "occurrences"
    texts: list[str]
    corpus: Any
    focus: str | None
    layers: LayerSpec
    keep_special: bool
    max_occurrences: int
    window: int
    ignore_case: bool
    batch_size: int | None
    progress: bool
    seed: int  # of the sample of occurrences
    engine: Engine | None
    states_dir: Any

    @classmethod
    def checked(cls, texts: Sequence[str] | None, corpus: Any, focus: str | None, **how: Any) -> _Points:
        """Texts or a corpus (with a ``focus`` word), refused when both or neither make sense."""
        if corpus is None:
            return cls("texts", check_texts(texts or []), None, focus, **how)
        if texts:
            raise EmbedlensError("give either `texts` or `corpus`, not both")
        if not focus:
            raise EmbedlensError("`corpus` needs `focus=WORD`: the word whose occurrences are mapped")
        return cls("occurrences", [], corpus, focus, **how)

    def read(self, lens: ModelLens, alias: str, notes: list[str], *, one_model: bool,
             ) -> tuple[HiddenStates | Occurrences, dict[str, Any]]:
        """One model's states of the points and their point table; what they say is added to ``notes``."""
        if self.kind == "occurrences":
            src = occurrences(
                lens, self.corpus, self.focus or "", layers=self.layers, max_occurrences=self.max_occurrences,
                window=self.window, ignore_case=self.ignore_case, batch_size=self.batch_size or 64,
                progress=self.progress, seed=self.seed, engine=self.engine,
                states_dir=None if self.states_dir is None else
                (self.states_dir if one_model else Path(self.states_dir) / alias))
            notes.extend(f"{alias}: {n}" for n in src.notes)
            return src, _occurrence_table(src, alias)
        states = hidden_states(lens, self.texts, layers=self.layers, keep_special=self.keep_special,
                               batch_size=self.batch_size or DEFAULT_BATCH_SIZE)
        table = _text_table(states, alias, self.focus, self.ignore_case)
        if self.focus and not table["focus"].any():
            notes.append(f"`focus` '{self.focus}' does not occur as a whole word in the texts")
        return states, table

    def settings(self, reduce: ReduceOptions, sweep_values: list[float] | None,
                 panels: list[ContextPanel]) -> dict[str, Any]:
        """The map's settings as its manifest records them."""
        settings = {"perplexity": reduce.perplexity if sweep_values is None else sweep_values,
                    "n_neighbors": reduce.n_neighbors, "min_dist": reduce.min_dist, "metric": reduce.metric,
                    "batch_size": self.batch_size, "ignore_case": self.ignore_case}
        if self.kind == "occurrences":
            source, engine = panels[0].source, self.engine
            settings.update({"corpus": source.corpus, "max_occurrences": self.max_occurrences, "window": self.window,
                             "n_found": source.n_found, "sample_seed": self.seed, "engine": source.engine,
                             "states_dir": str(self.states_dir) if self.states_dir is not None and engine is not None
                             and engine.name == "ray" else None})
        return settings


def _sweep_values(reduce: ReduceOptions, perplexities: Sequence[float] | None, *, runs: int, n_models: int,
                  ) -> tuple[ReduceOptions, list[float] | None]:
    """``(reduce, the perplexities of a sweep or None)``: one perplexity is the map's own, several a sweep
    (one model, one t-SNE run)."""
    if perplexities is None:
        return reduce, None
    values = check_perplexities(perplexities)
    if len(values) == 1:
        return reduce.replace(perplexity=values[0]), None
    if reduce.method != "tsne" or runs != 1 or n_models != 1:
        raise EmbedlensError("a perplexity sweep maps one model once with t-SNE: give method='tsne', runs=1 "
                             "and one model")
    return reduce, values


def _project(src: HiddenStates | Occurrences, table: dict[str, Any], lens: ModelLens, alias: str, decoder: Any,
             reduce: ReduceOptions, runs: int, sweep_values: list[float] | None, notes: list[str],
             prefix: str) -> tuple[ContextProjection, Any]:
    """One model's projection (and its sweep, if asked); the hovers' top next tokens go into ``table``."""
    x = src.stacked()
    decoded_note = add_decoded_top(table, lens, x, decoder=decoder)  # hover top-3 per point
    if decoded_note:
        notes.append(prefix + decoded_note)
    if x.shape[0] < 4:
        raise EmbedlensError(f"only {x.shape[0]} points to map with {alias}; give longer or more texts")
    if sweep_values is not None:
        sweep, proj = project_sweep(x, sweep_values, reduce)
        return proj, sweep
    return project(x, reduce, runs=runs), None
