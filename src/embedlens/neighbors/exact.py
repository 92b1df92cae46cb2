"""Exact cosine top-k of free vectors over a space: a thin door to :class:`~embedlens.neighbors.index.ExactIndex`.

Kept for its public name (``embedlens.topk_cosine``); the neighbour search itself, its one format
(:class:`Neighbors`) and the row normalisation live in :mod:`embedlens.neighbors.index`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .index import ExactIndex, Neighbors, check_k, normalized_rows, row_norms

__all__ = ["Neighbors", "check_k", "normalized_rows", "row_norms", "topk_cosine"]


def topk_cosine(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    norms: np.ndarray | None = None,
    exclude: Sequence[Sequence[int]] | None = None,
) -> Neighbors:
    """Cosine top-k of each query (array (m, d) or (d,)) over all rows of ``vectors`` (n, d), best first.

    ``exclude``: for each query, rows that must not be returned (e.g. the query's own tokens).
    Same as ``ExactIndex(vectors, norms=norms).query(queries, k, exclude=exclude)``.
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    return ExactIndex(vectors, norms=norms).query(q, k, exclude=exclude)
