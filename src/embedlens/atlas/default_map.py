"""The map a whole space opens on: its best cached projection, else PCA computed at once.

A t-SNE or UMAP map of every token (``embedlens map --all``, or the explorer's background job) is cached
as a :class:`~embedlens.atlas.projection.Projection`; when one is there it is the map to show. Otherwise
PCA is computed now (seconds, and cached too) and the caller says so. :func:`atlas_of_projection` turns
a projection back into an :class:`~embedlens.atlas.result.AtlasResult`, so one drawing path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ..reduce.options import ReduceOptions
from .pipeline import compute_projection
from .projection import Projection, load_projection, projection_path, save_projection
from .result import AtlasResult

if TYPE_CHECKING:
    from ..lens import SpaceView

CACHED_METHODS = ("tsne", "umap")  # whole-space maps worth opening on, best first
FALLBACK_METHOD = "pca"


@dataclass
class DefaultMap:
    """A space's default map: the projection and whether it was computed just now (PCA) or read from the cache."""

    projection: Projection
    computed_now: bool

    def note(self) -> str | None:
        """Plain text for a caption when PCA stood in for a missing t-SNE/UMAP map, else None."""
        if not self.computed_now:
            return None
        return ("PCA computed now: no t-SNE or UMAP map of this whole space is cached yet "
                "(a t-SNE or UMAP map of every token, written by write_atlas or the explorer, is cached and shown "
                "from then on)")


def default_map(view: SpaceView, *, dims: int = 2, seed: int = 0, methods: tuple[str, ...] = CACHED_METHODS) -> DefaultMap:
    """The cached t-SNE or UMAP map of every token of ``view`` (``lens.input``...), else its PCA map.

    Args:
        view: a space view (``lens.input``, ``lens.output``).
        dims: 2 or 3.
        seed: the seed the cached maps were made with (the explorer's and ``embedlens map``'s default is 0).
        methods: the cached maps to look for, best first (default :data:`CACHED_METHODS`; empty: PCA).
    """
    n = int(view.space.vectors.shape[0])
    key = view.content_hash
    for method in (*methods, FALLBACK_METHOD):
        found = load_projection(projection_path(key, method, dims, seed), n)
        if found is not None:
            return DefaultMap(found, computed_now=False)
    proj = compute_projection(view, ReduceOptions(FALLBACK_METHOD, dims, seed=seed))
    save_projection(projection_path(key, FALLBACK_METHOD, dims, seed), proj)
    return DefaultMap(proj, computed_now=True)


def atlas_of_projection(view: SpaceView, proj: Projection, *, notes: list[str] | None = None) -> AtlasResult:
    """An :class:`AtlasResult` of every token of ``view`` on the map ``proj`` (no corpus counts, no clusters)."""
    space = view.space
    params = {"reducer": {k: v for k, v in proj.params.items() if k not in ("quality", "local_recall")},
              "selection": {"rule": "all", "n_points": int(proj.coords.shape[0])}}
    if "local_recall" in proj.params:  # where build_atlas keeps it: its k names the colour bar and the caption
        params["local_recall"] = proj.params["local_recall"]
    extra: dict[str, Any] = {}
    local = getattr(proj, "local_recall", None)
    if local is not None and "local_recall" in {f.name for f in fields(AtlasResult)}:
        extra["local_recall"] = local
    return AtlasResult(
        coords=np.asarray(proj.coords, dtype=np.float32), ids=np.asarray(space.ids, dtype=np.int64),
        labels=list(space.labels), display=list(space.display), frequencies=None,
        quality=proj.params.get("quality"), model=view.manifest(), space=space.name, method=proj.method,
        dims=proj.dims, metric="cosine", seed=proj.seed, color="length", params=params,
        notes=[*proj.notes, *(notes or [])], pca=proj.pca, **extra)
