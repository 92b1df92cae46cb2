"""The one cached projection type: a map of a whole space, as the explorer serves it.

A :class:`Projection` is what :func:`~embedlens.atlas.pipeline.build_atlas` computes for every token of a
space (``all_tokens=True``), kept small: the coordinates, how they were made, the faithfulness
figures, each point's local recall and, for PCA, the fit (so new vectors, e.g. a prompt's hidden
states, land on the same map). Cached under
``cache_root()/"projections"/<content key>-<method>-<dims>-<seed>.npz`` (``np.savez``, no pickle,
written atomically).

One cache for the command line and the explorer: ``embedlens map --all`` (:func:`~embedlens.atlas.pipeline.write_atlas`
of a whole space with cosine and the default reducer parameters, :func:`is_default_map`) saves its
projection there too, so the explorer opens on the map the command line computed; a map made with other
parameters is not saved under that key.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import json_default
from ..errors import EmbedlensError

log = logging.getLogger("embedlens")

FORMAT_VERSION = 2  # 2: computed by the atlas pipeline


@dataclass
class Projection:
    """A map of a whole space: ``coords`` (n, dims) float32, and the PCA fit when the method is PCA."""

    coords: np.ndarray
    method: str
    dims: int
    seed: int
    params: dict[str, Any]
    notes: list[str]
    pca: Any = None  # embedlens.reduce.PCAFit
    local_recall: np.ndarray | None = None  # (n,) float32, see embedlens.reduce.quality.local_recall

    @property
    def can_transform(self) -> bool:
        return self.pca is not None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place new vectors (m, d) on this map: float32 (m, dims). PCA only."""
        if self.pca is None:
            raise EmbedlensError(f"a {self.method} map cannot place new points (only PCA can project new "
                                 "vectors onto the same map): switch the map to PCA")
        return self.pca.transform(np.asarray(x, dtype=np.float32))

    @classmethod
    def from_atlas(cls, result: Any) -> Projection:
        """The projection of an :class:`~embedlens.atlas.result.AtlasResult` of a whole space."""
        quality = result.quality_dict()
        params = {**dict(result.params.get("reducer", {})), "quality": quality}
        notes = [result.quality.summary()] if result.quality is not None else []
        notes += [n for n in result.notes if n not in notes]
        if "local_recall" in result.params:
            params["local_recall"] = result.params["local_recall"]
        local = result.local_recall
        # a map measured on its recall's query rows only (NaN elsewhere) has no local recall to serve
        local = None if local is None or not np.isfinite(local).all() else np.asarray(local, dtype=np.float32)
        return cls(np.asarray(result.coords, dtype=np.float32), result.method, result.dims, result.seed, params,
                   notes, result.pca, local)

    def info(self) -> dict[str, Any]:
        return {"method": self.method, "dims": self.dims, "seed": self.seed, "params": self.params,
                "notes": self.notes, "can_transform": self.can_transform,
                "has_local_recall": self.local_recall is not None}


def projection_path(content_key: str, method: str, dims: int, seed: int) -> Path:
    from ..cache import cache_root

    return cache_root() / "projections" / f"{content_key}-{method}-{dims}-{seed}.npz"


def save_projection(path: Path, proj: Projection) -> Path:
    from ..cache import atomic_path

    arrays: dict[str, np.ndarray] = {
        "coords": np.ascontiguousarray(proj.coords, dtype=np.float32),
        "meta_json": np.array(json.dumps({"format": FORMAT_VERSION, "method": proj.method, "dims": proj.dims,
                                          "seed": proj.seed, "params": proj.params, "notes": proj.notes},
                                         default=json_default)),
    }
    if proj.local_recall is not None:
        arrays["local_recall"] = np.ascontiguousarray(proj.local_recall, dtype=np.float32)
    if proj.pca is not None:
        arrays.update(pca_components=np.asarray(proj.pca.components), pca_mean=np.asarray(proj.pca.mean),
                      pca_variances=np.asarray(proj.pca.variances),
                      pca_total=np.array(float(proj.pca.total_variance)), pca_metric=np.array(proj.pca.metric))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def load_projection(path: Path, n: int) -> Projection | None:
    """A cached projection with ``n`` rows, or None when absent or unreadable (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
            coords = np.ascontiguousarray(data["coords"], dtype=np.float32)
            local = np.asarray(data["local_recall"], dtype=np.float32) if "local_recall" in data else None
            pca = None
            if "pca_components" in data:
                from ..reduce import PCAFit

                pca = PCAFit(np.asarray(data["pca_components"]), np.asarray(data["pca_mean"]),
                             np.asarray(data["pca_variances"]), float(data["pca_total"]), str(data["pca_metric"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable projection %s (%s); recomputing", path.name, exc)
        return None
    if meta.get("format") != FORMAT_VERSION or coords.shape[0] != n or not np.isfinite(coords).all():
        return None
    if local is not None and local.shape != (n,):
        local = None
    return Projection(coords, meta["method"], int(meta["dims"]), int(meta["seed"]), meta.get("params", {}),
                      list(meta.get("notes", [])), pca, local)


def compute_projection(view: Any, method: str, dims: int, seed: int, *, local_recall: bool | None = None,
                       ) -> Projection:
    """The map of every token of ``view`` (``lens.input``...), as ``embedlens map --all`` computes it
    (cosine, the same reducer, graph and faithfulness figures), without clusters or files.

    ``local_recall``: measure each point's local recall (True), never (False), or when its truth is at hand
    (None: t-SNE and UMAP find the space's graph anyway; a PCA map when the space's k-NN graph is cached),
    so that a PCA map stays quick (the first graph of SmolLM2 takes ~30 s): :func:`add_local_recall`
    measures it later.
    """
    from .pipeline import build_atlas

    result = build_atlas(view, all_tokens=True, method=method, dims=dims, seed=seed, metric="cosine",
                         clusters="none", color="faithfulness" if local_recall else "none", progress=False,
                         local_recall=local_recall is not False)
    return Projection.from_atlas(result)


def add_local_recall(view: Any, proj: Projection) -> Projection:
    """``proj`` with each point's local recall@10 measured against the space's truth graph
    (:func:`~embedlens.reduce.quality.space_truth`: the cached k-NN graph, or one built and cached), and
    the quality figures measured on the same truth (so their recall is the local recall's mean over the
    recall's query rows). Returns a new projection; save it with :func:`save_projection`."""
    from ..reduce.quality import LOCAL_DEFINITION, map_faithfulness, space_truth
    from .pipeline import QUALITY_K, QUALITY_SAMPLE

    truth, info = space_truth(view, QUALITY_K, seed=proj.seed)
    quality, local = map_faithfulness(view.space.vectors, proj.coords, truth, QUALITY_K, sample=QUALITY_SAMPLE,
                                      seed=proj.seed, metric="cosine", truth_exact=bool(info["exact"]))
    params = {**proj.params, "quality": quality.to_dict(),
              "local_recall": {"k": quality.k, "definition": LOCAL_DEFINITION.format(k=quality.k), "truth": info}}
    return Projection(proj.coords, proj.method, proj.dims, proj.seed, params, list(proj.notes), proj.pca, local)


def is_default_map(result: Any, options: dict[str, Any]) -> bool:
    """Whether an :class:`~embedlens.atlas.AtlasResult` built with ``options`` (:func:`~embedlens.atlas.pipeline.build_atlas`
    keywords) is the map :func:`compute_projection` would make: every token, cosine, PCA/t-SNE/UMAP with the
    default reducer parameters and no pre-PCA."""
    import inspect

    from .pipeline import build_atlas

    defaults = inspect.signature(build_atlas).parameters
    same = all(options.get(name, defaults[name].default) == defaults[name].default
               for name in ("perplexity", "n_neighbors", "min_dist", "pre_pca", "x_axis", "y_axis", "z_axis"))
    chosen = result.params.get("selection", {})
    return (same and result.method in ("pca", "tsne", "umap") and result.metric == "cosine"
            and result.n_points == chosen.get("n_candidates"))


