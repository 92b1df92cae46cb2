"""The one nearest-neighbour layer: an index is built once over the rows of a space and then queried.

The shape is openTSNE's ``KNNIndex`` (build, then ``query``) and umap-learn's ``precomputed_knn``:

>>> index = build_index(vectors, metric="cosine")          # exact, exhaustive bf16 or HNSW by size
>>> nb = index.query(rows, 10, exclude_self=True)          # rows of the space (an int array) ...
>>> nb = index.query(vectors_q, 10)                        # ... or free vectors, (m, d) floats
>>> nb.indices, nb.scores                                  # (m, 10) each, best first

One format everywhere: :class:`Neighbors` with ``indices`` (int64) and ``scores`` (float32) of shape
(n_queries, k), best first. For ``metric="cosine"`` a score is the cosine similarity (higher is
better), for ``"euclidean"`` it is the euclidean distance (lower is better); ``Neighbors.distances()``
gives a distance in both cases (``1 - cos`` for cosine), as t-SNE and UMAP want it.

Backends (all answer the same ``query``):

* :class:`ExactIndex`: blocked matrix products, float32, through ``numpy``, ``torch`` or faiss'
  flat index (``faiss``); ``auto`` takes numpy for a few queries and faiss (else torch) for many.
* :class:`BFloat16Index`: bfloat16 products for a short list, then exact re-scoring; approximate,
  offered only where :func:`embedlens.hardware.fast_bfloat16` says bfloat16 is fast.
* :class:`HNSWIndex`: faiss' HNSW graph; approximate, its recall is measured when it is built.
* :class:`PrecomputedIndex`: a stored k-NN graph (the cached ``embedlens knn`` graph); queries it
  cannot answer (free vectors, a larger k, other exclusions) go to a fallback index.
* :class:`~embedlens.neighbors.kdtree.KDTreeIndex`: scipy's k-d tree for euclidean rows of 2-3
  dimensions (map points); exact, and O(log n) per query where products are O(n).

Exactness contract. Every backend fetches a few candidates more than asked (``_MARGIN``). Exact
backends then make the order canonical: wherever two float32 scores lie closer than float32 rounding
could separate, the row's candidates are re-scored in float64 and sorted by score, ties by lower row
index; when the last candidate is itself that close to the k-th, the row is searched exhaustively in
float64. So every exact backend returns the ids of a float64 brute force, bit for bit, and exact
duplicate rows (SmolLM2 has some) come in row order. "Self" is dropped by row id, never as column 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from ..progress import check_stop
from ..timing import Timings

METRICS = ("cosine", "euclidean")
EXACT_BACKENDS = ("numpy", "torch", "faiss")
INDEX_KINDS = ("auto", "exact", "hnsw", "bf16")  # what build_index accepts
EXACT_MAX = 100_000  # rows up to which build_index is exact in float32
# Rows up to which a graph of every row is still found by exhaustive products (bfloat16 short lists
# re-scored exactly where bfloat16 is fast, else exact float32); HNSW above. On Gemma 3's 262,144 x 640
# input embeddings faiss HNSW (M 16, efConstruction 64) reached only 0.69 / 0.80 / 0.87 recall@10 at
# efSearch 64 / 256 / 1,024 (a 55 s single-threaded build, then ~6 minutes to search every row at
# efSearch 1,024), and faiss IVF 1,024 lists 0.93 at 128 probes (~14 minutes): the short lists of an
# exhaustive bfloat16 pass keep every neighbour for about that time.
EXHAUSTIVE_MAX = 300_000

# Measured on SmolLM2's first 8,000 rows (cosine, recall@10 on 500 rows): efConstruction 64 gave 0.80 / 0.86 /
# 0.90 / 0.93 at efSearch 64 / 128 / 256 / 512, efConstruction 200 gave 0.92 / 0.95 / 0.96 / 0.97 (2.6x the build).
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH_MIN, HNSW_EF_SEARCH_MAX = 32, 128, 64, 1024
MAX_DUPLICATE_SHARE = 0.01  # HNSW loses neighbours among many identical rows: above this share stay exact
RECALL_SAMPLE = 256  # rows on which an approximate index measures its recall when built
_MARGIN = 8  # candidates fetched beyond k, to make the order canonical at the k-th place
_EPS32 = float(np.finfo(np.float32).eps)
_SCORE_ELEMS = 1 << 24  # float32 scores held at once per block (64 MiB)
_NUMPY_ELEMS = 1 << 24  # "auto" below this many query x row products: numpy (no torch/faiss import)
# one_off_backend (used by the graph-recall and quality-truth searches): a one-off search streams the rows through
# numpy, with no copy of them, for up to this many cosine queries: faiss and torch first build a normalised copy
# of every row (faiss a second one in its index), which costs more than a few queries (a graph's recall on 256
# rows of Gemma's first 131,072: numpy 4.2 s, faiss 10.5 s; at 2,000 queries faiss wins, 15 s against 22 s) ...
_STREAM_QUERIES = 512
# ... and for any number of queries over a matrix above this size (an 8B model's 2.1 GB vocabulary: +4 GB).
_COPY_MAX_BYTES = 1 << 30
_GATHER_ELEMS = 1 << 22  # float64 elements gathered at once when re-scoring (32 MiB)


@dataclass(frozen=True)
class Neighbors:
    """k nearest rows per query: ``indices`` (int64) and ``scores`` (float32), shape (n_queries, k), best first.

    ``scores`` are cosine similarities for ``metric="cosine"`` and euclidean distances for ``"euclidean"``.
    """

    indices: np.ndarray
    scores: np.ndarray
    metric: str = "cosine"

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def distances(self) -> np.ndarray:
        """Distances, nearest first: ``1 - cos`` for cosine, the euclidean distance otherwise (float32)."""
        if self.metric == "cosine":
            return np.maximum(1.0 - self.scores, 0.0).astype(np.float32)
        return np.asarray(self.scores, dtype=np.float32)

    def first(self, k: int) -> Neighbors:
        """The first ``k`` columns (the k nearest)."""
        return Neighbors(np.ascontiguousarray(self.indices[:, :k]), np.ascontiguousarray(self.scores[:, :k]),
                         self.metric)

    def with_self(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """umap-learn's ``precomputed_knn`` layout: ``(indices, distances)`` with each row itself first (distance 0)."""
        m = self.indices.shape[0]
        rows = np.arange(m) if rows is None else np.asarray(rows, dtype=np.int64)
        idx = np.concatenate([rows[:, None], self.indices], axis=1)
        dist = np.concatenate([np.zeros((m, 1), dtype=np.float32), self.distances()], axis=1)
        return idx, dist

    def to_dict(self) -> dict[str, Any]:
        return {"indices": self.indices.tolist(), "scores": self.scores.tolist(), "metric": self.metric}


def check_k(k: int, top: int, *, name: str = "k", context: str = "") -> int:
    """``k`` as an int from 1 to ``top``, or one error line saying the allowed range (every k of the package)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= top:
        raise EmbedlensError(f"{name} must be an integer from 1 to {top}{context}, got {k!r}")
    return int(k)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise EmbedlensError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    return metric


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


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of ``scores`` (m, n), best (highest) first; ties by lower column."""
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part.sort(axis=1)  # so that the stable sort below breaks ties by column
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _canonical_topk(keys: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k highest ``keys`` per row, best first, ties by lower column; O(n) per row (no full sort)."""
    m, n = keys.shape
    if k >= n:
        return np.lexsort((np.broadcast_to(np.arange(n), keys.shape), -keys), axis=1)
    kth = -np.partition(-keys, k - 1, axis=1)[:, k - 1 : k]
    better = keys > kth
    tie = keys == kth
    need = k - better.sum(axis=1, keepdims=True)
    take = better | (tie & (np.cumsum(tie, axis=1) <= need))
    cols = np.nonzero(take)[1].reshape(m, k)  # in column order
    vals = np.take_along_axis(keys, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def _pair_keys(q: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(q, dtype=np.int64) * np.int64(n) + np.asarray(r, dtype=np.int64)


def _excluded(cand: np.ndarray, eq: np.ndarray, er: np.ndarray, n: int) -> np.ndarray:
    """Which candidates (m, L) (-1: none) are excluded rows of their query (the pairs ``eq``, ``er``)."""
    m, L = cand.shape
    counts = np.bincount(eq, minlength=m)
    width = int(counts.max(initial=0))
    if eq.size > 1 and bool((np.diff(eq) < 0).any()):  # the table below fills each query's pairs in turn
        order = np.argsort(eq, kind="stable")
        eq, er = eq[order], er[order]
    if width <= 4:
        # A few rows per query (self, a query word's tokens): one dense table, compared in place; a set
        # lookup of every (query, candidate) pair took most of a whole-map search of 262,144 points.
        table = np.full((m, max(width, 1)), -2, dtype=np.int64)
        table[eq, np.arange(eq.size) - np.repeat(np.cumsum(counts) - counts, counts)] = er
        return (cand[:, :, None] == table[:, None, :]).any(axis=2)
    return np.isin(_pair_keys(np.repeat(np.arange(m), L), cand.ravel(), n),
                   _pair_keys(eq, er, n)).reshape(m, L) & (cand >= 0)


class NeighborIndex:
    """Base class: built once over ``vectors`` (n, d), answers :meth:`query`.

    Subclasses implement :meth:`_search`: the ``want`` best candidates of each query by the backend's
    own float32 "key" (higher is better: cosine similarity, or minus the squared euclidean distance).

    Attributes:
        name: the backend, e.g. ``"exact (faiss)"``, ``"hnsw (faiss)"``.
        exact: whether answers equal brute force.
        recall: measured recall@k of an approximate index (None for exact ones), on ``info["recall_rows"]`` rows.
        info: every parameter that shaped it, for manifests.
    """

    name = "index"
    exact = True
    margin = _MARGIN  # candidates fetched beyond k (a backend with float64 keys needs fewer)

    def __init__(self, vectors: Any, *, metric: str = "cosine", norms: np.ndarray | None = None) -> None:
        vectors = vectors.vectors if hasattr(vectors, "vectors") and not isinstance(vectors, np.ndarray) else vectors
        if not isinstance(vectors, np.ndarray):
            vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise EmbedlensError(f"a neighbour index needs a (n, d) matrix, got shape {vectors.shape}")
        self.vectors = vectors  # never copied here: may be a read-only memory map
        self.metric = check_metric(metric)
        self.n, self.dim = (int(s) for s in vectors.shape)
        self._norms = None if norms is None else np.asarray(norms, dtype=np.float32)
        self.recall: float | None = None
        self.info: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, dim={self.dim}, metric={self.metric!r}, name={self.name!r})"

    # -- shared pieces ----------------------------------------------------------------------------

    @property
    def norms(self) -> np.ndarray:
        if self._norms is None:
            self._norms = row_norms(self.vectors)
        return self._norms

    @property
    def center(self) -> np.ndarray:
        """The rows' mean (float32): euclidean products run on centred rows, where float32 keeps small distances."""
        if getattr(self, "_center", None) is None:
            total = np.zeros(self.dim)
            for start in range(0, self.n, 1 << 16):
                total += np.asarray(self.vectors[start : start + (1 << 16)], dtype=np.float64).sum(axis=0)
            self._center = (total / max(self.n, 1)).astype(np.float32)
        return self._center

    def prepared(self, x: np.ndarray) -> np.ndarray:
        """Rows as the products see them (float32, contiguous): unit rows for cosine, centred rows for euclidean."""
        if self.metric == "cosine":
            return normalized_rows(x)
        out = np.empty(x.shape, dtype=np.float32)
        for start in range(0, x.shape[0], 1 << 16):
            np.subtract(np.asarray(x[start : start + (1 << 16)], dtype=np.float32), self.center,
                        out=out[start : start + (1 << 16)])
        return out

    def describe(self) -> dict[str, Any]:
        """What a manifest records about this index."""
        out: dict[str, Any] = {"knn_method": self.name, "knn_metric": self.metric, **self.info}
        if self.recall is not None:
            out["knn_recall"] = round(float(self.recall), 4)
        return out

    def _keys64(self, q64: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """Exact float64 keys of candidate rows ``cand`` (m, L) (-1: none) for float64 queries ``q64`` (m, d)."""
        m, L = cand.shape
        out = np.full((m, L), -np.inf)
        if m == 0 or L == 0:
            return out
        step = max(1, _GATHER_ELEMS // max(1, L * self.dim))
        qn = np.linalg.norm(q64, axis=1) if self.metric == "cosine" else None
        for start in range(0, m, step):
            stop = min(m, start + step)
            c = cand[start:stop]
            ok = c >= 0
            g = np.asarray(self.vectors[np.where(ok, c, 0).ravel()], dtype=np.float64).reshape(stop - start, L, -1)
            if self.metric == "cosine":
                dots = np.einsum("bld,bd->bl", g, q64[start:stop])
                gn = np.sqrt(np.einsum("bld,bld->bl", g, g))
                denom = gn * qn[start:stop, None]
                key = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
            else:
                diff = g - q64[start:stop, None, :]
                key = -np.einsum("bld,bld->bl", diff, diff)
            out[start:stop] = np.where(ok, key, -np.inf)
        return out

    def _exhaustive64(self, q64: np.ndarray, k: int, ex_q: np.ndarray, ex_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical top-k of a few queries by a float64 scan of every row (ties: lower row first)."""
        m = q64.shape[0]
        out_i = np.empty((m, k), dtype=np.int64)
        out_k = np.empty((m, k))
        step = max(1, (1 << 22) // max(self.n, 1))
        block = 1 << 14
        for start in range(0, m, step):
            stop = min(m, start + step)
            qb = q64[start:stop]
            keys = np.empty((stop - start, self.n))
            for r0 in range(0, self.n, block):
                x = np.asarray(self.vectors[r0 : r0 + block], dtype=np.float64)
                if self.metric == "cosine":
                    xn = np.sqrt(np.einsum("ij,ij->i", x, x))
                    qn = np.linalg.norm(qb, axis=1)
                    denom = qn[:, None] * xn[None, :]
                    d = qb @ x.T
                    keys[:, r0 : r0 + len(x)] = np.where(denom > 0, d / np.where(denom > 0, denom, 1.0), 0.0)
                else:
                    keys[:, r0 : r0 + len(x)] = -(
                        np.einsum("ij,ij->i", qb, qb)[:, None] - 2 * (qb @ x.T) + np.einsum("ij,ij->i", x, x)[None, :])
            sel = (ex_q >= start) & (ex_q < stop)
            keys[ex_q[sel] - start, ex_r[sel]] = -np.inf
            order = _canonical_topk(keys, k)
            out_i[start:stop] = order
            if self.metric == "euclidean":  # direct differences: no cancellation in the returned distances
                g = np.asarray(self.vectors[order.ravel()], dtype=np.float64).reshape(stop - start, k, -1)
                diff = g - qb[:, None, :]
                out_k[start:stop] = -np.einsum("bld,bld->bl", diff, diff)
            else:
                out_k[start:stop] = np.take_along_axis(keys, order, axis=1)
        return out_i, out_k

    def _tolerance(self, q32: np.ndarray) -> np.ndarray:
        """Per query: how far apart two float32 keys can be and still be in the wrong order."""
        # Rounding of a float32 dot product of unit vectors: ~sqrt(d) eps for blocked/pairwise sums (what BLAS,
        # faiss and torch do), d eps in the worst case; 8 sqrt(d) eps + 32 eps covers every float32 backend's
        # normalisation and accumulation with room to spare (cosine: 2.4e-5 at d = 576).
        bound = (8 * np.sqrt(self.dim) + 32) * _EPS32
        if self.metric == "cosine":
            return np.full(q32.shape[0], bound)
        qc = q32.astype(np.float64) - self.center
        qq = np.einsum("ij,ij->i", qc, qc)
        return bound * 2 * (qq + self._max_sq())

    def _max_sq(self) -> float:
        """Largest squared norm of a centred row (the scale of float32 rounding in euclidean keys)."""
        if getattr(self, "_max_sq_value", None) is None:
            best = 0.0
            for start in range(0, self.n, 1 << 16):
                c = np.asarray(self.vectors[start : start + (1 << 16)], dtype=np.float64) - self.center
                best = max(best, float(np.einsum("ij,ij->i", c, c).max(initial=0.0)))
            self._max_sq_value = best
        return self._max_sq_value

    def _queries(self, what: Any) -> tuple[np.ndarray | None, np.ndarray]:
        """``(rows or None, float32 query vectors)`` from rows of the space, free vectors, or None (all rows)."""
        if what is None:
            rows = np.arange(self.n, dtype=np.int64)
        else:
            arr = np.asarray(what)
            if arr.dtype == object:
                raise EmbedlensError("queries must be row numbers (integers) or vectors (floats)")
            if np.issubdtype(arr.dtype, np.integer):
                rows = np.atleast_1d(arr).astype(np.int64)
                if rows.ndim != 1:
                    raise EmbedlensError(f"query rows must be a 1-D list of row numbers, got shape {arr.shape}")
                if rows.size and (rows.min() < 0 or rows.max() >= self.n):
                    raise EmbedlensError(f"query rows must be from 0 to {self.n - 1}")
            else:
                q = np.atleast_2d(np.asarray(arr, dtype=np.float32))
                if q.ndim != 2 or q.shape[1] != self.dim:
                    raise EmbedlensError(f"query dimension {q.shape[-1]} does not match the space's {self.dim}")
                if not np.isfinite(q).all():
                    raise EmbedlensError("query vectors contain NaN or infinite values")
                return None, q
        return rows, self._row_vectors(rows)

    def _row_vectors(self, rows: np.ndarray) -> np.ndarray:
        if rows.size == self.n and np.array_equal(rows, np.arange(self.n)):
            return np.asarray(self.vectors, dtype=np.float32)
        return np.asarray(self.vectors[np.sort(rows)], dtype=np.float32)[np.argsort(np.argsort(rows))]

    # -- the one query --------------------------------------------------------------------------------

    def query(
        self,
        queries: Any = None,
        k: int = 10,
        *,
        exclude_self: bool | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> Neighbors:
        """The ``k`` nearest rows of each query, best first.

        Args:
            queries: rows of the space (an integer array of shape (m,)), free vectors (floats, shape
                (m, d) or (d,)), or None for every row.
            k: neighbours per query.
            exclude_self: drop each query row itself (by id, not by position: a duplicate row stays).
                Default: True for rows, False for vectors.
            exclude: for each query, more rows that must not be returned (e.g. the tokens of a query word).
        """
        rows, q = self._queries(queries)
        m = q.shape[0]
        if exclude_self is None:
            exclude_self = rows is not None
        if exclude_self and rows is None:
            raise EmbedlensError("exclude_self needs query rows, not free vectors")
        ex_q: list[np.ndarray] = []
        ex_r: list[np.ndarray] = []
        if exclude_self:
            ex_q.append(np.arange(m, dtype=np.int64))
            ex_r.append(rows)  # type: ignore[arg-type]
        if exclude is not None:
            if len(exclude) != m:
                raise EmbedlensError(f"exclude holds {len(exclude)} lists for {m} queries")
            lengths = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=m)
            ex_q.append(np.repeat(np.arange(m, dtype=np.int64), lengths))
            ex_r.append(np.fromiter((int(r) for e in exclude for r in e), dtype=np.int64, count=int(lengths.sum())))
        eq = np.concatenate(ex_q) if ex_q else np.zeros(0, dtype=np.int64)
        er = np.concatenate(ex_r) if ex_r else np.zeros(0, dtype=np.int64)
        if er.size and (er.min() < 0 or er.max() >= self.n):
            raise EmbedlensError(f"excluded rows must be from 0 to {self.n - 1}")
        if exclude is not None and eq.size:  # (self alone is one pair per query, already in query order)
            pairs = np.unique(_pair_keys(eq, er, self.n))
            eq, er = pairs // self.n, pairs % self.n
        max_ex = int(np.bincount(eq, minlength=m).max()) if eq.size else 0
        k = check_k(k, self.n - max_ex, context=" (the items that can be returned)")
        if m == 0:
            return Neighbors(np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32), self.metric)
        # A few queries fetch a wider margin (it costs nothing next to the scan, and spares a second scan
        # when a group of identical rows sits at the k-th place).
        want = min(self.n, k + max_ex + (self.margin if m > 64 else 8 * self.margin))
        cand, key32 = self._search(q, want, eq, er)
        idx, key, redo = self._finish(q, cand, key32, k, eq, er)
        todo = np.flatnonzero(redo)
        while todo.size:
            # The k-th place is not certain yet (e.g. a group of identical rows reaches past the candidates):
            # search those queries again with four times the candidates, up to every row.
            if want >= self.n:
                sel = np.isin(eq, todo)
                remap = np.full(m, -1, dtype=np.int64)
                remap[todo] = np.arange(todo.size)
                idx[todo], key[todo] = self._exhaustive64(q[todo].astype(np.float64), k, remap[eq[sel]], er[sel])
                break
            want = min(self.n, 4 * want)
            sel = np.isin(eq, todo)
            remap = np.full(m, -1, dtype=np.int64)
            remap[todo] = np.arange(todo.size)
            sub_q, sub_r = remap[eq[sel]], er[sel]
            cand, key32 = self._search(q[todo], want, sub_q, sub_r)
            i2, k2, r2 = self._finish(q[todo], cand, key32, k, sub_q, sub_r)
            idx[todo], key[todo] = i2, k2
            todo = todo[r2]
        scores = key if self.metric == "cosine" else np.sqrt(np.maximum(-key, 0.0))
        return Neighbors(idx, scores.astype(np.float32), self.metric)

    def _finish(self, q32: np.ndarray, cand: np.ndarray, key32: np.ndarray, k: int, eq: np.ndarray,
                er: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop excluded candidates and make the order canonical; also says which queries' k-th place is uncertain."""
        m, L = cand.shape
        key32 = np.where(cand >= 0, key32.astype(np.float64), -np.inf)
        if eq.size:
            bad = _excluded(cand, eq, er, self.n)
            key32[bad] = -np.inf
            cand = np.where(bad, -1, cand)
        # Candidates by float32 key, ties by row (so that equal keys come in row order).
        order = np.lexsort((np.where(cand >= 0, cand, np.iinfo(np.int64).max), -key32), axis=1)
        cand = np.take_along_axis(cand, order, axis=1)
        key32 = np.take_along_axis(key32, order, axis=1)
        valid = (cand >= 0).sum(axis=1)
        tol = self._tolerance(q32)[:, None]
        # Entries whose float32 key lies within rounding of a neighbour's (chains included) get their exact
        # float64 key; every other entry is more than ``tol`` from both neighbours, so its place is certain.
        close = np.isfinite(key32[:, 1:]) & (key32[:, :-1] - key32[:, 1:] <= tol)
        flag = np.zeros(cand.shape, dtype=bool)
        flag[:, :-1] |= close
        flag[:, 1:] |= close
        redo = valid < k
        if self.exact:
            # The k-th place is certain only when the last candidate is clearly worse than the k-th
            # (or every row that may be returned is a candidate).
            allowed = self.n - np.bincount(eq, minlength=m)
            last = key32[np.arange(m), np.maximum(valid - 1, 0)]
            redo |= (valid < allowed) & (last >= key32[:, k - 1] - 2 * tol[:, 0])
        flag[redo] = False
        q64 = q32.astype(np.float64)
        fr, fc = np.nonzero(flag)
        if fr.size:
            key32[fr, fc] = self._pair_keys64(q64, fr, cand[fr, fc])
            order = np.lexsort((np.where(cand >= 0, cand, np.iinfo(np.int64).max), -key32), axis=1)
            cand = np.take_along_axis(cand, order, axis=1)
            key32 = np.take_along_axis(key32, order, axis=1)
        return cand[:, :k].copy(), key32[:, :k].copy(), redo

    def _pair_keys64(self, q64: np.ndarray, qi: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact float64 keys of the pairs (query ``qi[j]``, row ``rows[j]``)."""
        out = np.empty(qi.size)
        step = max(1, _GATHER_ELEMS // max(1, self.dim))
        if self.metric == "cosine":
            qn = np.sqrt(np.einsum("ij,ij->i", q64, q64))
        for start in range(0, qi.size, step):
            r = rows[start : start + step]
            g = np.asarray(self.vectors[r], dtype=np.float64)
            q = q64[qi[start : start + step]]
            if self.metric == "cosine":
                denom = np.sqrt(np.einsum("ij,ij->i", g, g)) * qn[qi[start : start + step]]
                dots = np.einsum("ij,ij->i", g, q)
                out[start : start + step] = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
            else:
                g -= q
                out[start : start + step] = -np.einsum("ij,ij->i", g, g)
        return out

    def _search(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(type(self))  # pragma: no cover - abstract


class ExactIndex(NeighborIndex):
    """Exact search by blocked float32 matrix products (``numpy``, ``torch`` or faiss' flat index).

    Args:
        vectors: array of shape (n, d) (a read-only memory map is fine: numpy/torch never copy it whole).
        metric: ``"cosine"`` or ``"euclidean"``.
        backend: ``"auto"`` (numpy for few queries, faiss or else torch for many), ``"numpy"``,
            ``"torch"`` or ``"faiss"``.
        norms: precomputed row norms, shape (n,).
        n_jobs: threads for faiss (default: its own).
    """

    def __init__(self, vectors: Any, *, metric: str = "cosine", backend: str = "auto",
                 norms: np.ndarray | None = None, n_jobs: int | None = None) -> None:
        super().__init__(vectors, metric=metric, norms=norms)
        if backend not in ("auto", *EXACT_BACKENDS):
            raise EmbedlensError(f"unknown exact backend {backend!r}: choose auto, {', '.join(EXACT_BACKENDS)}")
        if backend == "faiss":

            require("faiss", "the faiss neighbour backend", extra="graph", package="faiss-cpu")
        self.backend = backend
        self.n_jobs = n_jobs
        self._unit: np.ndarray | None = None
        self._faiss: Any = None
        self.name = f"exact ({backend})"

    def _pick(self, m: int) -> str:
        if self.backend != "auto":
            return self.backend
        if m * self.n <= _NUMPY_ELEMS:
            return "numpy"
        import importlib.util

        return "faiss" if importlib.util.find_spec("faiss") is not None else "torch"

    def unit_rows(self) -> np.ndarray:
        """The rows the products run on (float32, contiguous): unit rows for cosine, centred rows for euclidean."""
        if self._unit is None:
            self._unit = normalized_rows(self.vectors, self.norms) if self.metric == "cosine" else self.prepared(
                self.vectors)
        return self._unit

    def _prepared_queries(self, q: np.ndarray) -> np.ndarray:
        return self.prepared(q)

    def _search(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        backend = self._pick(q.shape[0])
        qp = self._prepared_queries(q)
        if backend == "faiss":
            return self._search_faiss(qp, want)
        if backend == "torch":
            return self._search_torch(qp, want, eq, er)
        return self._search_numpy(qp, want, eq, er)

    def _row_terms(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(scale per row, squared norm per row): cosine scores = (q @ x) * inv_norm; euclidean keys need |x|^2."""
        if self.metric == "cosine":
            norms = self.norms
            return np.where(norms > 0, 1.0 / np.maximum(norms, 1e-30), 0.0).astype(np.float32), None
        c = self.unit_rows()
        return np.ones(self.n, dtype=np.float32), np.einsum("ij,ij->i", c, c)

    def _search_numpy(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = q.shape[0]
        scale, sq = self._row_terms()
        best_i = np.full((m, want), -1, dtype=np.int64)
        best_s = np.full((m, want), -np.inf, dtype=np.float32)
        block = max(1024, _SCORE_ELEMS // max(m, 1))
        for start in range(0, self.n, block):
            check_stop()  # every block of a long search is a checkpoint (progress.stop_on)
            stop = min(self.n, start + block)
            rows = self.vectors[start:stop] if self.metric == "cosine" else self.unit_rows()[start:stop]
            s = q @ np.asarray(rows, dtype=np.float32).T
            if self.metric == "cosine":
                s *= scale[start:stop]
            else:
                s *= 2.0
                s -= sq[start:stop]  # -(|x|^2 - 2 q.x): the |q|^2 term does not change the ranking
            sel = (er >= start) & (er < stop)
            s[eq[sel], er[sel] - start] = -np.inf
            idx, val = _topk_rows(s, min(want, stop - start))
            idx += start
            if start == 0 and stop == self.n:
                best_i, best_s = idx, val
                break
            merged_i = np.concatenate([best_i, idx], axis=1)
            merged_s = np.concatenate([best_s, val], axis=1)
            pick, best_s = _topk_rows(merged_s, want)
            best_i = np.take_along_axis(merged_i, pick, axis=1)
        if self.metric == "euclidean":
            best_s = best_s - np.einsum("ij,ij->i", q, q)[:, None]
        return best_i, best_s

    def _search_torch(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x = torch.from_numpy(self.unit_rows())
        m = q.shape[0]
        sq = None if self.metric == "cosine" else torch.from_numpy(self._row_terms()[1])
        out_i = np.empty((m, want), dtype=np.int64)
        out_s = np.empty((m, want), dtype=np.float32)
        step = max(1, min(4096, (_SCORE_ELEMS * 4) // max(self.n, 1)))
        with torch.inference_mode():
            for start in range(0, m, step):
                check_stop()
                stop = min(m, start + step)
                s = torch.mm(torch.from_numpy(q[start:stop]), x.T)
                if sq is not None:
                    s.mul_(2.0).sub_(sq)
                sel = (eq >= start) & (eq < stop)
                s[torch.from_numpy(eq[sel] - start), torch.from_numpy(er[sel])] = -torch.inf
                v, i = torch.topk(s, want, dim=1, sorted=True)
                out_i[start:stop], out_s[start:stop] = i.numpy(), v.numpy()
        if self.metric == "euclidean":
            out_s -= np.einsum("ij,ij->i", q, q)[:, None]
        return out_i, out_s

    def _search_faiss(self, q: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        if self.n_jobs is not None:
            faiss.omp_set_num_threads(max(1, int(self.n_jobs)))
        if self._faiss is None:
            x = self.unit_rows()
            self._faiss = faiss.IndexFlatIP(self.dim) if self.metric == "cosine" else faiss.IndexFlatL2(self.dim)
            self._faiss.add(x)
        out_i = np.empty((q.shape[0], want), dtype=np.int64)
        out_s = np.empty((q.shape[0], want), dtype=np.float32)
        step = 8192  # bounds faiss' result heaps; faiss blocks its own products
        for start in range(0, q.shape[0], step):
            check_stop()
            dist, idx = self._faiss.search(q[start : start + step], want)  # faiss: (distances, indices)
            out_i[start : start + step] = idx
            out_s[start : start + step] = dist if self.metric == "cosine" else -dist
        return out_i, out_s


def one_off_backend(shape: tuple[int, ...], queries: int, metric: str) -> str:
    """The :class:`ExactIndex` backend for a one-off search of ``queries`` rows over a matrix of ``shape``:
    ``"numpy"`` (rows streamed in blocks, no copy) where building the faster backends' copy would cost more
    than it saves or hold too much memory, else ``"auto"``."""
    big = float(np.prod(shape, dtype=np.float64)) * 4 > _COPY_MAX_BYTES
    return "numpy" if big or (metric == "cosine" and queries <= _STREAM_QUERIES) else "auto"


class BFloat16Index(ExactIndex):
    """bfloat16 products pick a short list per query, re-scored exactly; approximate (recall measured).

    Only worth it where :func:`embedlens.hardware.fast_bfloat16` is true (AVX512-BF16, AMX): elsewhere
    torch's bfloat16 product is ~40x slower than float32 and :func:`build_index` does not offer it.
    """

    exact = False

    def __init__(self, vectors: Any, *, metric: str = "cosine", shortlist: int | None = None,
                 norms: np.ndarray | None = None, recall_sample: int = RECALL_SAMPLE, seed: int = 0) -> None:
        super().__init__(vectors, metric=metric, backend="torch", norms=norms)
        self.shortlist = shortlist
        self.name = "bf16 shortlist (torch)"
        self._bf16: Any = None
        self.info = {"shortlist": shortlist}
        if recall_sample:
            measure_recall(self, sample=recall_sample, seed=seed)

    def _search(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        qp = self._prepared_queries(q)
        # A given short list may be as tight as k (want - _MARGIN). The default keeps 4 x want candidates up
        # to 128, and 2 x want beyond: on 1,024 of Gemma 3's 262,144 rows recall@90 was 0.976 with about 200
        # candidates and 0.977 with about 400 (the misses are rows in crowds of near-identical tokens), and
        # the re-scoring cost halves.
        default = max(2 * want, min(4 * want, 128))
        short = int(min(self.n, max(want - _MARGIN, self.shortlist if self.shortlist is not None else default)))
        self.info["shortlist"] = short
        if self._bf16 is None:
            self._bf16 = torch.from_numpy(self.unit_rows()).to(torch.bfloat16).T.contiguous()
        sq = None if self.metric == "cosine" else torch.from_numpy(self._row_terms()[1])
        m = q.shape[0]
        out_i = np.empty((m, short), dtype=np.int64)
        step = max(1, min(4096, (_SCORE_ELEMS * 4) // max(self.n, 1)))
        with torch.inference_mode():
            for start in range(0, m, step):
                check_stop()
                stop = min(m, start + step)
                s = torch.mm(torch.from_numpy(qp[start:stop]).to(torch.bfloat16), self._bf16)
                # Cosine short lists are picked on the bfloat16 scores themselves: converting them to float32
                # (which holds them exactly, so the list is the same) took a third of the pass on 262,144 rows.
                if sq is not None:
                    s = s.float().mul_(2.0).sub_(sq)
                sel = (eq >= start) & (eq < stop)
                s[torch.from_numpy(eq[sel] - start), torch.from_numpy(er[sel])] = -torch.inf
                out_i[start:stop] = torch.topk(s, short, dim=1, sorted=False).indices.numpy()
        k64 = self._keys64(q.astype(np.float64), out_i)
        order = np.lexsort((out_i, -k64), axis=1)[:, :want]
        return np.take_along_axis(out_i, order, axis=1), np.take_along_axis(k64, order, axis=1)


class HNSWIndex(NeighborIndex):
    """faiss' HNSW graph: approximate; its recall@10 against exact search is measured when it is built.

    The graph is built on one thread (faiss' multi-threaded insertion order varies, and the graph with
    it), so a seed gives one answer; the search is deterministic on any number of threads. Without an
    explicit ``ef_search`` the search widens (efSearch doubled, up to 1,024) until the recall measured
    on ``recall_sample`` seeded rows reaches ``target_recall``. What the graph finds is re-scored
    exactly; queries it cannot fill (faiss' label -1) are searched exhaustively.
    """

    exact = False

    def __init__(self, vectors: Any, *, metric: str = "cosine", m: int = HNSW_M,
                 ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int | None = None,
                 norms: np.ndarray | None = None, n_jobs: int | None = None,
                 recall_sample: int = RECALL_SAMPLE, seed: int = 0, target_recall: float = 0.95) -> None:
        super().__init__(vectors, metric=metric, norms=norms)

        faiss = require("faiss", "the HNSW neighbour index", extra="graph", package="faiss-cpu")
        self.name = "hnsw (faiss)"
        self.n_jobs = n_jobs
        self.ef_search = ef_search
        self._ef_fixed = ef_search is not None
        clock = Timings()
        x = normalized_rows(self.vectors, self.norms) if metric == "cosine" else self.prepared(self.vectors)
        faiss.omp_set_num_threads(1)
        self._index = faiss.IndexHNSWFlat(self.dim, int(m))
        self._index.hnsw.efConstruction = int(ef_construction)
        self._index.add(x)
        self.info = {"hnsw_m": int(m), "hnsw_ef_construction": int(ef_construction),
                     "hnsw_build_s": round(clock.since_start(), 3)}
        if recall_sample:
            measure_recall(self, sample=recall_sample, seed=seed)
            # No efSearch given: widen the search until the measured recall reaches the target.
            while not self._ef_fixed and self.recall < target_recall and (self.ef_search or 0) < HNSW_EF_SEARCH_MAX:
                self.ef_search = 2 * int(self.ef_search or HNSW_EF_SEARCH_MIN)
                measure_recall(self, sample=recall_sample, seed=seed)
            self.info["hnsw_ef_search_min"] = int(self.ef_search or HNSW_EF_SEARCH_MIN)

    def _search(self, q: np.ndarray, want: int, eq: np.ndarray, er: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        faiss.omp_set_num_threads(max(1, int(self.n_jobs)) if self.n_jobs else faiss.omp_get_max_threads())
        if self._ef_fixed:
            ef = max(int(self.ef_search), want)
        else:
            ef = max(int(self.ef_search or HNSW_EF_SEARCH_MIN), 2 * want)
        self._index.hnsw.efSearch = ef
        self.info["hnsw_ef_search"] = ef
        qp = self.prepared(q)
        out_i = np.empty((q.shape[0], want), dtype=np.int64)
        out_s = np.empty((q.shape[0], want), dtype=np.float32)
        for start in range(0, q.shape[0], 8192):
            check_stop()
            dist, idx = self._index.search(qp[start : start + 8192], want)  # faiss: (distances, indices)
            out_i[start : start + 8192] = idx
            out_s[start : start + 8192] = -dist
        # Exact keys for what the graph found (faiss' L2 on unit rows would score a zero row as cos 0.5).
        keys = self._keys64(q.astype(np.float64), out_i)
        order = np.lexsort((np.where(out_i >= 0, out_i, np.iinfo(np.int64).max), -keys), axis=1)
        return np.take_along_axis(out_i, order, axis=1), np.take_along_axis(keys, order, axis=1)


class PrecomputedIndex(NeighborIndex):
    """A stored k-NN graph of every row (a :class:`~embedlens.neighbors.knn.KnnGraph`), as an index.

    Rows of the space asked with ``exclude_self`` and k up to the graph's are read from the table;
    anything else (free vectors, a larger k, more exclusions) goes to ``fallback`` (an exact index
    over the same rows), or is refused when there is none.
    """

    def __init__(self, graph: Any, fallback: NeighborIndex | None = None, *, vectors: Any = None) -> None:
        nb = graph.neighbors() if hasattr(graph, "neighbors") and callable(graph.neighbors) else graph
        self.graph = graph
        self.table = nb
        self.fallback = fallback
        base = fallback.vectors if fallback is not None else vectors
        if base is None:
            base = np.zeros((nb.indices.shape[0], 1), dtype=np.float32)
        super().__init__(base, metric=getattr(nb, "metric", "cosine"))
        if self.n != nb.indices.shape[0]:
            raise EmbedlensError(f"the k-NN graph has {nb.indices.shape[0]} rows but the space has {self.n}")
        self.exact = bool(getattr(graph, "method", "exact") == "exact") and (fallback is None or fallback.exact)
        self.recall = None if self.exact else float(getattr(graph, "recall", float("nan")))
        self.name = f"precomputed {getattr(graph, 'method', '')} k-NN graph (k={nb.k})".replace("  ", " ")

    @property
    def k(self) -> int:
        return self.table.k

    def query(self, queries: Any = None, k: int = 10, *, exclude_self: bool | None = None,
              exclude: Sequence[Sequence[int]] | None = None) -> Neighbors:
        arr = None if queries is None else np.asarray(queries)
        is_rows = arr is None or np.issubdtype(arr.dtype, np.integer)
        if exclude_self is None:
            exclude_self = is_rows
        only_self = exclude is None or all(len(e) == 0 or (len(e) == 1 and is_rows and arr is not None
                                                             and int(e[0]) == int(np.atleast_1d(arr)[i]))
                                           for i, e in enumerate(exclude))
        if is_rows and exclude_self and only_self and not isinstance(k, bool) and isinstance(k, int | np.integer) \
                and 1 <= k <= self.table.k:
            rows = np.arange(self.n) if arr is None else np.atleast_1d(arr).astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= self.n):
                raise EmbedlensError(f"query rows must be from 0 to {self.n - 1}")
            return Neighbors(np.ascontiguousarray(self.table.indices[rows, :k]),
                             np.ascontiguousarray(self.table.scores[rows, :k]), self.metric)
        if self.fallback is None:
            raise EmbedlensError(f"this stored k-NN graph answers rows of the space with k up to {self.table.k}, "
                                 "and has no exact index to fall back on")
        return self.fallback.query(queries, k, exclude_self=exclude_self, exclude=exclude)


# -- choosing and measuring -------------------------------------------------------------------------


def faiss_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def duplicate_share(x: np.ndarray, seed: int = 0) -> float:
    """Share of rows that repeat another row (by a random projection: equal rows always collide)."""
    if x.shape[0] < 2:
        return 0.0
    r = np.random.default_rng(seed).standard_normal(x.shape[1]).astype(np.float32)
    proj = np.concatenate([np.asarray(x[s : s + 65536], dtype=np.float32) @ r for s in range(0, x.shape[0], 65536)])
    return 1.0 - np.unique(proj).size / x.shape[0]


def exact_twin(index: NeighborIndex) -> ExactIndex:
    """An exact index over the same rows and metric (brute force for recall measurements)."""
    return ExactIndex(index.vectors, metric=index.metric, backend="auto", norms=index._norms)


def recall_at_k(found: Neighbors, truth: Neighbors) -> float:
    """Share of the true neighbours that ``found`` holds; a neighbour tied with the true k-th counts as found.

    Both (m, k), same queries and metric: ``truth`` from an exact index. This is the package's one recall of
    an approximate neighbour search (HNSW, bfloat16 short lists, a k-NN graph found after a PCA).
    """
    if truth.indices.size == 0:
        return 1.0
    k = truth.indices.shape[1]
    found = found.first(min(k, found.k))
    by_id = (found.indices[:, :, None] == truth.indices[:, None, :]).any(axis=1).sum()
    # Score-based: a returned row as close as the true k-th is a correct answer among ties.
    kth = truth.scores[:, -1:]
    tol = 1e-6
    if truth.metric == "cosine":
        as_close = (found.scores >= kth - tol).sum()
    else:
        as_close = (found.scores <= kth + tol * np.maximum(1.0, kth)).sum()
    return float(max(by_id, as_close)) / truth.indices.size


def sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` distinct rows out of ``n`` drawn with ``seed`` (all if n <= sample): the
    package's one seeded sample (recall of an index or a graph, a map's quality figures)."""
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


def measure_recall(index: NeighborIndex, *, k: int = 10, sample: int = RECALL_SAMPLE, seed: int = 0) -> float:
    """Measure ``index``'s recall@k against exact search on ``sample`` seeded rows; stored in ``index.recall``."""
    k = int(min(k, index.n - 1))
    rows = sample_rows(index.n, sample, seed)
    truth = exact_twin(index).query(rows, k, exclude_self=True)
    got = index.query(rows, k, exclude_self=True)
    index.recall = recall_at_k(got, truth)
    index.info.update(recall_k=k, recall_rows=int(rows.size), recall_seed=int(seed))
    return index.recall
