"""Exact cosine top-k by blocked matrix products.

One neighbour format everywhere: :class:`Neighbors` with ``indices`` and ``scores`` of shape
(n_queries, k), best first. The vocabulary is streamed in row blocks so no (n_queries x n_items)
matrix larger than a block is ever held, and norms are precomputed once per space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import EmbedlensError

_BLOCK_ELEMS = 1 << 24  # scores held at once per block (64 MiB of float32)


@dataclass(frozen=True)
class Neighbors:
    """k nearest items per query. ``indices``/``scores``: arrays of shape (n_queries, k), best first."""

    indices: np.ndarray
    scores: np.ndarray

    def to_dict(self) -> dict[str, list]:
        return {"indices": self.indices.tolist(), "scores": self.scores.tolist()}


def row_norms(x: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """L2 norm of each row of ``x`` (n, d) as float32, computed in blocks (``x`` may be a memory map)."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for start in range(0, x.shape[0], block):
        chunk = np.asarray(x[start : start + block], dtype=np.float32)
        out[start : start + block] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
    return out


def normalized_rows(vectors: np.ndarray, norms: np.ndarray | None = None, block: int = 1 << 16, *,
                    dtype: type = np.float32) -> np.ndarray:
    """Unit-length copy of ``vectors`` (n, d), contiguous, in ``dtype``; all-zero rows stay zero.

    The one row normalisation of the package (cosine search, k-NN graphs, reducers, quality figures,
    analogies); ``vectors`` may be a memory map, read in blocks of ``block`` rows.
    """
    vectors = np.atleast_2d(vectors)
    n = vectors.shape[0]
    if norms is None:
        norms = row_norms(vectors, block) if dtype == np.float32 else np.linalg.norm(
            np.asarray(vectors, dtype=dtype), axis=1)
    norms = np.asarray(norms, dtype=dtype)
    inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-30), 0.0).astype(dtype)
    out = np.empty(vectors.shape, dtype=dtype)
    for start in range(0, n, block):
        stop = min(n, start + block)
        np.multiply(np.asarray(vectors[start:stop], dtype=dtype), inv[start:stop, None], out=out[start:stop])
    return out


def check_k(k: int, top: int, *, name: str = "k", context: str = "") -> int:
    """``k`` as an int from 1 to ``top``, or one error line saying the allowed range (every k of the package)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= top:
        raise EmbedlensError(f"{name} must be an integer from 1 to {top}{context}, got {k!r}")
    return int(k)


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``scores`` (m, n), best first."""
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def topk_cosine(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    norms: np.ndarray | None = None,
    exclude: Sequence[Sequence[int]] | None = None,
) -> Neighbors:
    """Cosine top-k of each query over all rows of ``vectors``.

    Args:
        vectors: array of shape (n_items, d).
        queries: array of shape (n_queries, d) or (d,).
        k: neighbours per query.
        norms: precomputed row norms of ``vectors``, shape (n_items,).
        exclude: for each query, row indices that must not be returned (e.g. the query's own token).
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    n, m = vectors.shape[0], q.shape[0]
    if q.shape[1] != vectors.shape[1]:
        raise EmbedlensError(f"query dimension {q.shape[1]} does not match the space's {vectors.shape[1]}")
    max_excluded = max((len(e) for e in exclude), default=0) if exclude else 0
    k = check_k(k, n - max_excluded, context=" (the items that can be returned)")
    norms = row_norms(vectors) if norms is None else np.asarray(norms, dtype=np.float32)
    inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-30), 0.0).astype(np.float32)
    q = normalized_rows(q)

    best_i = np.full((m, k), -1, dtype=np.int64)
    best_s = np.full((m, k), -np.inf, dtype=np.float32)
    block = max(1024, _BLOCK_ELEMS // max(m, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        scores = (q @ np.asarray(vectors[start:stop]).T) * inv[start:stop]  # (m, rows)
        if exclude:
            for qi, rows in enumerate(exclude):
                local = [r - start for r in rows if start <= r < stop]
                if local:
                    scores[qi, local] = -np.inf
        kk = min(k, stop - start)
        idx, val = _topk_rows(scores, kk)
        idx += start
        if start == 0 and stop == n:
            best_i, best_s = idx, val
            break
        merged_i = np.concatenate([best_i, idx], axis=1)
        merged_s = np.concatenate([best_s, val], axis=1)
        sel, best_s = _topk_rows(merged_s, k)
        best_i = np.take_along_axis(merged_i, sel, axis=1)
    return Neighbors(best_i, best_s.astype(np.float32))
