"""Dimensionality reduction: PCA, t-SNE and UMAP behind one estimator shape, and map quality.

>>> from embedlens.reduce import make_reducer
>>> r = make_reducer("umap", n_components=2, metric="cosine", seed=0)
>>> Y = r.fit_transform(vectors)            # (n, 2) float32; vectors may be a read-only memory map
>>> r.params_, r.notes_, r.timings_         # for manifest.json and for the user

Every reducer records every effective parameter (``params_``), what the user must be told
(``notes_``: a clamped perplexity, a PCA step first) and seconds per stage (``timings_``).
t-SNE and UMAP start from the k-NN graph of the full space (``fit(X, neighbors=...)`` takes one the
caller already has; :mod:`embedlens.reduce.knn`). Map faithfulness: :mod:`embedlens.reduce.quality`.
Same seed, same coordinates.
"""

from __future__ import annotations

from ..errors import EmbedlensError
from ..method_names import MAP_METHODS, REDUCERS
from .axes import AxesReducer
from .base import METRICS, Reducer
from .pca import PCAFit, PCAReducer, fit_pca
from .tsne import TSNEReducer
from .umap import UMAPReducer

__all__ = [
    "MAP_METHODS",
    "REDUCERS",
    "METRICS",
    "PCAFit",
    "PCAReducer",
    "Reducer",
    "TSNEReducer",
    "UMAPReducer",
    "AxesReducer",
    "fit_pca",
    "make_reducer",
]


def make_reducer(
    method: str,
    *,
    n_components: int = 2,
    metric: str = "cosine",
    seed: int = 0,
    perplexity: float | None = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    pre_pca: int | None = None,
    n_jobs: int | None = None,
    pca_solver: str = "auto",
) -> Reducer:
    """A reducer for ``method`` (one of :data:`REDUCERS`); options a method does not use are ignored.

    Args:
        method: ``"pca"``, ``"tsne"`` or ``"umap"``.
        n_components: 2 or 3.
        metric: ``"cosine"`` (rows L2-normalised first) or ``"euclidean"``.
        seed: seed for every random step; same seed, same coordinates.
        perplexity: t-SNE perplexity (default 30), clamped to (n - 1) / 3 for few points.
        n_neighbors: UMAP neighbourhood size, clamped to n - 1.
        min_dist: UMAP minimum distance between embedded points (0 to 1).
        pre_pca: t-SNE/UMAP first reduce to this many dimensions by exact PCA and find the k-NN graph
            there (faster, loses true neighbours: a note says how many); ``None`` (default) or 0: the
            graph comes from the full space.
        n_jobs: t-SNE threads (default all cores); UMAP is single-threaded so that a seed is reproducible.
        pca_solver: PCA's route, ``"auto"``, ``"exact"`` or ``"randomized"`` (:class:`~embedlens.reduce.pca.PCAReducer`).
    """
    if method == "pca":
        return PCAReducer(n_components=n_components, metric=metric, seed=seed, solver=pca_solver)
    if method == "tsne":
        return TSNEReducer(
            n_components=n_components,
            metric=metric,
            seed=seed,
            perplexity=perplexity,
            pre_pca=pre_pca,
            n_jobs=n_jobs,
        )
    if method == "umap":
        return UMAPReducer(
            n_components=n_components,
            metric=metric,
            seed=seed,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            pre_pca=pre_pca,
        )
    raise EmbedlensError(f"unknown reduction method {method!r}: choose one of {', '.join(REDUCERS)}")
