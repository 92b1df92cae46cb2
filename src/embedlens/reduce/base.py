"""What every reducer shares: input checks, row normalisation, the estimator shape.

A reducer is a scikit-learn-shaped estimator: its parameters are set in ``__init__`` and never
changed, :meth:`Reducer.fit` returns ``self``, and what fitting learnt lives in attributes ending in
``_``. Besides the coordinates (``embedding_``) every reducer records, for the run's manifest:

- ``params_``: every parameter that shaped the result, as actually used (after clamping), with the
  library and its version;
- ``notes_``: one-line messages the user must be told (a clamped perplexity, a PCA step first);
- ``timings_``: seconds per stage.

The metric. ``"cosine"`` means rows are L2-normalised before anything else; on unit vectors the
squared euclidean distance is ``2 - 2 cos``, so euclidean methods on normalised rows rank
neighbours exactly as cosine does. ``"euclidean"`` uses the raw rows.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..neighbors.exact import normalized_rows
from ..neighbors.index import METRICS  # one list of metric names: the neighbour layer's
from ..timing import Timings

N_COMPONENTS = (2, 3)
MIN_POINTS = 3
# Points from which a map takes the big-vocabulary defaults: its k-NN graph by NN-descent
# (reduce.knn.NNDESCENT_FROM), UMAP's 60 epochs x 10 negative samples from a random start, t-SNE's perplexity 10.
# Below, an exhaustive graph search costs less than NN-descent's compile (docs/faithfulness.md).
LARGE_FROM = 100_001

_BLOCK_ROWS = 1 << 14  # rows per block when streaming a (possibly memory-mapped) matrix


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise EmbedlensError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    return metric


def check_n_components(n_components: int) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer):
        raise EmbedlensError(f"`n_components` must be 2 or 3, got {n_components!r}")
    if int(n_components) not in N_COMPONENTS:
        raise EmbedlensError(f"`n_components` must be 2 or 3 (a 2D or 3D map), got {n_components}")
    return int(n_components)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise EmbedlensError(f"seed must be an integer between 0 and 2**32 - 1, got {seed!r}")
    return int(seed)


def check_matrix(x: Any, *, what: str = "X") -> np.ndarray:
    """Check that ``x`` is a finite (n, d) numeric matrix with at least 3 rows; returned uncopied.

    ``x`` may be a read-only ``np.memmap``; the finiteness check streams it in row blocks.
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbedlensError(f"{what} must be a numeric matrix of shape (n_points, n_dims)") from exc
    if x.ndim != 2:
        raise EmbedlensError(f"{what} must be a matrix of shape (n_points, n_dims), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise EmbedlensError(f"{what} must hold numbers, got dtype {x.dtype}")
    n, d = x.shape
    if n < MIN_POINTS:
        raise EmbedlensError(f"a map needs at least {MIN_POINTS} points, got {n}")
    if d < 1:
        raise EmbedlensError(f"{what} has no columns")
    if np.issubdtype(x.dtype, np.floating):
        for start in range(0, n, _BLOCK_ROWS):
            block = x[start : start + _BLOCK_ROWS]
            if not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise EmbedlensError(f"{what} contains NaN or infinite values (first in row {bad})")
    return x


def prepared_rows(x: np.ndarray, metric: str) -> np.ndarray:
    """A float32 copy of ``x``: rows L2-normalised for ``"cosine"`` (all-zero rows stay zero), raw otherwise."""
    if metric == "cosine":
        return normalized_rows(x, block=_BLOCK_ROWS)
    return np.array(x, dtype=np.float32)


class Reducer:
    """Base class: maps (n, d) vectors to (n, 2) or (n, 3) float32 coordinates.

    Subclasses implement :meth:`_fit` and fill ``embedding_``, ``params_``, ``notes_`` and
    ``timings_``.
    """

    method: str = ""

    def __init__(self, *, n_components: int = 2, metric: str = "cosine", seed: int = 0) -> None:
        self.n_components = n_components
        self.metric = metric
        self.seed = seed

    def fit(self, X: np.ndarray, neighbors: Any = None) -> Reducer:
        """Compute the map of ``X``, array of shape (n_points, n_dims); returns ``self``.

        ``neighbors``: the k-NN graph of ``X``'s rows when the caller has it (a
        :class:`~embedlens.neighbors.index.Neighbors` of every row, or a cached
        :class:`~embedlens.neighbors.knn.KnnGraph`), for t-SNE and UMAP; used when it holds at least
        the k they need with the map's metric, else rebuilt with a note. PCA ignores it.
        """
        self._check_params()
        X = check_matrix(X)
        self.notes_: list[str] = []
        self.timings_ = Timings()
        self.params_: dict[str, Any] = {}
        with self.timings_.stage("total"):
            self._fit(X, neighbors)
        self.embedding_ = np.ascontiguousarray(self.embedding_, dtype=np.float32)
        self.n_samples_, self.n_features_in_ = X.shape
        return self

    def fit_transform(self, X: np.ndarray, neighbors: Any = None) -> np.ndarray:
        """Fit and return the coordinates, float32 array of shape (n_points, n_components)."""
        return self.fit(X, neighbors).embedding_

    def neighbors_needed(self, n: int) -> int:
        """How many neighbours per row the k-NN graph of ``n`` points must hold (0: none needed)."""
        return 0

    def _check_params(self) -> None:
        check_n_components(self.n_components)
        check_metric(self.metric)
        check_seed(self.seed)

    def _fit(self, X: np.ndarray, neighbors: Any = None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(type(self))

    def _timed(self, stage: str) -> AbstractContextManager[None]:
        """Time a block of :meth:`_fit` as ``stage`` in ``timings_`` (added up when entered again)."""
        return self.timings_.stage(stage)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
