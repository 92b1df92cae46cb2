"""Exact euclidean k nearest neighbours of the (pre-PCA'd) rows that t-SNE and UMAP start from.

openTSNE's Annoy and umap-learn's NN-descent are approximate and were the slowest stage of a
full-vocabulary map (SmolLM2, 49,152 x 50: Annoy 28.6 s, NN-descent 86 s with its numba compile);
faiss' exact flat search takes 7-9 s there, is deterministic, and its neighbours are the true ones.
Without faiss the libraries' own searches are used (``None`` is returned).
"""

from __future__ import annotations

import numpy as np

from ..errors import EmbedlensError

# Query rows per faiss search call: bounds the result heaps, not the speed.
_QUERY_BLOCK = 8192


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Threads to use: ``None`` or -1 means every core this process may run on."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs is None or n_jobs == -1:
        return cores
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise EmbedlensError(f"n_jobs must be a positive integer, -1 or None (all cores), got {n_jobs!r}")
    return int(n_jobs)


def faiss_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def exact_knn(Z: np.ndarray, k: int, *, n_jobs: int, include_self: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``(indices, distances)`` of each row's ``k`` nearest rows, euclidean, nearest first; None without faiss.

    With ``include_self`` the row itself comes first at distance 0 (umap-learn's layout: k columns in
    all); without it, the k others (openTSNE's). A duplicate row may stand where the row itself would.
    """
    if not faiss_available():
        return None
    import faiss

    Z = np.ascontiguousarray(Z, dtype=np.float32)
    n, d = Z.shape
    want = k if include_self else k + 1
    faiss.omp_set_num_threads(max(1, int(n_jobs)))
    index = faiss.IndexFlatL2(d)
    index.add(Z)
    out_i = np.empty((n, k), dtype=np.int64)
    out_d = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _QUERY_BLOCK):
        stop = min(n, start + _QUERY_BLOCK)
        sq, idx = index.search(Z[start:stop], want)
        rows = np.arange(start, stop)
        # Put the row itself in column 0 (it may be missing, or not first, among exact duplicates).
        is_self = idx == rows[:, None]
        others_first = np.argsort(~is_self, axis=1, kind="stable")
        idx = np.take_along_axis(idx, others_first, axis=1)
        sq = np.take_along_axis(sq, others_first, axis=1)
        missing = ~is_self.any(axis=1)
        idx[missing, 1:] = idx[missing, :-1]
        sq[missing, 1:] = sq[missing, :-1]
        idx[:, 0] = rows
        sq[:, 0] = 0.0
        if not include_self:
            idx, sq = idx[:, 1:], sq[:, 1:]
        out_i[start:stop] = idx[:, :k]
        out_d[start:stop] = np.sqrt(np.maximum(sq[:, :k], 0.0))
    return out_i, out_d
