"""The reduce stage's options: one frozen object that travels from the command line to the reducer.

A map's reducer settings (the method, its dimensions, metric and seed, and each method's own knobs)
used to be threaded keyword by keyword through every stage that makes a map. :class:`ReduceOptions`
holds them all, is checked once when it is made (with the reducers' own ``check_*`` functions, so a
bad value is refused before a model load or minutes of t-SNE), and builds the reducer
(:meth:`ReduceOptions.reducer`), as embedding-atlas passes its ``umap_args``:

>>> opts = ReduceOptions("umap", n_neighbors=30, min_dist=0.05, seed=3)
>>> opts.reducer()                      # UMAPReducer(n_components=2, metric='cosine', seed=3, ...)
>>> build_atlas(lens, reduce=opts)      # the same options, for a whole map
>>> opts.replace(perplexity=5.0)        # a changed copy (frozen: never edited in place)

Settings a method does not use are kept and ignored by it (``min_dist`` with t-SNE), but every one is
checked, whatever the method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..method_names import MAP_METHODS, REDUCERS
from .axes import AxesReducer, check_axis_options
from .base import Reducer, check_metric, check_n_components, check_seed
from .knn import resolve_n_jobs
from .pca import PCAReducer, check_pre_pca, check_solver
from .tsne import (
    EARLY_EXAGGERATION_ITER,
    N_ITER,
    TSNEReducer,
    check_iterations,
    clamp_perplexity,
    default_perplexity,
)
from .umap import (
    UMAPReducer,
    check_min_dist,
    check_n_epochs,
    check_n_neighbors,
    check_negative_sample_rate,
    pick_init,
    schedule,
)

AxisQuery = tuple[str, str]


def size_defaults(method: str, n: int, dims: int) -> dict[str, Any]:
    """The parameters a default map of ``n`` points takes by its size, as its params record them: what a map
    cached under the default key must match to be the map the current defaults would draw."""
    if method == "tsne":
        return {"perplexity_requested": default_perplexity(n)}
    if method == "umap":
        epochs, rate = schedule(n, None, None)
        return {"n_epochs": epochs, "negative_sample_rate": rate, "init": pick_init(n, dims, None)}
    return {}


def _axis(value: Sequence[str] | None) -> AxisQuery | None:
    """An axis query as a tuple of two strings (lists from JSON or click become hashable, comparable tuples)."""
    if value is None or isinstance(value, str):
        return value  # type: ignore[return-value]  # a bare string is refused by check_axis_options
    return tuple(str(q) for q in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class ReduceOptions:
    """How a map is made: the method and every reducer setting, checked when made.

    Args:
        method: ``pca``, ``tsne``, ``umap`` or ``axes`` (word axes: ``x_axis`` ...).
        n_components: 2 or 3 (an axes map with a ``z_axis`` is 3-D whatever is given).
        metric: ``cosine`` (rows L2-normalised first) or ``euclidean``, for the reducer and the quality figures.
        seed: seed of every random step; same seed, same coordinates.
        perplexity: t-SNE perplexity (default 30, or 10 from 100,001 points), clamped to (n - 1) / 3 for few points.
        n_iter, early_exaggeration_iter: t-SNE iterations, ordinary (500) and early-exaggerated first (250).
        n_neighbors: UMAP neighbourhood size, clamped to n - 1.
        min_dist: UMAP minimum distance between embedded points (0 to 1).
        n_epochs: UMAP optimisation epochs (None: the size's default, :func:`~embedlens.reduce.umap.schedule`).
        negative_sample_rate: UMAP negative samples per positive one (None: the size's default, same function).
        pre_pca: t-SNE/UMAP find the k-NN graph after an exact PCA to this many dimensions (None: the full space).
        pca_solver: PCA's route, ``auto``, ``exact`` or ``randomized``.
        n_jobs: t-SNE threads (None: every core); UMAP stays single-threaded so that a seed is reproducible.
        x_axis, y_axis, z_axis: with ``method="axes"``, two queries (word, ``id:N``, ``tok:RAW``) per axis,
            resolved against the space when the map is made (:func:`~embedlens.reduce.axes.resolve_axes`).
    """

    method: str = "pca"
    n_components: int = 2
    metric: str = "cosine"
    seed: int = 0
    perplexity: float | None = None
    n_iter: int = N_ITER
    early_exaggeration_iter: int = EARLY_EXAGGERATION_ITER
    n_neighbors: int = 15
    min_dist: float = 0.1
    n_epochs: int | None = None
    negative_sample_rate: float | None = None
    pre_pca: int | None = None
    pca_solver: str = "auto"
    n_jobs: int | None = None
    x_axis: AxisQuery | None = None
    y_axis: AxisQuery | None = None
    z_axis: AxisQuery | None = None

    def __post_init__(self) -> None:
        if self.method not in MAP_METHODS:
            raise EmbedlensError(f"unknown method '{self.method}' (choose {', '.join(MAP_METHODS)})")
        for name in ("x_axis", "y_axis", "z_axis"):
            object.__setattr__(self, name, _axis(getattr(self, name)))
        if self.method == "axes" and self.z_axis is not None:
            object.__setattr__(self, "n_components", 3)  # a z axis makes the map 3-D
        check_n_components(self.n_components)
        check_metric(self.metric)
        check_seed(self.seed)
        clamp_perplexity(self.perplexity, 10**9)  # a positive finite number (clamping waits for n)
        check_iterations(self.n_iter, "n_iter")
        check_iterations(self.early_exaggeration_iter, "early_exaggeration_iter")
        check_n_neighbors(self.n_neighbors)
        check_min_dist(self.min_dist)
        check_n_epochs(self.n_epochs)
        check_negative_sample_rate(self.negative_sample_rate)
        check_pre_pca(self.pre_pca)
        check_solver(self.pca_solver)
        if self.n_jobs is not None:
            resolve_n_jobs(self.n_jobs)
        if self.method == "axes" or any(a is not None for a in (self.x_axis, self.y_axis, self.z_axis)):
            check_axis_options(self.method, self.n_components, self.x_axis, self.y_axis, self.z_axis)

    def replace(self, **changes: Any) -> ReduceOptions:
        """A copy with ``changes`` (checked like a new one)."""
        return dataclasses.replace(self, **changes)

    def reducer(self, axes: Sequence[Any] | None = None) -> Reducer:
        """The reducer these options describe, scikit-learn shaped (parameters in ``__init__``, ``fit``...).

        ``axes``: with ``method="axes"``, the resolved axes (:func:`~embedlens.reduce.axes.resolve_axes`:
        one dict with ``vectors`` per axis, or None), since only a space turns queries into vectors.
        """
        common = {"n_components": self.n_components, "metric": self.metric, "seed": self.seed}
        if self.method == "pca":
            return PCAReducer(**common, solver=self.pca_solver)
        if self.method == "tsne":
            return TSNEReducer(**common, perplexity=self.perplexity, pre_pca=self.pre_pca, n_jobs=self.n_jobs,
                               n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter)
        if self.method == "umap":
            return UMAPReducer(**common, n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                               pre_pca=self.pre_pca, n_epochs=self.n_epochs,
                               negative_sample_rate=self.negative_sample_rate)
        if axes is None:
            raise EmbedlensError("an axes map needs its axes resolved against a space first (resolve_axes)")
        vectors = [None if a is None else a["vectors"] for a in axes]
        return AxesReducer(x_axis=vectors[0], y_axis=vectors[1], z_axis=vectors[2], **common)

    def is_default(self) -> bool:
        """Whether every setting but the method, dimensions and seed has its default value (cosine too): the
        map the explorer and ``embedlens map --all`` share through the projection cache."""
        base = ReduceOptions(self.method if self.method in REDUCERS else "pca", self.n_components, seed=self.seed)
        return self.method in REDUCERS and self.replace(n_jobs=None) == base

    def to_dict(self) -> dict[str, Any]:
        """Every setting, JSON-ready (axes as lists), for a manifest."""
        out = dataclasses.asdict(self)
        for name in ("x_axis", "y_axis", "z_axis"):
            out[name] = None if out[name] is None else list(out[name])
        for name, value in out.items():
            if isinstance(value, np.generic):
                out[name] = value.item()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReduceOptions:
        """The options :meth:`to_dict` wrote (unknown keys are refused, so a typo is not silently dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise EmbedlensError(f"unknown reduce option(s): {', '.join(unknown)}")
        return cls(**data)
