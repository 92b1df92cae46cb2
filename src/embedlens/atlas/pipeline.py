"""The atlas pipeline: count -> select -> reduce -> measure faithfulness -> (draw and save).

:func:`build_atlas` returns an :class:`AtlasResult` and writes nothing; :func:`write_atlas` also saves
it (``map.html``, ``map.png``, ``points.parquet``, ``manifest.json``) and is what ``embedlens map`` and
the quick-start ``embedlens demo`` call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import ensure_writable_dir
from ..corpus.frequencies import TokenFrequencies, count_tokens
from ..corpus.reading import Corpus, open_corpus
from ..engines import Engine
from ..errors import EmbedlensError, require
from ..lens import as_view
from ..neighbors.index import EXACT_MAX
from ..neighbors.knn import build_knn, cached_knn
from ..parts_of_speech import check_tagger, space_parts_of_speech
from ..reduce.axes import resolve_axes
from ..reduce.knn import map_graph
from ..reduce.options import ReduceOptions
from ..reduce.quality import (
    LOCAL_DEFINITION,
    map_faithfulness,
    projection_quality,
    query_faithfulness,
    query_truth,
    space_truth,
)
from ..timing import Timings
from .clusters import check_clusters, find_clusters
from .projection import Projection, projection_path, save_projection
from .result import AtlasResult, check_renderer
from .selection import Selection, select_rows

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

log = logging.getLogger("embedlens")

DEFAULT_CORPUS = "lee"
COLORS = ("frequency", "length", "script", "pos", "faithfulness", "none")
QUALITY_K, QUALITY_SAMPLE = 10, 2000
MIN_POINTS = 4


def check_options(reduce: ReduceOptions | None = None, *, color: str = "frequency", min_count: int = 1,
                  clusters: Any = None) -> None:
    """Refuse bad map options before any work (a model load, a corpus count, minutes of t-SNE); the reducer's
    own settings were checked when ``reduce`` was made."""
    if reduce is not None and not isinstance(reduce, ReduceOptions):
        raise EmbedlensError(f"`reduce` must be a ReduceOptions, got {type(reduce).__name__}")
    if color not in COLORS:
        raise EmbedlensError(f"unknown colour '{color}' (choose {', '.join(COLORS)})")
    if min_count < 1:
        raise EmbedlensError(f"`min_count` must be at least 1, got {min_count}")
    if color == "pos":  # spaCy missing: say so before a model load or minutes of t-SNE
        check_tagger()
    if clusters is not None:
        check_clusters(clusters)


def build_atlas(
    lens: Lens | SpaceView,
    *,
    which: str | None = None,
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Corpus | None = None,
    frequencies: TokenFrequencies | None = None,
    min_count: int = 1,
    all_tokens: bool = False,
    reduce: ReduceOptions | None = None,
    color: str = "frequency",
    size_by_frequency: bool = False,
    progress: bool = True,
    clusters: str | int | None = None,
    engine: Engine | None = None,
    local_recall: bool = True,
    neighbors: Any = None,
) -> AtlasResult:
    """Map a vocabulary (or the part of it a corpus uses) to 2-D or 3-D and measure how faithful the map is.

    The stages: :func:`count_stage` -> :func:`select_stage` -> :func:`reduce_stage` -> quality ->
    :func:`cluster_stage`; each can be called on its own.

    Args:
        lens: a space (``lens.input``, ``lens.output``) or a handle (its ``which`` space, default input).
        which: with a handle, ``input`` or ``output`` (the same as passing ``lens.output``).
        corpus: an opened corpus (:func:`~embedlens.corpus.reading.open_corpus`, which also takes the text
            column of JSONL / Parquet / dataset sources) or corpus specs (files, folders, ``lee``,
            ``enwiki-sample``). With neither ``corpus`` nor ``all_tokens``, the demo corpus ``lee`` is used.
        frequencies: counts already made with :func:`~embedlens.corpus.frequencies.count_tokens` (skips counting).
        min_count: keep tokens seen at least this often in the corpus (ignored with ``all_tokens``).
        all_tokens: every row of the space, special tokens included; a corpus, if given, only colours.
        reduce: how the map is made (:class:`~embedlens.reduce.options.ReduceOptions`: the method, ``pca``,
            ``tsne``, ``umap`` or ``axes`` with its axis queries, the dimensions, the metric, also used by the
            quality figures, the seed of every random step, and each method's settings); default PCA 2-D, cosine,
            seed 0.
        color: ``frequency`` (log scale), ``length`` (characters), ``script``, ``pos`` (part of speech, tagged
            by spaCy and cached per vocabulary: :mod:`embedlens.parts_of_speech`), ``faithfulness`` (each
            point's local recall@10, 0 to 1) or ``none``.
        size_by_frequency: bigger markers for more frequent tokens.
        progress: show a progress bar while counting a large corpus.
        clusters: ``"auto"``, ``"none"`` or a number of clusters, found on the full-space k-NN graph and
            labelled (see :mod:`embedlens.atlas.clusters`); default ``auto`` for t-SNE and UMAP, else none.
        engine: where the corpus is counted (:func:`~embedlens.engines.open_engine`; default this process).
        local_recall: measure each point's local recall (:attr:`AtlasResult.local_recall`) against the
            true neighbours of :func:`truth_stage`; a whole-space map without a graph of its own (PCA,
            axes) then needs the space's k-NN graph, built and cached once when missing.
        neighbors: a k-NN graph of the mapped rows (a :class:`~embedlens.neighbors.knn.KnnGraph`, e.g. the
            one a perplexity sweep shares) for t-SNE/UMAP to start from, instead of finding one.
    """
    reduce = ReduceOptions() if reduce is None else reduce
    check_options(reduce, color=color, min_count=min_count, clusters=clusters)
    view = as_view(lens, which)
    axes = None
    if reduce.method == "axes":  # resolved before any corpus count: a bad axis word fails at once
        axes = resolve_axes(view, [reduce.x_axis, reduce.y_axis, reduce.z_axis])
    timings = Timings()
    if frequencies is None and (corpus is not None or not all_tokens):
        with timings.stage("count"):
            frequencies = count_stage(view, corpus, progress=progress, engine=engine)
    notes = _option_notes(frequencies, color=color, all_tokens=all_tokens, min_count=min_count,
                          local_recall=local_recall)
    with timings.stage("select"):
        chosen, X, full = select_stage(view, frequencies, all_tokens=all_tokens, min_count=min_count)
    with timings.stage("reduce"):
        reducer, coords = reduce_stage(view, X, full, reduce, axes=axes, neighbors=neighbors)
    m = _Map(view, reduce, frequencies, chosen, X, full, reducer, coords, timings, notes)
    timings["reduce_stages"] = dict(getattr(reducer, "timings_", {}) or {})
    notes.extend(getattr(reducer, "notes_", []) or [])
    quality, local, truth_info = _measure(m, color=color, local_recall=local_recall, progress=progress)
    pos = pos_info = None
    if color == "pos":
        with timings.stage("pos"):
            pos, pos_info = space_parts_of_speech(view, chosen.rows)
    clustering = _clusters(m, clusters)
    params = _params(m, quality, truth_info, pos_info, axes)
    return _result(m, quality=quality, local=local, pos=pos, clustering=clustering, params=params, color=color,
                   size_by_frequency=size_by_frequency)


@dataclass
class _Map:
    """A map between its stages: the rows chosen and their vectors, the fitted reducer and its coordinates,
    and the timings and notes each stage adds to."""

    view: SpaceView
    reduce: ReduceOptions
    frequencies: TokenFrequencies | None
    chosen: Selection
    X: np.ndarray  # float32 (n_points, d): the vectors of the mapped rows
    full: bool  # the rows are the whole space, in order
    reducer: Any
    coords: np.ndarray  # float32 (n_points, dims)
    timings: Timings
    notes: list[str]

    @property
    def display(self) -> list[str]:
        """The readable token of each point."""
        space = self.view.space
        return [space.display[i] for i in self.chosen.rows] if not self.full else list(space.display)

    def counts(self, dtype: Any = None) -> np.ndarray | None:
        """Each point's corpus count, or None without a corpus."""
        if self.frequencies is None:
            return None
        return np.asarray(self.frequencies.counts, dtype=dtype)[self.chosen.rows]


def _option_notes(frequencies: TokenFrequencies | None, *, color: str, all_tokens: bool, min_count: int,
                  local_recall: bool) -> list[str]:
    """What the map says about options that do nothing here; a colour it cannot draw is refused."""
    notes = []
    if all_tokens and min_count > 1:
        notes.append("`min_count` is ignored with `all_tokens` (every token is mapped)")
    if color == "frequency" and frequencies is None:
        notes.append("no corpus was read, so there are no frequencies: colouring by token length "
                     "(give a `corpus` to colour by frequency)")
    if color == "faithfulness" and not local_recall:
        raise EmbedlensError("color='faithfulness' needs local_recall=True")
    return notes


def _measure(m: _Map, *, color: str, local_recall: bool, progress: bool,
             ) -> tuple[Any, np.ndarray | None, dict[str, Any] | None]:
    """:func:`quality_stage` when the map has enough points for it, else a note: ``(quality, local, truth_info)``."""
    rows = m.chosen.rows
    if rows.size > QUALITY_K + 1:  # one recall definition for every map, axes included
        return quality_stage(m.view, m.X, m.coords, m.reducer, m.full, metric=m.reduce.metric, seed=m.reduce.seed,
                             local_recall=local_recall, progress=progress, timings=m.timings,
                             every_point=True if color == "faithfulness" else None)
    m.notes.append(f"only {rows.size} points: faithfulness (k={QUALITY_K}) not measured")
    if color == "faithfulness":
        m.notes.append("no local recall to colour by: colouring by token length")
    return None, None, None


def _clusters(m: _Map, clusters: str | int | None) -> Any:
    """:func:`cluster_stage` when asked for (default: for t-SNE and UMAP maps), else None."""
    chosen = clusters if clusters is not None else ("auto" if m.reduce.method in ("tsne", "umap") else "none")
    if chosen == "none":
        return None
    with m.timings.stage("clusters"):
        clustering = cluster_stage(m.X, m.coords, m.reducer, m.display, m.counts(), clusters=chosen,
                                   metric=m.reduce.metric, seed=m.reduce.seed)
    m.notes.extend(clustering.notes)
    return clustering


def _params(m: _Map, quality: Any, truth_info: dict[str, Any] | None, pos_info: dict[str, Any] | None,
            axes: list[dict[str, Any] | None] | None) -> dict[str, Any]:
    """The manifest's ``params``: what the reducer used, the selection, how quality was measured, the axes."""
    params = {
        "reducer": dict(getattr(m.reducer, "params_", {}) or {}),
        "selection": m.chosen.to_dict(),
        "quality": {"k": QUALITY_K, "sample": QUALITY_SAMPLE, "seed": m.reduce.seed, "metric": m.reduce.metric,
                    "recall": "neighbour recall@k: sampled queries, neighbours searched over all points, "
                              "in the space and on the map",
                    "trustworthiness": "within the seeded sample"},
        "which": m.view.which,
    }
    if truth_info is not None:
        params["local_recall"] = {"k": quality.k, "definition": LOCAL_DEFINITION.format(k=quality.k),
                                  "truth": truth_info}
    if pos_info is not None:
        params["pos"] = pos_info
    if axes is not None:
        params["axes"] = {name: {k: v for k, v in a.items() if k != "vectors"}
                          for name, a in zip("xyz", axes, strict=False) if a is not None}
    return params


def _result(m: _Map, *, quality: Any, local: np.ndarray | None, pos: Any, clustering: Any, params: dict[str, Any],
            color: str, size_by_frequency: bool) -> AtlasResult:
    """The :class:`AtlasResult`, with a note when the map is not faithful to the space's neighbourhoods."""
    space, rows, frequencies, method = m.view.space, m.chosen.rows, m.frequencies, m.reduce.method
    result = AtlasResult(
        coords=m.coords,
        ids=np.asarray(space.ids, dtype=np.int64)[rows],
        labels=[space.labels[i] for i in rows] if not m.full else list(space.labels),
        display=m.display,
        frequencies=m.counts(np.int64),
        quality=quality,
        model=m.view.manifest(),
        space=space.name,
        method=method,
        dims=m.reduce.n_components,
        metric=m.reduce.metric,
        seed=m.reduce.seed,
        color=color,
        size_by_frequency=size_by_frequency,
        params=params,
        corpus=frequencies.corpus if frequencies is not None else None,
        counting={k: v for k, v in frequencies.to_dict().items() if k != "corpus"} if frequencies is not None else None,
        timings=dict(m.timings),
        notes=m.notes,
        clustering=clustering,
        pca=getattr(m.reducer, "pca_", None),
        local_recall=local,
        pos=pos,
    )
    if result.is_low_quality() and method != "axes":  # word axes are chosen for meaning, not neighbours
        result.notes.append("this map is not faithful to the neighbourhoods of the space (see the quality figures): "
                            "read clusters with care" + ("; t-SNE or UMAP keep neighbours better" if method == "pca" else ""))
    return result


def count_stage(view: SpaceView, corpus: Any = None, *, progress: bool = True, engine: Engine | None = None,
                ) -> TokenFrequencies:
    """How often each token of ``view``'s space occurs in ``corpus`` (an opened corpus or specs; default: the
    demo corpus), counted on ``engine`` (default this process)."""
    opened = corpus if isinstance(corpus, Corpus) else open_corpus(
        DEFAULT_CORPUS if corpus is None else ([str(corpus)] if isinstance(corpus, str | os.PathLike)
                                               else [str(c) for c in corpus]))
    frequencies = count_tokens(view, opened, progress=progress, engine=engine)
    if frequencies.n_tokens == 0:
        raise EmbedlensError(f"the corpus {', '.join(opened.specs)} produced no tokens")
    return frequencies


def select_stage(view: SpaceView, frequencies: TokenFrequencies | None, *, all_tokens: bool = False,
                 min_count: int = 1) -> tuple[Any, np.ndarray, bool]:
    """The rows to map, their vectors (float32) and whether they are the whole space, in order."""
    space = view.space
    if frequencies is not None and frequencies.counts.shape != (len(space),):
        raise EmbedlensError(f"the frequencies have {frequencies.counts.shape[0]} rows but {space.name} has {len(space)}")
    counts = frequencies.counts if frequencies is not None else None
    chosen = select_rows(len(space), counts=counts, special=space.special, all_tokens=all_tokens, min_count=min_count)
    rows = chosen.rows
    if rows.size < MIN_POINTS:
        raise EmbedlensError(f"only {rows.size} token(s) left after filtering; a map needs at least {MIN_POINTS} "
                             "(lower `min_count` or use a larger corpus)")
    full = rows.size == len(space) and np.array_equal(rows, np.arange(len(space)))
    X = np.asarray(space.vectors if full else space.vectors[rows], dtype=np.float32)
    return chosen, X, full


def reduce_stage(view: SpaceView, X: np.ndarray, full: bool, reduce: ReduceOptions, *,
                 axes: list[dict[str, Any] | None] | None = None, neighbors: Any = None) -> tuple[Any, np.ndarray]:
    """The fitted reducer ``reduce`` describes and the map's coordinates (float32); an axes map takes its
    ``axes`` resolved (:func:`~embedlens.reduce.axes.resolve_axes`). A t-SNE/UMAP map starts from ``neighbors``
    when given, else a map of the whole space from the cached ``embedlens knn`` graph of ``view`` when one holds
    enough neighbours."""
    reducer = reduce.reducer(axes)
    found = Timings()
    with found.stage("knn"):
        graph = neighbors if neighbors is not None else whole_space_graph(view, reducer, X.shape[0], full,
                                                                          reduce.metric)
    coords = reducer.fit_transform(X, graph)
    if graph is not None:  # the graph's time (read or built) is the reducer's k-NN stage
        for stage in ("knn", "total"):
            reducer.timings_[stage] = reducer.timings_.get(stage, 0.0) + found["knn"]
    return reducer, np.asarray(coords, dtype=np.float32)


def quality_stage(view: SpaceView, X: np.ndarray, coords: np.ndarray, reducer: Any, full: bool, *, metric: str = "cosine",
                  seed: int = 0, local_recall: bool = True, every_point: bool | None = None,
                  progress: bool = False, timings: dict[str, Any] | None = None,
                  ) -> tuple[Any, np.ndarray | None, dict[str, Any] | None]:
    """The map's quality figures and, with ``local_recall``, each point's local recall and where its truth came from.

    ``every_point``: measure the local recall of every point (True; a whole-space map then builds the space's
    k-NN graph if it is not cached), of the recall's query rows only (False), or of every point when the
    truth is at hand: the reducer's own graph, the space's cached graph or a subset's search (None).
    Returns ``(quality, local, truth_info)`` (the last two None without ``local_recall``).
    """
    timings = {} if timings is None else timings
    clock = Timings()
    own = getattr(reducer, "neighbors_", None)
    cached = None if own is not None or not full else _cached_space_graph(view, metric)

    found: dict[str, Any] = {}

    def rows_truth() -> Any:
        """The recall's true neighbours: the reducer's exact graph, else (whole space) :func:`query_truth`."""
        if own is not None or not full or X.shape[0] <= QUALITY_K + 1:
            return own
        try:
            nb, found["info"] = query_truth(view, QUALITY_K, sample=QUALITY_SAMPLE, seed=seed, metric=metric,
                                            graph=cached)
            return nb
        except (EmbedlensError, OSError):  # e.g. an unreadable space folder: the figures search for themselves
            return None

    if not local_recall:
        quality = projection_quality(X, coords, k=QUALITY_K, sample=QUALITY_SAMPLE, seed=seed, metric=metric,
                                     space_neighbors=rows_truth())
        timings["quality"] = clock.since_start()
        return quality, None, None
    at_hand = cached is not None or any(getattr(reducer, name, None) is not None for name in ("neighbors_", "graph_"))
    if every_point is False or (every_point is None and full and not at_hand):
        # A whole-space PCA or axes map has no graph of its own; building one costs ~30 s for SmolLM2 where
        # the map took one: measure the recall's query rows only, and say how to get the rest.
        quality, local = query_faithfulness(X, coords, QUALITY_K, sample=QUALITY_SAMPLE, seed=seed, metric=metric,
                                            space_neighbors=rows_truth())
        timings["quality"] = clock.since_start()
        if quality.n_queries == X.shape[0]:
            source = "exact search for every point (each is one of the recall's queries)"
        else:
            whence = found["info"]["source"] if "info" in found else "exact search"
            source = (f"the recall's {quality.n_queries:,} query rows only (NaN elsewhere; their true neighbours: "
                      f"{whence}): no k-NN graph of the space is cached (build_knn / `embedlens knn` builds it once; "
                      "colouring by faithfulness builds it)")
        info = {"source": source, "exact": True, "rows": quality.n_queries}
        return quality, local, info
    truth, info = truth_stage(view, X, reducer, full, metric=metric, seed=seed, progress=progress, graph=cached)
    timings["truth"] = clock.since_start()
    exact = bool(info["exact"])
    with clock.stage("quality"):
        quality, local = map_faithfulness(X, coords, truth, QUALITY_K, sample=QUALITY_SAMPLE, seed=seed,
                                          metric=metric, truth_exact=exact,
                                          space_neighbors=None if exact else rows_truth())
    timings["quality"] = clock["quality"]
    return quality, local, info


def _cached_space_graph(view: SpaceView, metric: str) -> Any:
    """The space's cached k-NN graph (:func:`~embedlens.neighbors.knn.cached_knn`, read once per map), or None."""
    if metric != "cosine":  # the k-NN cache holds cosine graphs only
        return None
    try:
        return cached_knn(view, QUALITY_K)
    except (EmbedlensError, OSError):
        return None


def truth_stage(view: SpaceView, X: np.ndarray, reducer: Any, full: bool, *, metric: str = "cosine", seed: int = 0,
                k: int = QUALITY_K, progress: bool = False, graph: Any = None) -> tuple[Any, dict[str, Any]]:
    """The true neighbours a map is measured against: ``(Neighbors (n, >= k) of the mapped rows, info)``.

    The reducer's own full-space graph when it has one (t-SNE/UMAP ``neighbors_``, exact, else ``graph_``,
    maybe approximate); for a map of the whole space, :func:`~embedlens.reduce.quality.space_truth` (the
    cached k-NN graph, or one built and cached); for a corpus subset, a search among the mapped rows
    (:func:`~embedlens.reduce.knn.map_graph`: exact up to 100,000 rows). ``info`` says which. ``graph``: the
    space's cached graph when the caller has already read it.
    """
    k = min(k, X.shape[0] - 1)
    for name, exact in (("neighbors_", True), ("graph_", False)):
        own = getattr(reducer, name, None)
        if own is not None and own.k >= k and own.metric == metric:
            info: dict[str, Any] = {"source": f"the map's own k-NN graph ({own.k} neighbours per point)",
                                    "exact": exact, "k_stored": own.k}
            params = getattr(reducer, "params_", {}) or {}
            if not exact and "knn_recall" in params:
                info["recall"] = params["knn_recall"]
            return own, info
    if full:
        return space_truth(view, k, metric=metric, seed=seed, progress=progress, graph=graph)
    nb, described, _ = map_graph(X, k, metric=metric, seed=seed)
    info = {"source": f"a search among the {X.shape[0]:,} mapped rows ({described.get('knn_method')})",
            "exact": "knn_recall" not in described, "k_stored": nb.k}
    if "knn_recall" in described:
        info["recall"] = described["knn_recall"]
    return nb, info


def cluster_stage(X: np.ndarray, coords: np.ndarray, reducer: Any, display: list[str],
                  frequencies: np.ndarray | None, *, clusters: str | int = "auto", metric: str = "cosine",
                  seed: int = 0) -> Any:
    """Clusters of the mapped points, labelled; found on the reducer's full-space graph when it has one."""
    graph = getattr(reducer, "graph_", None)  # full-space (exact or HNSW), not one found after a PCA
    return find_clusters(X, clusters=clusters, metric=metric, seed=seed, coords=coords, display=display,
                         frequencies=frequencies,
                         indices=graph.indices if graph is not None and graph.k >= 10 else None)


def whole_space_graph(view: SpaceView, reducer: Any, n: int, full: bool, metric: str) -> Any:
    """The ``embedlens knn`` graph of the whole space when the map covers it (cosine, no ``pre_pca``): the
    cached one holding enough neighbours, else, up to ``EXACT_MAX`` rows, the exact one built and left in
    the space's k-NN cache (where later maps, clusters and the explorer find it). None otherwise: the
    reducer finds (or reuses) its own full-space graph."""
    need = reducer.neighbors_needed(n)
    if not (full and need and metric == "cosine") or getattr(reducer, "pre_pca", None) is not None:
        return None
    try:
        graph = cached_knn(view, need)
        if graph is None and n <= EXACT_MAX:
            graph = build_knn(view, need)[0]
        return graph
    except (EmbedlensError, OSError):  # a damaged or read-only cache: the reducer finds its own graph
        return None


def write_atlas(lens: Lens | SpaceView, out_dir: str | Path = "embedlens-map", *, png: bool = True, started: float | None = None,
                timings: dict[str, float] | None = None, renderer: str = "auto", **options: Any) -> AtlasResult:
    """:func:`build_atlas` and save it into ``out_dir`` (map.html, map.png, points.parquet, manifest.json).

    The output folder is checked for writing before any work is done. Keyword options are those of
    :func:`build_atlas`; the result's ``files`` maps each file name to its path. ``started`` (the
    ``started`` of a :class:`~embedlens.timing.Timings` made by the caller, e.g. before loading the model)
    sets where the manifest's total time counts from; ``timings`` are earlier stages to record (e.g. ``{"open": 0.4}``).
    ``renderer`` picks what draws map.html: ``plotly``, ``webgl`` or ``auto`` (see :attr:`AtlasResult.renderer`).
    """
    check_renderer(renderer)

    started = Timings(started=started).started
    ensure_writable_dir(out_dir)
    # the writers' libraries, checked before minutes of reduction rather than after
    require("plotly", "map.html", extra="maps", package="plotly")
    require("pyarrow.parquet", "points.parquet", extra="maps", package="pyarrow")
    if png:
        require("matplotlib", "map.png", extra="maps", package="matplotlib")
    result = build_atlas(lens, **options)
    result.renderer = renderer
    result.timings = {**(timings or {}), **result.timings}
    result.save(out_dir, png=png, started=started)
    _share_projection(lens, options, result)
    return result


def _share_projection(lens: Lens | SpaceView, options: dict[str, Any], result: AtlasResult) -> None:
    """Save a whole-space map with the default parameters as the cached :class:`~embedlens.atlas.projection.Projection`
    the explorer opens on (one projection cache); any other map is not saved there."""
    if not is_default_map(result, options.get("reduce") or ReduceOptions()):
        return
    view = as_view(lens, options.get("which"))
    path = projection_path(view.content_hash, result.method, result.dims, result.seed)
    try:
        save_projection(path, Projection.from_atlas(result))
    except OSError as exc:  # the map's own files are written; the explorer recomputes what it cannot find
        log.warning("could not cache the projection in %s (%s)", path.parent, exc)
        return
    result.files["projection"] = path


def compute_projection(view: SpaceView, reduce: ReduceOptions, *, local_recall: bool | None = None) -> Projection:
    """The map of every token of ``view`` (``lens.input``...) that ``reduce`` describes (the explorer's: the
    method, dimensions and seed, every other setting its default), as ``embedlens map --all`` computes it (the
    same reducer, graph and faithfulness figures), without clusters or files.

    ``local_recall``: measure each point's local recall (True), never (False), or when its truth is at hand
    (None: t-SNE and UMAP find the space's graph anyway; a PCA map when the space's k-NN graph is cached),
    so that a PCA map stays quick (the first graph of SmolLM2 takes ~30 s): :func:`add_local_recall`
    measures it later.
    """
    result = build_atlas(view, all_tokens=True, reduce=reduce, clusters="none", color="faithfulness" if local_recall else "none", progress=False,
                         local_recall=local_recall is not False)
    return Projection.from_atlas(result)


def add_local_recall(view: SpaceView, proj: Projection, graph: Any = None) -> Projection:
    """``proj`` with each point's local recall@10 measured against the space's truth graph
    (:func:`~embedlens.reduce.quality.space_truth`: ``graph``, the space's k-NN graph when the caller holds it,
    else the cached one, else one built and cached), and the quality figures measured on the same truth (so
    their recall is the local recall's mean over the recall's query rows, searched exactly when the graph is
    approximate). Returns a new projection; save it with :func:`save_projection`."""
    truth, info = space_truth(view, QUALITY_K, seed=proj.seed, graph=graph)
    quality, local = map_faithfulness(view.space.vectors, proj.coords, truth, QUALITY_K, sample=QUALITY_SAMPLE,
                                      seed=proj.seed, metric="cosine", truth_exact=bool(info["exact"]))
    params = {**proj.params, "quality": quality.to_dict(),
              "local_recall": {"k": quality.k, "definition": LOCAL_DEFINITION.format(k=quality.k), "truth": info}}
    return Projection(proj.coords, proj.method, proj.dims, proj.seed, params, list(proj.notes), proj.pca, local)


def is_default_map(result: Any, reduce: ReduceOptions) -> bool:
    """Whether an :class:`~embedlens.atlas.AtlasResult` made with ``reduce`` is the map :func:`compute_projection`
    would make: every token, cosine, PCA/t-SNE/UMAP with the default reducer settings and no pre-PCA."""
    chosen = result.params.get("selection", {})
    return (reduce.is_default() and result.method in ("pca", "tsne", "umap") and result.metric == "cosine"
            and result.n_points == chosen.get("n_candidates"))
