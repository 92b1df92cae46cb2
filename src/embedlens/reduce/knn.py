"""Euclidean k nearest neighbours of the (pre-PCA'd) rows that t-SNE and UMAP start from.

openTSNE's Annoy and umap-learn's NN-descent are approximate and were the slowest stage of a
full-vocabulary map (SmolLM2, 49,152 x 50: Annoy 28.6 s, NN-descent 86 s with its numba compile);
faiss' exact flat search takes 7-9 s there, is deterministic, and its neighbours are the true ones.
Without faiss the libraries' own searches are used (``None`` is returned).

Exact search costs n^2: for Gemma's 262,144 rows it took 174 s, most of a UMAP run. Above
``EXACT_MAX`` rows :func:`neighbor_graph` uses faiss' HNSW graph instead (built on one thread, so
deterministic; searched on all cores): 33 s there, 97% of the true neighbours. Each HNSW run measures
its own recall against brute force on a seeded sample of rows and reports it.
"""

from __future__ import annotations

import numpy as np

from ..errors import EmbedlensError

# Query rows per faiss search call: bounds the result heaps, not the speed.
_QUERY_BLOCK = 8192
EXACT_MAX = 100_000  # rows up to which the search is exact; above it, HNSW
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 64
_RECALL_SAMPLE = 256


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
    faiss.omp_set_num_threads(max(1, int(n_jobs)))
    index = faiss.IndexFlatL2(Z.shape[1])
    index.add(Z)
    return _search(index, Z, k, include_self)


def _search(index, Z: np.ndarray, k: int, include_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every row of ``Z`` searched in ``index`` (which holds ``Z``), with the row itself put first."""
    n = Z.shape[0]
    want = k if include_self else k + 1
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


def hnsw_knn(Z: np.ndarray, k: int, *, n_jobs: int, include_self: bool, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Approximate ``(indices, distances, info)`` like :func:`exact_knn`, from a faiss HNSW graph.

    The graph is built on one thread (faiss' multi-threaded insertion order varies, its result with
    it); the search, row by row, is deterministic on any number of threads. ``info`` holds the
    parameters and the recall measured against brute force on ``_RECALL_SAMPLE`` rows drawn with ``seed``.
    """
    import faiss

    Z = np.ascontiguousarray(Z, dtype=np.float32)
    n, d = Z.shape
    want = k if include_self else k + 1
    ef_search = max(64, 2 * want)
    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(d, HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(Z)
    index.hnsw.efSearch = ef_search
    faiss.omp_set_num_threads(max(1, int(n_jobs)))
    idx, dist = _search(index, Z, k, include_self)
    info = {"knn_method": "hnsw (faiss)", "hnsw_m": HNSW_M, "hnsw_ef_construction": HNSW_EF_CONSTRUCTION,
            "hnsw_ef_search": ef_search, **sampled_recall(Z, idx, include_self=include_self, seed=seed)}
    return idx, dist, info


def sampled_recall(Z: np.ndarray, idx: np.ndarray, *, include_self: bool, seed: int = 0) -> dict:
    """Share of the true k nearest rows that ``idx`` holds, on a seeded sample of rows (brute force)."""
    n, k = idx.shape
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(_RECALL_SAMPLE, n), replace=False))
    q = Z[rows].astype(np.float32)
    sq = q @ Z.T  # in place from here: 256 rows of a 262k-row matrix are 268 MB each copy
    sq *= -2.0
    sq += (q * q).sum(1)[:, None]
    sq += (Z * Z).sum(1)[None, :]
    sq[np.arange(len(rows)), rows] = -np.inf  # the row itself sorts first, as in idx
    skip = 0 if include_self else 1
    truth = np.argpartition(sq, skip + k - 1, axis=1)[:, : skip + k]
    if skip:
        truth = truth[truth != rows[:, None]].reshape(len(rows), k)
    # ties at the k-th distance make several sets equally true: count a hit by distance, not by id
    kth = np.take_along_axis(sq, truth, axis=1).max(axis=1, keepdims=True)
    found = np.take_along_axis(sq, idx[rows], axis=1) <= kth + 1e-5 * np.maximum(1.0, np.abs(kth))
    return {"knn_recall_sampled": round(float(found.mean()), 4), "knn_recall_rows": int(len(rows))}


def approximate_note(info: dict, n: int, k: int) -> str | None:
    """The note a map prints when its neighbours came from HNSW rather than an exhaustive search."""
    if "knn_recall_sampled" not in info:
        return None
    return (f"{n:,} points: the k-NN graph comes from an HNSW index (faiss) rather than an exhaustive search; "
            f"it holds {info['knn_recall_sampled']:.1%} of the true {k} nearest neighbours "
            f"({info['knn_recall_rows']} sampled points)")


def neighbor_graph(Z: np.ndarray, k: int, *, n_jobs: int, include_self: bool, seed: int = 0,
                   exact_max: int | None = None) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The k-NN graph t-SNE and UMAP start from: exact up to ``exact_max`` rows, HNSW above; None without faiss."""
    if not faiss_available():
        return None
    if Z.shape[0] <= (EXACT_MAX if exact_max is None else exact_max):
        idx, dist = exact_knn(Z, k, n_jobs=n_jobs, include_self=include_self)
        return idx, dist, {"knn_method": "exact (faiss)"}
    return hnsw_knn(Z, k, n_jobs=n_jobs, include_self=include_self, seed=seed)
