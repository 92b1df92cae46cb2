"""A vocabulary map at several t-SNE perplexities, side by side (``embedlens map --perplexity 5,30,100``).

:func:`build_perplexity_sweep` counts and selects once, finds ONE k-NN graph for the largest perplexity
(the space's cached graph for a whole-space map, else :func:`~embedlens.reduce.sweep.sweep_graph`) and
makes each map with :func:`~embedlens.atlas.pipeline.build_atlas` from that graph: every map is the map a
single ``build_atlas`` at that perplexity and seed makes, with its own faithfulness figures.
:meth:`AtlasSweep.save` writes ``sweep.html`` (small multiples, the points of one token linked across
panels on hover), ``sweep.png``, ``points.parquet`` (every map's points, with a ``perplexity`` column)
and ``manifest.json``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import ensure_writable_dir, write_json_atomic, write_text_atomic
from ..errors import EmbedlensError
from ..lens import as_view
from ..reduce.options import ReduceOptions
from ..reduce.sweep import check_perplexities, neighbors_needed, sweep_graph
from ..timing import Timings
from .pipeline import build_atlas, check_options, count_stage, select_stage, whole_space_graph
from .result import AtlasResult

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

SWEEP_FILES = ("sweep.html", "sweep.png", "points.parquet", "manifest.json")


@dataclass
class AtlasSweep:
    """Maps of the same tokens at several perplexities; ``graph`` says how their one k-NN graph was found."""

    maps: list[AtlasResult]
    graph: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def perplexities(self) -> list[float]:
        return [float(m.params["reducer"]["perplexity_requested"]) for m in self.maps]

    def panel_titles(self) -> list[tuple[str, str]]:
        """Plain text per map: ``perplexity 30`` (and what it was clamped to), then its quality figures."""
        out = []
        for m in self.maps:
            used, asked = m.params["reducer"]["perplexity"], m.params["reducer"]["perplexity_requested"]
            head = f"perplexity {asked:g}" + (f" (clamped to {used:.3g})" if used != asked else "")
            q = m.quality_dict()
            line = ("quality not measured" if q is None else
                    f"recall@{q['k']} {q['neighbor_recall']:.3f} · trustworthiness {q['trustworthiness']:.3f}")
            out.append((head, line))
        return out

    def title(self) -> str:
        first = self.maps[0]
        return first.title_lines()[0] + " · perplexity sweep"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "embedlens-map-sweep", "perplexities": self.perplexities, "graph": self.graph,
                "maps": [m.to_dict() for m in self.maps],
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}

    def points_table(self) -> Any:
        """Every map's ``points.parquet`` rows stacked, with a ``perplexity`` column (the one asked for)."""
        import pyarrow as pa

        tables = []
        for p, m in zip(self.perplexities, self.maps, strict=True):
            t = m.points_table()
            tables.append(t.add_column(0, "perplexity", pa.array(np.full(len(m), p, dtype=np.float64))))
        return pa.concat_tables(tables)

    def page(self) -> Any:
        """What the small-multiples page and picture draw (:class:`~embedlens.render.sweep.SweepPage`)."""
        # lazy: render.pointcloud imports plotly at the top; a sweep only needs it when it is drawn
        from ..render.pointcloud import point_colors
        from ..render.sweep import SweepPage

        first = self.maps[0]
        rgb, _, legend = point_colors(first)
        freq = first.frequencies
        ids = np.asarray(first.ids, dtype=np.int64).tolist()
        details = ([f"id {i} · frequency {f:,}" for i, f in zip(ids, np.asarray(freq).tolist(), strict=True)]
                   if freq is not None else [f"id {i}" for i in ids])
        return SweepPage(title=self.title(), subtitle=_subtitle(self), display=list(first.display), details=details,
                         rgb=rgb, legend=legend, legend_title=(first.categories() or ("",))[0],
                         panels=self.panel_titles(), coords=[np.asarray(m.coords, dtype=np.float32) for m in self.maps])

    def save(self, out_dir: str | os.PathLike[str], *, png: bool = True) -> dict[str, Path]:
        """Write sweep.html, sweep.png, points.parquet and manifest.json into ``out_dir`` (each atomically,
        the manifest last); return their paths."""
        import pyarrow.parquet as pq

        out = ensure_writable_dir(out_dir)
        page = self.page()
        stage = Path(tempfile.mkdtemp(dir=out, prefix=".embedlens-sweep-", suffix=".tmp"))
        clock = Timings()
        try:
            with clock.stage("html"):
                write_text_atomic(stage / "sweep.html", page.html())
            if png:
                with clock.stage("png"):
                    page.png(stage / "sweep.png")
            self.timings.update(clock)
            pq.write_table(self.points_table(), stage / "points.parquet", compression="zstd")
            write_json_atomic(stage / "manifest.json", self.to_dict())
            for name in SWEEP_FILES:
                if (stage / name).exists():
                    (stage / name).chmod(0o644)
                    os.replace(stage / name, out / name)
                    self.files[name] = out / name
        finally:
            import shutil

            shutil.rmtree(stage, ignore_errors=True)
        return self.files


def _subtitle(sweep: AtlasSweep) -> str:
    g = sweep.graph
    how = f"{g.get('knn_method', 'given')}" + (f", recall {g['knn_recall']:.3f}" if "knn_recall" in g else "")
    return (f"same seed ({sweep.maps[0].seed}), one k-NN graph of {g['k']} neighbours per point ({how}) shared by "
            "every map · recall@10: share of each token's 10 nearest neighbours in the space kept among its 10 "
            "nearest on the map · hover a point: the same token is marked on every map")


def check_sweep_options(perplexities: Sequence[float], options: dict[str, Any]) -> list[float]:
    """Refuse bad sweep options before any work; returns the perplexities as floats."""
    values = check_perplexities(perplexities)
    reduce = options.get("reduce") or ReduceOptions("tsne")
    check_options(reduce, color=options.get("color", "frequency"), min_count=options.get("min_count", 1),
                  clusters=options.get("clusters"))
    if reduce.method != "tsne":
        raise EmbedlensError("a perplexity sweep makes t-SNE maps: the method must be 'tsne'")
    if reduce.perplexity is not None or "neighbors" in options:
        raise EmbedlensError("give the perplexities as `perplexities`; the sweep finds its own k-NN graph")
    return values


def build_perplexity_sweep(lens: Lens | SpaceView, perplexities: Sequence[float], **options: Any) -> AtlasSweep:
    """t-SNE maps of a vocabulary at each of ``perplexities`` (same seed, one k-NN graph), in that order.

    Keyword options are :func:`~embedlens.atlas.pipeline.build_atlas`'s (``reduce``: t-SNE's
    :class:`~embedlens.reduce.options.ReduceOptions` without a perplexity, default ``ReduceOptions("tsne")``;
    ``clusters`` defaults to ``none``: small multiples are read by their shapes).
    """
    values = check_sweep_options(perplexities, options)
    reduce = options.pop("reduce", None) or ReduceOptions("tsne")
    options.setdefault("clusters", "none")
    timings = Timings()
    view = as_view(lens, options.pop("which", None))
    if options.get("frequencies") is None and (options.get("corpus") is not None or not options.get("all_tokens")):
        options["frequencies"] = count_stage(view, options.pop("corpus", None), progress=options.get("progress", True),
                                             engine=options.get("engine"))
        timings["count"] = timings.since_start()  # the view opened too, as before
    options.pop("corpus", None)
    options.pop("engine", None)
    knn = Timings()
    _, X, full = select_stage(view, options.get("frequencies"), all_tokens=options.get("all_tokens", False),
                              min_count=options.get("min_count", 1))
    graph = None
    info: dict[str, Any] = {}
    if reduce.pre_pca is None:  # with pre_pca every map finds its graph after its PCA
        largest = reduce.replace(perplexity=max(values)).reducer()
        graph = whole_space_graph(view, largest, X.shape[0], full, reduce.metric)
        if graph is not None:
            info = {"knn_source": "the space's k-NN graph", "knn_method": f"{graph.method} ({graph.backend})",
                    "k": neighbors_needed(values, X.shape[0]), "k_stored": graph.k}
        else:
            graph, info = sweep_graph(X, values, metric=reduce.metric, seed=reduce.seed)
    timings["knn"] = knn.since_start()  # the selection too, as before
    del X
    maps = []
    for p in values:
        with timings.stage(f"map {p:g}"):
            maps.append(build_atlas(view, reduce=reduce.replace(perplexity=p), neighbors=graph, **options))
    timings["total"] = timings.since_start()
    return AtlasSweep(maps, info, dict(timings))


def write_perplexity_sweep(lens: Lens | SpaceView, perplexities: Sequence[float], out_dir: str | Path = "embedlens-map", *,
                           png: bool = True, **options: Any) -> AtlasSweep:
    """:func:`build_perplexity_sweep` and save it into ``out_dir`` (sweep.html, sweep.png, points.parquet,
    manifest.json); the output folder is checked for writing before any work."""
    ensure_writable_dir(out_dir)
    sweep = build_perplexity_sweep(lens, perplexities, **options)
    sweep.save(out_dir, png=png)
    return sweep
