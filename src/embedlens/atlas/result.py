"""``AtlasResult``: the coordinates of a vocabulary map with everything needed to redraw or audit it.

Saved as four files in one folder: ``map.html`` (self-contained, offline), ``map.png``,
``points.parquet`` (token_id, token, display, frequency[, cluster, subcluster], x, y[, z][, script][, pos]
[, local_recall]: ``cluster`` and ``subcluster`` (-1 for none) when the map was clustered, ``script`` with
``color="script"``, ``pos`` (part of speech) when it was tagged, ``local_recall`` when it was measured) and ``manifest.json``. All four are
written into a hidden staging folder inside the output folder and then renamed into place one by one
(``manifest.json`` last), so an interrupted run never leaves a half-written file; other files already
in the folder are left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import ensure_writable_dir, write_json_atomic, write_text_atomic
from ..errors import EmbedlensError, require
from ..parts_of_speech import POS_CLASSES, POS_COLORS
from ..render.atlas import atlas_figure, atlas_png
from ..render.notebook import page_html, result_html
from ..render.offline import plotly_html
from ..timing import Timings
from ..versions import versions
from ..writing_systems import SCRIPT_COLORS, SCRIPTS, classify_scripts
from .clusters import Clustering, label_levels

OUTPUT_FILES = ("map.html", "map.png", "points.parquet", "manifest.json")
RENDERERS = ("auto", "plotly", "webgl")
# map.html is drawn by embedlens's own WebGL map component at every size (Plotly needs ~11 s (2-D) and
# ~23 s (3-D) to draw 262,144 points in a software-WebGL browser). In a notebook, where the Plotly figure
# is the object people keep working with, Plotly draws maps up to this many points.
WEBGL_ABOVE = 100_000
LOW_TRUST, LOW_RECALL = 0.80, 0.10


def check_renderer(renderer: str) -> str:
    if renderer not in RENDERERS:
        raise EmbedlensError(f"unknown renderer '{renderer}' (choose {', '.join(RENDERERS)})")
    return renderer


@dataclass
class AtlasResult:
    """A vocabulary map.

    Attributes:
        coords: float32 array of shape (n_points, dims), the map coordinates.
        ids: int64 array of shape (n_points,), token id (or word index) of each point.
        labels: raw token string of each point.
        display: readable token string of each point (see :func:`embedlens.display.display_token`).
        frequencies: int64 array of shape (n_points,), corpus counts; None when no corpus was read.
        quality: trustworthiness and neighbour recall (a ``ProjectionQuality`` or its dict); None if too few points.
        model: the model's (or space's) manifest: spec, name, content hash...
        space: the space's name (``smollm2-135m:input``).
        method, dims, metric, seed, color, size_by_frequency: how the map was made and drawn.
        params: every reducer parameter (``make_reducer`` ``params_``) plus the selection.
        corpus: the corpus manifest (files and their SHA-256), or None.
        counting: how the frequencies were counted (tokens, distinct, bytes, seconds), or None.
        timings: seconds per stage.
        notes: things the user should know (clamped parameters, skipped files, low faithfulness).
        files: where :meth:`save` wrote each output (empty until saved).
        renderer: how map.html is drawn: ``plotly``, ``webgl`` (the page of :mod:`embedlens.render.pointcloud`
            over the WebGL map component) or ``auto`` (webgl; in a notebook, Plotly up to ``WEBGL_ABOVE`` points).
        clustering: the labelled clusters (:class:`~embedlens.atlas.clusters.Clustering`), or None.
        pca: the fitted PCA (:class:`~embedlens.reduce.PCAFit`) of a PCA map, else None: ``result.pca.transform(v)``
            places new vectors (m, d) on the same map. Not saved with the map files.
        local_recall: float32 array of shape (n_points,): each point's share of its 10 true nearest neighbours
            found among its 10 nearest on the map (:func:`~embedlens.reduce.quality.local_recall`); where its
            truth came from is in ``params["local_recall"]``. None when not measured.
        pos: int8 array of shape (n_points,): each point's part of speech, an index into
            :data:`embedlens.parts_of_speech.POS_CLASSES` (the tagger is named in ``params["pos"]``); None
            when not tagged (only ``color="pos"`` tags).
    """

    coords: np.ndarray
    ids: np.ndarray
    labels: list[str]
    display: list[str]
    frequencies: np.ndarray | None
    quality: Any
    model: dict[str, Any]
    space: str
    method: str
    dims: int
    metric: str
    seed: int
    color: str = "frequency"
    size_by_frequency: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    corpus: dict[str, Any] | None = None
    counting: dict[str, Any] | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    renderer: str = "auto"
    clustering: Any = None
    pca: Any = None
    local_recall: np.ndarray | None = None
    pos: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_points(self) -> int:
        return len(self)

    # -- words ------------------------------------------------------------------------------------

    def quality_dict(self) -> dict[str, Any] | None:
        if self.quality is None:
            return None
        return self.quality if isinstance(self.quality, dict) else self.quality.to_dict()

    def quality_line(self) -> str:
        """``neighbour recall@10 0.153 (2,000 queries among all 49,152 points, cosine) · trustworthiness 0.912
        (within 2,000 sampled points)``: the recall over all points, the trustworthiness within a sample."""
        q = self.quality_dict()
        if q is None:
            return "quality: not measured (too few points)"
        queries, points = q.get("n_queries") or q["n_sample"], q.get("n_points") or self.n_points
        line = (f"neighbour recall@{q['k']} {q['neighbor_recall']:.3f} ({queries:,} queries among all {points:,} "
                f"points, {q['metric']}) · trustworthiness {q['trustworthiness']:.3f} "
                f"(within {q['n_sample']:,} sampled points)")
        if self.is_low_quality():
            line += " · LOW: nearby points on this map are often not neighbours in the space"
        return line

    def is_low_quality(self) -> bool:
        q = self.quality_dict()
        return q is not None and (q["trustworthiness"] < LOW_TRUST or q["neighbor_recall"] < LOW_RECALL)

    def model_name(self) -> str:
        return str(self.model.get("name") or self.model.get("space") or self.model.get("spec") or self.space)

    def title_lines(self) -> tuple[str, str]:
        """Plain text (not escaped): model, space, method and size; then the quality figures."""
        chosen = self.params.get("selection", {})
        what = "tokens (whole vocabulary)" if chosen.get("rule") == "all" else "tokens seen in the corpus"
        if chosen.get("rule") == "corpus" and chosen.get("min_count", 1) > 1:
            what += f" (count >= {chosen['min_count']})"
        method = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP", "axes": "word axes"}.get(self.method, self.method)
        name = self.space if self.space.startswith(self.model_name()) else f"{self.model_name()} · {self.space}"
        line1 = f"{name} · {method} {self.dims}D · {self.n_points:,} {what}"
        return line1, self.quality_line()

    def summary(self) -> str:
        """One plain-text line (not escaped): what was mapped and how faithful the map is."""
        line1, line2 = self.title_lines()
        return f"{line1} · {line2}"

    # -- data -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-point arrays (those go to ``points.parquet``)."""
        return {
            "kind": "embedlens-map",
            "model": self.model,
            "space": self.space,
            "n_points": self.n_points,
            "method": self.method,
            "dims": self.dims,
            "metric": self.metric,
            "seed": self.seed,
            "params": self.params,
            "color": self.color,
            "size_by_frequency": self.size_by_frequency,
            "renderer": self.html_renderer(),
            "corpus": self.corpus,
            "counting": self.counting,
            "quality": self.quality_dict(),
            "clusters": None if self.clustering is None else self.clustering.to_dict(),
            "timings": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "versions": {**versions(), **_extra_versions()},
        }

    def points_table(self) -> Any:
        """A ``pyarrow.Table``: token_id, token, display, frequency[, cluster, subcluster (-1: none)], x, y[, z]
        [, script][, local_recall]."""
        pa = require("pyarrow", "writing points.parquet", "maps")
        columns = {
            "token_id": pa.array(np.asarray(self.ids, dtype=np.int64)),
            "token": pa.array(list(self.labels), type=pa.string()),
            "display": pa.array(list(self.display), type=pa.string()),
            "frequency": pa.array(np.asarray(self.frequencies, dtype=np.int64)) if self.frequencies is not None
            else pa.nulls(self.n_points, type=pa.int64()),
        }
        if self.clustering is not None:  # maps made without clustering keep their columns
            columns["cluster"] = pa.array(self.cluster_ids())
            if self.sub_clustering is not None:
                columns["subcluster"] = pa.array(np.asarray(self.sub_clustering.assignment, dtype=np.int32))
        if self.color == "script":
            columns["script"] = pa.DictionaryArray.from_arrays(pa.array(self.script_classes()), pa.array(list(SCRIPTS)))
        if self.pos is not None:
            columns["pos"] = pa.DictionaryArray.from_arrays(pa.array(np.asarray(self.pos, dtype=np.int8)),
                                                            pa.array(list(POS_CLASSES)))
        for i, axis in enumerate("xyz"[: self.dims]):
            columns[axis] = pa.array(np.ascontiguousarray(self.coords[:, i], dtype=np.float32))
        if self.local_recall is not None:
            columns["local_recall"] = pa.array(np.asarray(self.local_recall, dtype=np.float32))
        return pa.table(columns)

    @property
    def sub_clustering(self) -> Any:
        """The finer label level (sub-clusters, each inside one cluster), or None."""
        return None if self.clustering is None else self.clustering.sub

    def label_levels(self) -> list[dict[str, Any]]:
        """The map's label levels as JSON (:func:`embedlens.atlas.clusters.label_levels`); [] without clusters."""
        return label_levels(self.clustering, self.sub_clustering)

    def cluster_ids(self) -> np.ndarray:
        """Each point's cluster id (int32), -1 for none (every point when the map has no clusters)."""
        if self.clustering is None:
            return np.full(self.n_points, -1, dtype=np.int32)
        return np.asarray(self.clustering.assignment, dtype=np.int32)

    def script_classes(self) -> np.ndarray:
        """Each point's writing system, an index into :data:`embedlens.writing_systems.SCRIPTS` (int8)."""
        cached = getattr(self, "_scripts", None)
        if cached is None or cached.shape[0] != self.n_points:
            cached = classify_scripts(self.display)
            object.__setattr__(self, "_scripts", cached)
        return cached

    def categories(self) -> tuple[str, tuple[str, ...], tuple[str, ...], np.ndarray] | None:
        """A categorical colouring (writing system, part of speech): ``(legend title, class names, class colours,
        each point's class index)``; None for a continuous colouring or none."""
        if self.color == "script":
            return "script", SCRIPTS, SCRIPT_COLORS, np.asarray(self.script_classes(), dtype=np.int64)
        if self.color == "pos" and self.pos is not None:
            return "part of speech", POS_CLASSES, POS_COLORS, np.asarray(self.pos, dtype=np.int64)
        return None

    def html_renderer(self) -> str:
        """``plotly`` or ``webgl``: what draws map.html for this map (``auto``: webgl)."""
        return "webgl" if check_renderer(self.renderer) == "auto" else self.renderer

    def html(self) -> str:
        """The complete, self-contained map.html page."""
        if self.html_renderer() == "webgl":
            from ..render.pointcloud import pointcloud_html  # lazy: it imports plotly at the top

            return pointcloud_html(self)

        return plotly_html(self.figure(), title=self.title_lines()[0])

    def figure(self) -> Any:
        """The interactive Plotly figure (see :func:`embedlens.render.atlas.atlas_figure`)."""
        return atlas_figure(self)

    def _repr_html_(self) -> str:
        """Shown inline by Jupyter: title, quality figures and the interactive map, offline."""
        line1, line2 = self.title_lines()
        lines = [line2, *self.cluster_lines()]
        if self.html_renderer() == "webgl" and (self.renderer == "webgl" or self.n_points > WEBGL_ABOVE):
            from ..render.pointcloud import pointcloud_html  # lazy: it imports plotly at the top

            return page_html(pointcloud_html(self), line1, lines)
        return result_html(self.figure(), line1, lines)

    def cluster_lines(self, limit: int = 12) -> list[str]:
        """Plain text: one line per cluster (largest first), at most ``limit``."""
        if self.clustering is None or not len(self.clustering):
            return []
        c = self.clustering
        lines = [f"{len(c)} clusters ({c.method} on the {c.found_on}); mean pairwise cosine, map average "
                 f"{c.map_mean_cosine:.3f}:"]
        lines += [f"  {cl.id}: {cl.label} ({cl.size:,} tokens, {cl.mean_cosine:.3f})" for cl in c.clusters[:limit]]
        return lines

    # -- files ------------------------------------------------------------------------------------

    def save(self, out_dir: str | os.PathLike[str], *, png: bool = True, started: float | None = None) -> dict[str, Path]:
        """Write map.html, map.png, points.parquet and manifest.json into ``out_dir``; return their paths.

        ``started`` (a :class:`~embedlens.timing.Timings`'s ``started``) lets the manifest record the total
        time of the run.
        """
        out = ensure_writable_dir(out_dir)
        stage = Path(tempfile.mkdtemp(dir=out, prefix=".embedlens-map-", suffix=".tmp"))
        written: dict[str, Path] = {}
        clock = Timings(started=started)
        try:
            with clock.stage("html"):
                write_text_atomic(stage / "map.html", self.html())
            if png:
                with clock.stage("png"):
                    atlas_png(self, stage / "map.png")
            else:  # a picture from an earlier run must not sit beside these points
                (out / "map.png").unlink(missing_ok=True)
            with clock.stage("parquet"):
                import pyarrow.parquet as pq

                pq.write_table(self.points_table(), stage / "points.parquet", compression="zstd")
            self.timings.update(clock)
            if started is not None:
                self.timings["total"] = clock.since_start()
            manifest = self.to_dict()
            manifest["files"] = {name: {"bytes": (stage / name).stat().st_size}
                                 for name in OUTPUT_FILES[:-1] if (stage / name).exists()}
            write_json_atomic(stage / "manifest.json", manifest)
            for name in OUTPUT_FILES:
                if (stage / name).exists():
                    (stage / name).chmod(0o644)
                    os.replace(stage / name, out / name)
                    written[name] = out / name
            self.files = written
        except OSError as exc:
            raise EmbedlensError(f"could not write the map into {out}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(stage)
        return written

    @classmethod
    def load(cls, out_dir: str | os.PathLike[str]) -> AtlasResult:
        """Read a folder written by :meth:`save` (``points.parquet`` + ``manifest.json``)."""
        import pyarrow.parquet as pq

        folder = Path(out_dir)
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            table = pq.read_table(folder / "points.parquet")
        except (OSError, ValueError) as exc:
            raise EmbedlensError(f"{folder} is not a saved map ({exc})") from None
        dims = int(manifest["dims"])
        coords = np.column_stack([table.column(a).to_numpy() for a in "xyz"[:dims]]).astype(np.float32)
        freq = table.column("frequency")
        clustering = None
        if manifest.get("clusters") and "cluster" in table.column_names:
            sub = table.column("subcluster").to_numpy() if "subcluster" in table.column_names else None
            clustering = Clustering.from_dict(manifest["clusters"], table.column("cluster").to_numpy(), sub)
        return cls(
            coords=coords,
            ids=table.column("token_id").to_numpy().astype(np.int64),
            labels=table.column("token").to_pylist(),
            display=table.column("display").to_pylist(),
            frequencies=None if freq.null_count == len(freq) else freq.to_numpy().astype(np.int64),
            quality=manifest.get("quality"),
            model=manifest.get("model", {}),
            space=manifest.get("space", ""),
            method=manifest["method"],
            dims=dims,
            metric=manifest.get("metric", "cosine"),
            seed=int(manifest.get("seed", 0)),
            color=manifest.get("color", "frequency"),
            size_by_frequency=bool(manifest.get("size_by_frequency", False)),
            params=manifest.get("params", {}),
            corpus=manifest.get("corpus"),
            counting=manifest.get("counting"),
            timings=manifest.get("timings", {}),
            notes=manifest.get("notes", []),
            renderer=manifest.get("renderer", "auto"),
            clustering=clustering,
            local_recall=table.column("local_recall").to_numpy().astype(np.float32)
            if "local_recall" in table.column_names else None,
            pos=_pos_classes(table.column("pos").to_pylist()) if "pos" in table.column_names else None,
        )


def _pos_classes(names: list[str]) -> np.ndarray:
    """Part-of-speech class names (the ``pos`` column) back to indices into ``POS_CLASSES`` (int8)."""
    index = {name: i for i, name in enumerate(POS_CLASSES)}
    return np.fromiter(map(index.__getitem__, names), dtype=np.int8, count=len(names))


def _extra_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("scikit-learn", "openTSNE", "umap-learn", "plotly", "matplotlib", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
