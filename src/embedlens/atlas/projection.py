"""The one cached projection type: a map of a whole space, as the explorer serves it.

A :class:`Projection` is what :func:`~embedlens.atlas.pipeline.build_atlas` computes for every token of a
space (``all_tokens=True``), kept small: the coordinates, how they were made, the faithfulness
figures, each point's local recall and, for PCA, the fit (so new vectors, e.g. a prompt's hidden
states, land on the same map). Cached under
``cache_root()/"projections"/<content key>-<method>-<dims>-<seed>.npz`` (``np.savez``, no pickle,
written atomically).

One cache for the command line and the explorer: ``embedlens map --all`` (:func:`~embedlens.atlas.pipeline.write_atlas`
of a whole space with cosine and the default reducer parameters, :func:`~embedlens.atlas.pipeline.is_default_map`) saves its
projection there too, so the explorer opens on the map the command line computed; a map made with other
parameters is not saved under that key, and one made with an earlier version's size defaults (t-SNE's
perplexity, UMAP's schedule and start from 100,001 points) is recomputed rather than served.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, cache_root, json_default
from ..errors import EmbedlensError
from ..reduce.options import size_defaults
from ..reduce.pca import PCAFit

log = logging.getLogger("embedlens")

FORMAT_VERSION = 2  # 2: computed by the atlas pipeline
_STALE_SEEN: set[Path] = set()  # cached maps already reported as drawn with earlier defaults (one note each)


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
    return cache_root() / "projections" / f"{content_key}-{method}-{dims}-{seed}.npz"


def save_projection(path: Path, proj: Projection) -> Path:
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
                pca = PCAFit(np.asarray(data["pca_components"]), np.asarray(data["pca_mean"]),
                             np.asarray(data["pca_variances"]), float(data["pca_total"]), str(data["pca_metric"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable projection %s (%s); recomputing", path.name, exc)
        return None
    if meta.get("format") != FORMAT_VERSION or coords.shape[0] != n or not np.isfinite(coords).all():
        return None
    params = meta.get("params", {})
    stale = {k: v for k, v in size_defaults(str(meta.get("method")), n, int(meta.get("dims", 2))).items()
             if k in params and params[k] != v}
    if stale:  # drawn with the defaults of an earlier version: the default map is now another one
        if path not in _STALE_SEEN:
            _STALE_SEEN.add(path)
            log.info("cached map %s was drawn with %s, not today's defaults: not used", path.name,
                     ", ".join(f"{k}={params[k]}" for k in stale))
        return None
    if local is not None and local.shape != (n,):
        local = None
    return Projection(coords, meta["method"], int(meta["dims"]), int(meta["seed"]), meta.get("params", {}),
                      list(meta.get("notes", [])), pca, local)
