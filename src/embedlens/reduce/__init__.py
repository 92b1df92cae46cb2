"""Dimensionality reduction: PCA, t-SNE and UMAP behind one estimator shape, and map quality.

>>> from embedlens.reduce import make_reducer
>>> r = make_reducer("umap", n_components=2, metric="cosine", seed=0)
>>> Y = r.fit_transform(vectors)            # (n, 2) float32; vectors may be a read-only memory map
>>> r.params_, r.notes_, r.timings_         # for manifest.json and for the user

:class:`~embedlens.reduce.options.ReduceOptions` holds a map's reducer settings as one checked object
(what ``build_atlas``, the perplexity sweep and the explorer take); ``make_reducer`` is its short form.

Every reducer records every effective parameter (``params_``), what the user must be told
(``notes_``: a clamped perplexity, a PCA step first) and seconds per stage (``timings_``).
t-SNE and UMAP start from the k-NN graph of the full space (``fit(X, neighbors=...)`` takes one the
caller already has; :mod:`embedlens.reduce.knn`). Map faithfulness: :mod:`embedlens.reduce.quality`.
Same seed, same coordinates.
"""

from __future__ import annotations

from typing import Any

from ..errors import EmbedlensError
from ..method_names import MAP_METHODS, REDUCERS
from .axes import AxesReducer
from .base import METRICS, Reducer
from .options import ReduceOptions
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
    "ReduceOptions",
    "TSNEReducer",
    "UMAPReducer",
    "AxesReducer",
    "fit_pca",
    "make_reducer",
]


def make_reducer(method: str, **options: Any) -> Reducer:
    """A reducer for ``method`` (one of :data:`REDUCERS`); options a method does not use are ignored.

    The same as ``ReduceOptions(method, **options).reducer()``: the options are
    :class:`~embedlens.reduce.options.ReduceOptions`'s (``n_components``, ``metric``, ``seed``, ``perplexity``,
    ``n_neighbors``, ``min_dist``, ``n_epochs``, ``pre_pca``, ``n_jobs``, ``pca_solver``), checked there.
    """
    if method not in REDUCERS:
        raise EmbedlensError(f"unknown reduction method {method!r}: choose one of {', '.join(REDUCERS)}")
    return ReduceOptions(method, **options).reducer()
