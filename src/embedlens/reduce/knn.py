"""Euclidean k nearest neighbours of the (pre-PCA'd) rows that t-SNE and UMAP start from.

openTSNE's Annoy and umap-learn's NN-descent are approximate and were the slowest stage of a
full-vocabulary map (SmolLM2, 49,152 x 50: Annoy 28.6 s, NN-descent 86 s with its numba compile);
faiss' exact flat search takes 7-9 s there, is deterministic, and its neighbours are the true ones.
Without faiss the libraries' own searches are used (``None`` is returned).

Exact search costs n^2: for Gemma's 262,144 rows it took 174 s, most of a UMAP run. Above
``EXACT_MAX`` rows :func:`neighbor_graph` uses faiss' HNSW graph instead (built on one thread, so
deterministic; searched on all cores): 33 s there, 97% of the true neighbours. Each HNSW run measures
its own recall against brute force on a seeded sample of rows and reports it. Inputs with many
identical rows stay exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedlensError

# Query rows per faiss search call: bounds the result heaps, not the speed.
_QUERY_BLOCK = 8192
EXACT_MAX = 100_000  # rows up to which the search is exact; above it, HNSW
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH_MIN = 32, 64, 64
# HNSW loses neighbours among large groups of identical rows (measured: 49% recall with half the rows
# equal); above this share the search stays exact.
MAX_DUPLICATE_SHARE = 0.01
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


def _search(index, Z: np.ndarray, k: int, include_self: bool, rows: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` (default: all) of ``Z`` searched in ``index`` (which holds ``Z``), the row itself first."""
    rows = np.arange(Z.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    want = k if include_self else k + 1
    out_i = np.empty((len(rows), k), dtype=np.int64)
    out_d = np.empty((len(rows), k), dtype=np.float32)
    for start in range(0, len(rows), _QUERY_BLOCK):
        block = rows[start: start + _QUERY_BLOCK]
        sq, idx = index.search(Z[block], want)
        # Put the row itself in column 0 (it may be missing, or not first, among exact duplicates).
        is_self = idx == block[:, None]
        others_first = np.argsort(~is_self, axis=1, kind="stable")
        idx = np.take_along_axis(idx, others_first, axis=1)
        sq = np.take_along_axis(sq, others_first, axis=1)
        missing = ~is_self.any(axis=1)
        idx[missing, 1:] = idx[missing, :-1]
        sq[missing, 1:] = sq[missing, :-1]
        idx[:, 0] = block
        sq[:, 0] = 0.0
        if not include_self:
            idx, sq = idx[:, 1:], sq[:, 1:]
        out_i[start: start + len(block)] = idx[:, :k]
        out_d[start: start + len(block)] = np.sqrt(np.maximum(sq[:, :k], 0.0))
    return out_i, out_d


def duplicate_share(Z: np.ndarray, seed: int = 0) -> float:
    """Share of rows that repeat another row (by a random projection: equal rows always collide)."""
    if Z.shape[0] < 2:
        return 0.0
    r = np.random.default_rng(seed).standard_normal(Z.shape[1])
    return 1.0 - np.unique(Z @ r).size / Z.shape[0]


def hnsw_knn(Z: np.ndarray, k: int, *, n_jobs: int, include_self: bool, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Approximate ``(indices, distances, info)`` like :func:`exact_knn`, from a faiss HNSW graph.

    The graph is built on one thread (faiss' multi-threaded insertion order varies, its result with
    it); the search, row by row, is deterministic on any number of threads. Rows the graph cannot give
    k neighbours (faiss' label -1) are searched exhaustively. ``info`` holds the parameters and the
    recall measured against brute force on ``_RECALL_SAMPLE`` rows drawn with ``seed``.
    """
    import faiss

    Z = np.ascontiguousarray(Z, dtype=np.float32)
    n, d = Z.shape
    want = k if include_self else k + 1
    ef_search = max(HNSW_EF_SEARCH_MIN, 2 * want)
    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(d, HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(Z)
    index.hnsw.efSearch = ef_search
    faiss.omp_set_num_threads(max(1, int(n_jobs)))
    idx, dist = _search(index, Z, k, include_self)
    short = np.flatnonzero((idx < 0).any(axis=1))
    if short.size:
        flat = faiss.IndexFlatL2(d)
        flat.add(Z)
        idx[short], dist[short] = _search(flat, Z, k, include_self, rows=short)
    info = {"knn_method": "hnsw (faiss)", "hnsw_m": HNSW_M, "hnsw_ef_construction": HNSW_EF_CONSTRUCTION,
            "hnsw_ef_search": ef_search, "rows_searched_exactly": int(short.size),
            **sampled_recall(Z, idx, include_self=include_self, seed=seed)}
    return idx, dist, info


def sampled_recall(Z: np.ndarray, idx: np.ndarray, *, include_self: bool, seed: int = 0) -> dict:
    """Share of the true k nearest rows that ``idx`` holds, on a seeded sample of rows (brute force).

    Rows are centred first (float32 ``|q|^2 + |z|^2 - 2 q.z`` loses the small distances of rows far
    from the origin) and scanned in blocks, so 262,144 rows cost ~70 MB rather than ~1 GB. Ties at the
    k-th distance make several neighbour sets equally true: a hit is counted by distance, not by id.
    """
    n, k = idx.shape
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(_RECALL_SAMPLE, n), replace=False))
    mu = Z.mean(axis=0, dtype=np.float64).astype(np.float32)
    q = Z[rows] - mu
    qn = np.einsum("ij,ij->i", q, q)[:, None]
    keep = k if include_self else k + 1  # the row itself (at -inf) and the true neighbours
    best = np.full((len(rows), keep), np.inf, dtype=np.float32)
    for start in range(0, n, _QUERY_BLOCK * 8):
        c = Z[start: start + _QUERY_BLOCK * 8] - mu
        sq = q @ c.T
        sq *= -2.0
        sq += qn
        sq += np.einsum("ij,ij->i", c, c)[None, :]
        inside = np.flatnonzero((rows >= start) & (rows < start + len(c)))
        sq[inside, rows[inside] - start] = -np.inf
        best = np.partition(np.concatenate([best, sq], axis=1), keep - 1, axis=1)[:, :keep]
    kth = best.max(axis=1, keepdims=True)
    got = ((Z[idx[rows]] - Z[rows][:, None, :]) ** 2).sum(axis=-1)  # direct, no cancellation
    found = got <= kth + 1e-4 * np.abs(kth) + 1e-6
    return {"knn_recall_sampled": round(float(found.mean()), 4), "knn_recall_rows": int(len(rows))}


def record_graph(reducer: Any, info: dict, n: int, k: int) -> str:
    """Put a :func:`neighbor_graph` ``info`` into a reducer's ``params_`` (and, for HNSW, a note with its
    measured recall into ``notes_``); returns the method's name."""
    info = dict(info)
    method = info.pop("knn_method")
    reducer.params_.update(info)
    if "knn_recall_sampled" in info:
        reducer.notes_.append(
            f"{n:,} points: the k-NN graph comes from an HNSW index (faiss) rather than an exhaustive search; "
            f"it holds {info['knn_recall_sampled']:.1%} of the true {k} nearest neighbours "
            f"({info['knn_recall_rows']} sampled points)")
    return method


def neighbor_graph(Z: np.ndarray, k: int, *, n_jobs: int, include_self: bool, seed: int = 0,
                   exact_max: int | None = None) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The k-NN graph t-SNE and UMAP start from: exact up to ``exact_max`` rows, HNSW above; None without faiss."""
    if not faiss_available():
        return None
    info: dict = {"knn_method": "exact (faiss)"}
    if Z.shape[0] > (EXACT_MAX if exact_max is None else exact_max):
        share = duplicate_share(Z, seed)
        if share <= MAX_DUPLICATE_SHARE:
            return hnsw_knn(Z, k, n_jobs=n_jobs, include_self=include_self, seed=seed)
        info["exact_because"] = f"{share:.1%} of the rows repeat others (HNSW loses neighbours among them)"
    idx, dist = exact_knn(Z, k, n_jobs=n_jobs, include_self=include_self)
    return idx, dist, info
