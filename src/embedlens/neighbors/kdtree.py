"""Exact euclidean search in a few dimensions (a map's 2-D or 3-D points) with a k-d tree.

Matrix products cost O(n) per query whatever the dimension: every point of a 262,144-point map
against every other is 6.9e10 distances. A k-d tree (scipy's ``cKDTree``) visits a handful of
cells per query instead, so all 262,144 points of a 2-D map find their 10 nearest in about two
seconds on two cores. :func:`~embedlens.neighbors.index.build_index` picks this index for
euclidean rows of at most :data:`KDTREE_MAX_DIM` dimensions.

It answers under the layer's exactness contract (:mod:`embedlens.neighbors.index`): the tree
returns a few candidates more than asked with float64 distances from direct differences; the
shared finishing step drops excluded rows, settles near-ties in float64 and breaks exact ties by
lower row, and searches again, wider, wherever a tie reaches past the candidates. So the ids equal
a float64 brute force, bit for bit, like the other exact backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from .index import NeighborIndex

KDTREE_MAX_DIM = 3  # maps; in more dimensions the tree visits ever more cells
_EPS64 = float(np.finfo(np.float64).eps)


class KDTreeIndex(NeighborIndex):
    """Exact euclidean search by scipy's k-d tree, for rows of few dimensions (map coordinates).

    Args:
        vectors: array of shape (n, d), d small (2 or 3 for a map); kept as float32, like every
            index's rows, and searched in float64.
        metric: only ``"euclidean"``.
        n_jobs: threads of the search (default: every core).
    """

    def __init__(self, vectors: Any, *, metric: str = "euclidean", n_jobs: int | None = None) -> None:
        if metric != "euclidean":
            raise EmbedlensError(f"a k-d tree index searches euclidean distances, not {metric!r}")
        super().__init__(np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)), metric=metric)
        self.n_jobs = n_jobs
        self.name = "exact (k-d tree)"
        self._tree: Any = None

    def _search(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Exclusions are not the tree's business: ``want`` already counts them and ``_finish`` drops them.
        if self._tree is None:
            spatial = require("scipy.spatial", "the k-d tree neighbour index", extra="maps", package="scipy")
            self._tree = spatial.cKDTree(np.asarray(self.vectors, dtype=np.float64))
        dist, idx = self._tree.query(np.asarray(q, dtype=np.float64), k=want,
                                     workers=-1 if self.n_jobs is None else max(1, int(self.n_jobs)))
        dist, idx = dist.reshape(q.shape[0], want), idx.reshape(q.shape[0], want)
        missing = idx >= self.n  # scipy's mark for "no more points"
        return np.where(missing, -1, idx).astype(np.int64), np.where(missing, -np.inf, -(dist * dist))

    def _tolerance(self, q32: np.ndarray) -> np.ndarray:
        """Float64 rounding of a squared distance from direct differences (a few eps of it); the squared
        distance is bounded by ``2 (|q - c|^2 + max |x - c|^2)`` around the rows' centre ``c``."""
        qc = q32.astype(np.float64) - self.center
        qq = np.einsum("ij,ij->i", qc, qc)
        return 64 * _EPS64 * 2 * (qq + self._max_sq())
