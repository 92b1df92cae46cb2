"""The full-vocabulary k-nearest-neighbour graph: every token's k most cosine-similar tokens.

Rows are normalised once, then the similarity matrix is produced one block of query rows at a time
(``block`` x n scores, never n x n) and reduced to its top-k before the next block. Three exact
backends share that shape; :data:`DEFAULT_BACKEND` is the fastest one measured on this machine
(``benchmarks/bench_knn.py``: faiss, with torch when faiss-cpu is not installed):

  * ``torch``: ``torch.mm`` per row block + ``torch.topk``;
  * ``faiss``: ``faiss.IndexFlatIP`` over the normalised rows (its own blocked sgemm + heaps);
  * ``numpy``: ``@`` per row block + ``np.argpartition`` (the baseline, no extra dependency).

The approximate path (``method="approx"``) takes the products in bfloat16 through torch — several
times the float32 throughput on CPUs with AVX512-BF16 — keeps a short list of ``shortlist``
candidates per row (``4 * k`` by default) and re-ranks that list with exact float32 dot products, so
every returned score is exact and only the membership can differ. Its recall@k against exact float32
search is measured on a seeded sample of rows and stored with the graph.

A graph is cached beside the model's matrices (``<entry>/knn-<space>-k<k>-<method>.safetensors`` and
its ``.json``) or, for any other space, under ``$EMBEDLENS_CACHE/spaces/<content hash>/``.
:func:`cached_knn` finds a cached graph with at least k neighbours for ``neighbors`` and ``graph``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .exact import Neighbors, check_k, normalized_rows

log = logging.getLogger("embedlens")

METHODS = ("exact", "approx")
BACKENDS = ("torch", "faiss", "numpy")
# Measured on SmolLM2 (49,152 x 576, k=10, 2 threads, shared machine): faiss 28.4 s, torch 41.2 s, numpy 73.9 s
# (benchmarks/bench_knn.py); torch is the fallback when faiss-cpu is not installed.
DEFAULT_BACKEND = "faiss"
MAX_K = 1000
_SCORE_ELEMS = 1 << 26  # scores held at once per block (256 MiB of float32)
_NUMPY_QUERY_ELEMS = 1 << 24  # topk_batch below this many scores uses numpy (no torch import)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class KnnGraph:
    """The k nearest rows of every row of a space (itself excluded).

    Attributes:
        indices: int64 array of shape (n, k), row indices of the neighbours, best first.
        scores: float32 array of shape (n, k), their cosine similarities (exact float32 products).
        method: ``"exact"`` or ``"approx"``.
        backend: what computed it (``torch``, ``faiss``, ``numpy``, ``torch-bf16``).
        recall: recall@k against exact search on ``recall_sample`` seeded rows (1.0 for exact).
        recall_sample: how many rows the recall was measured on (0 for exact).
        seed: the seed of the recall sample.
        timings: seconds per stage.
        space: the space's name.
        params: everything else that shaped the result (block, shortlist, n, dim).
    """

    indices: np.ndarray
    scores: np.ndarray
    method: str
    backend: str
    recall: float = 1.0
    recall_sample: int = 0
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    space: str = "space"
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    def neighbors(self, rows: Sequence[int] | np.ndarray | None = None, k: int | None = None) -> Neighbors:
        """The graph (or some of its rows, first ``k`` neighbours) in the common :class:`Neighbors` format."""
        k = self.k if k is None else int(k)
        if not 1 <= k <= self.k:
            raise EmbedlensError(f"this k-NN graph holds {self.k} neighbours per row; k={k} is out of range")
        idx, sc = self.indices, self.scores
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            idx, sc = idx[rows], sc[rows]
        return Neighbors(np.ascontiguousarray(idx[:, :k]), np.ascontiguousarray(sc[:, :k]))

    def truncate(self, k: int) -> KnnGraph:
        nb = self.neighbors(k=k)
        # The recall stays the one measured at the stored k (recall at a smaller k is not measured).
        return KnnGraph(nb.indices, nb.scores, self.method, self.backend, self.recall, self.recall_sample, self.seed,
                        dict(self.timings), self.space, {**self.params, "truncated_from": self.k})

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays, for JSON."""
        return {"format": FORMAT_VERSION, "n": self.n, "k": self.k, "method": self.method, "backend": self.backend,
                "recall": self.recall, "recall_sample": self.recall_sample, "seed": self.seed,
                "timings": {key: round(v, 4) for key, v in self.timings.items()}, "space": self.space,
                "params": self.params}

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta(), "indices": self.indices.tolist(), "scores": self.scores.tolist()}

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write ``path`` (safetensors: ``indices``, ``scores``) and ``path.json`` (meta), both atomically."""
        from safetensors.numpy import save_file

        from ..cache import atomic_path, write_json_atomic

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file({"indices": np.ascontiguousarray(self.indices, dtype=np.int64),
                       "scores": np.ascontiguousarray(self.scores, dtype=np.float32)}, str(tmp))
        write_json_atomic(path.with_suffix(".json"), {**self.meta(), **(extra or {})})
        return path

    @classmethod
    def load(cls, path: str | Path) -> KnnGraph:
        """Read a graph written by :meth:`save`."""
        from safetensors.numpy import load_file

        path = Path(path)
        damaged = f"the k-NN graph {path} is damaged; rebuild it with `embedlens knn`"
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            arrays = load_file(str(path))
        except Exception as exc:  # OSError, JSON errors, SafetensorError: all mean "unreadable"
            raise EmbedlensError(f"cannot read the k-NN graph {path} ({exc}); rebuild it with `embedlens knn`") from None
        if not isinstance(meta, dict) or meta.get("method") not in METHODS:
            raise EmbedlensError(damaged)
        idx, sc = arrays.get("indices"), arrays.get("scores")
        if idx is None or sc is None or idx.shape != sc.shape or list(idx.shape) != [meta.get("n"), meta.get("k")]:
            raise EmbedlensError(damaged)
        return cls(idx, sc, meta["method"], meta.get("backend", "?"), float(meta.get("recall", 1.0)),
                   int(meta.get("recall_sample", 0)), int(meta.get("seed", 0)), dict(meta.get("timings", {})),
                   meta.get("space", "space"), dict(meta.get("params", {})))


# -- computing -------------------------------------------------------------------------------------


def _default_backend() -> str:
    if DEFAULT_BACKEND == "faiss":
        import importlib.util

        if importlib.util.find_spec("faiss") is None:
            return "torch"
    return DEFAULT_BACKEND


def _check_knn_k(k: int, n: int) -> int:
    return check_k(k, min(MAX_K, n - 1), context=f" for a space of {n} rows")


def _block_rows(n: int, block: int | None, itemsize: int = 4) -> int:
    if block is None:
        block = max(256, min(4096, (_SCORE_ELEMS * 4 // itemsize) // max(n, 1)))
    if not isinstance(block, int | np.integer) or block < 1:
        raise EmbedlensError(f"block must be a positive number of rows, got {block}")
    return int(min(block, n))


def _exact_torch(x: np.ndarray, k: int, block: int, advance: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
    import torch

    n = x.shape[0]
    xt = torch.from_numpy(x)
    xT = xt.T  # torch.mm reads the transposed operand in place (BLAS "T"), no copy
    out_i = np.empty((n, k), dtype=np.int64)
    out_s = np.empty((n, k), dtype=np.float32)
    buf = torch.empty((block, n), dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(n, start + block)
            b = stop - start
            s = torch.mm(xt[start:stop], xT, out=buf[:b])
            r = torch.arange(b)
            s[r, r + start] = -torch.inf  # the row itself
            v, i = torch.topk(s, k, dim=1, sorted=True)
            out_i[start:stop] = i.numpy()
            out_s[start:stop] = v.numpy()
            advance(b)
    return out_i, out_s


def _exact_numpy(x: np.ndarray, k: int, block: int, advance: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
    from .exact import _topk_rows

    n = x.shape[0]
    out_i = np.empty((n, k), dtype=np.int64)
    out_s = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        s = x[start:stop] @ x.T
        r = np.arange(stop - start)
        s[r, r + start] = -np.inf
        out_i[start:stop], out_s[start:stop] = _topk_rows(s, k)
        advance(stop - start)
    return out_i, out_s


def _exact_faiss(x: np.ndarray, k: int, block: int, advance: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
    from ..errors import require

    faiss = require("faiss", "the faiss k-NN backend", extra="graph", package="faiss-cpu")
    n, d = x.shape
    index = faiss.IndexFlatIP(d)
    index.add(x)
    out_i = np.empty((n, k), dtype=np.int64)
    out_s = np.empty((n, k), dtype=np.float32)
    # faiss bounds its own working memory (internal query and database blocks), so ``block`` only
    # sets how often the progress bar moves; small steps would cost BLAS efficiency.
    step = max(block, 8192)
    for start in range(0, n, step):
        stop = min(n, start + step)
        dist, idx = index.search(x[start:stop], k + 1)
        out_i[start:stop], out_s[start:stop] = _drop_self(idx, dist, np.arange(start, stop), k)
        advance(stop - start)
    return out_i, out_s


def _drop_self(idx: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From k+1 results per row, drop the row itself (or the last one when it is absent: duplicate rows)."""
    is_self = idx == rows[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones(idx.shape, dtype=bool)
    keep[np.arange(idx.shape[0]), drop] = False
    return idx[keep].reshape(-1, k).astype(np.int64), dist[keep].reshape(-1, k).astype(np.float32)


def _approx_bf16(x: np.ndarray, k: int, shortlist: int, block: int, advance: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray]:
    """bfloat16 products -> ``shortlist`` candidates per row -> exact float32 re-rank -> top-k."""
    import torch

    n = x.shape[0]
    xt = torch.from_numpy(x)
    xb = xt.to(torch.bfloat16)
    xbT = xb.T.contiguous()  # (d, n): measured ~2x faster than the transposed view for bf16 on CPU
    out_i = np.empty((n, k), dtype=np.int64)
    out_s = np.empty((n, k), dtype=np.float32)
    buf = torch.empty((block, n), dtype=torch.bfloat16)
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(n, start + block)
            b = stop - start
            s = torch.mm(xb[start:stop], xbT, out=buf[:b])
            r = torch.arange(b)
            s[r, r + start] = -torch.inf
            _, cand = torch.topk(s, shortlist, dim=1, sorted=False)  # (b, L)
            exact = torch.einsum("bld,bd->bl", xt[cand], xt[start:stop])  # float32 re-rank
            v, p = torch.topk(exact, k, dim=1, sorted=True)
            out_i[start:stop] = torch.gather(cand, 1, p).numpy()
            out_s[start:stop] = v.numpy()
            advance(b)
    return out_i, out_s


def exact_rows_topk(x: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact float32 top-k of some rows of the normalised matrix ``x`` (each row itself excluded)."""
    import torch

    rows = np.asarray(rows, dtype=np.int64)
    xt = torch.from_numpy(x)
    out_i = np.empty((rows.size, k), dtype=np.int64)
    out_s = np.empty((rows.size, k), dtype=np.float32)
    step = _block_rows(x.shape[0], None)
    with torch.inference_mode():
        for start in range(0, rows.size, step):
            sel = torch.from_numpy(rows[start : start + step])
            s = torch.mm(xt[sel], xt.T)
            s[torch.arange(sel.numel()), sel] = -torch.inf
            v, i = torch.topk(s, k, dim=1, sorted=True)
            out_i[start : start + step] = i.numpy()
            out_s[start : start + step] = v.numpy()
    return out_i, out_s


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row's true k neighbours (``truth``, (m, k)) present in ``found`` (m, k)."""
    if truth.size == 0:
        return 1.0
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=1).sum()
    return float(hits) / truth.size


def knn_graph(
    space: Any,
    k: int = 10,
    *,
    method: str = "exact",
    backend: str | None = None,
    block: int | None = None,
    shortlist: int | None = None,
    recall_sample: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> KnnGraph:
    """The k nearest rows (cosine) of every row of ``space``, the row itself excluded.

    Args:
        space: an :class:`~embedlens.spaces.space.EmbeddingSpace` or an array of shape (n, d).
        k: neighbours per row, 1 to ``min(1000, n - 1)``.
        method: ``"exact"`` (float32 blocked products) or ``"approx"`` (bfloat16 products, short list,
            exact float32 re-rank; its recall@k is measured on ``recall_sample`` seeded rows).
        backend: exact backend, ``faiss`` (default when installed, else ``torch``), ``torch`` or ``numpy``.
        block: query rows per block (scores held at once: block x n); default keeps ~256 MiB.
        shortlist: candidates re-ranked per row by the approximate path (default ``max(4 * k, 32)``).
        recall_sample: rows on which the approximate path's recall is measured.
        seed: seed of that sample.
        progress: show a progress bar on a terminal.
    """
    if method not in METHODS:
        raise EmbedlensError(f"unknown k-NN method '{method}' (choose {' or '.join(METHODS)})")
    backend = backend or _default_backend()
    if backend not in BACKENDS:
        raise EmbedlensError(f"unknown k-NN backend '{backend}' (choose {', '.join(BACKENDS)})")
    vectors = space.vectors if hasattr(space, "vectors") else np.asarray(space)
    if vectors.ndim != 2:
        raise EmbedlensError(f"a k-NN graph needs a (n, d) matrix, got shape {vectors.shape}")
    n, d = vectors.shape
    k = _check_knn_k(k, n)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    x = normalized_rows(vectors, getattr(space, "norms", None))
    timings["normalize"] = time.perf_counter() - t0
    params: dict[str, Any] = {"n": n, "dim": d}
    from .. import hardware

    if method == "approx" and not hardware.fast_bfloat16():
        # Without bfloat16 units torch's bf16 product is ~40x slower than float32 (measured on an AVX2 EPYC):
        # the "fast" path would take hours, and the exact one is the faster answer anyway.
        params["note"] = "approx was asked, but this CPU has no fast bfloat16 products: computed exactly instead"
        log.warning("%s", params["note"])
        method = "exact"
    from ..progress import bar

    with bar(n, f"{method} {k}-NN graph of {n:,} rows", enabled=progress) as advance:
        t0 = time.perf_counter()
        if method == "exact":
            blk = _block_rows(n, block)
            fn = {"torch": _exact_torch, "faiss": _exact_faiss, "numpy": _exact_numpy}[backend]
            idx, sc = fn(x, k, blk, advance)
            used = backend
            params["block"] = max(blk, 8192) if backend == "faiss" else blk
        else:
            blk = _block_rows(n, block, itemsize=2)
            short = int(min(n - 1, max(k, shortlist if shortlist is not None else max(4 * k, 32))))
            idx, sc = _approx_bf16(x, k, short, blk, advance)
            used = "torch-bf16"
            params.update(block=blk, shortlist=short)
        timings["search"] = time.perf_counter() - t0
    recall, sample = 1.0, 0
    if method == "approx":
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        sample = int(min(n, recall_sample))
        rows = np.sort(rng.choice(n, size=sample, replace=False))
        truth_i, truth_s = exact_rows_topk(x, rows, k)
        recall = recall_at_k(idx[rows], truth_i)
        # Also score-based: a neighbour tied with the true k-th (equal score) is not a miss.
        kth = truth_s[:, -1:]
        params["recall_ties_ok"] = float((sc[rows] >= kth - 1e-6).sum()) / truth_i.size
        timings["recall"] = time.perf_counter() - t0
    name = getattr(space, "name", "space")
    return KnnGraph(idx, sc, method, used, recall, sample, seed, timings, name, params)


# -- batched queries for graph building -------------------------------------------------------------


def topk_batch(
    x: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    exclude: Sequence[Sequence[int]] | None = None,
) -> Neighbors:
    """Cosine top-k of many queries over the normalised matrix ``x`` in one blocked pass.

    Args:
        x: unit rows, array of shape (n, d) (see :func:`normalized_rows`).
        queries: array of shape (m, d); normalised here.
        k: neighbours per query.
        exclude: for each query, rows it must not return (its own tokens).
    """
    from .exact import _topk_rows

    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    m, n = q.shape[0], x.shape[0]
    q = normalized_rows(q)
    ex_q = ex_r = np.zeros(0, dtype=np.int64)
    if exclude:
        lengths = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=len(exclude))
        ex_q = np.repeat(np.arange(len(exclude)), lengths)
        ex_r = np.fromiter((r for e in exclude for r in e), dtype=np.int64, count=int(lengths.sum()))
        check_k(k, n - int(lengths.max(initial=0)), context=" (the rows that can be returned)")
    out_i = np.empty((m, k), dtype=np.int64)
    out_s = np.empty((m, k), dtype=np.float32)
    step = _block_rows(n, None)
    if m * n <= _NUMPY_QUERY_ELEMS:
        # numpy for a few queries: importing torch would cost more than the search itself.
        for start in range(0, m, step):
            stop = min(m, start + step)
            s = q[start:stop] @ x.T
            sel = (ex_q >= start) & (ex_q < stop)
            s[ex_q[sel] - start, ex_r[sel]] = -np.inf
            out_i[start:stop], out_s[start:stop] = _topk_rows(s, k)
        return Neighbors(out_i, out_s)
    import torch

    xt = torch.from_numpy(x)
    with torch.inference_mode():
        for start in range(0, m, step):
            stop = min(m, start + step)
            s = torch.mm(torch.from_numpy(q[start:stop]), xt.T)
            sel = (ex_q >= start) & (ex_q < stop)
            s[torch.from_numpy(ex_q[sel] - start), torch.from_numpy(ex_r[sel])] = -torch.inf
            v, i = torch.topk(s, k, dim=1, sorted=True)
            out_i[start:stop], out_s[start:stop] = i.numpy(), v.numpy()
    return Neighbors(out_i, out_s)


# -- cache -----------------------------------------------------------------------------------------


def space_content_hash(vectors: np.ndarray, block: int = 1 << 16) -> str:
    """SHA-256 (first 16 hex digits) of a matrix's shape and float32 bytes, read in row blocks."""
    digest = hashlib.sha256(f"{vectors.shape}".encode())
    for start in range(0, vectors.shape[0], block):
        digest.update(np.ascontiguousarray(vectors[start : start + block], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _lens_space(lens: Any, which: str) -> Any:
    return lens.get_space(which) if hasattr(lens, "get_space") else lens.space


def knn_folder(lens: Any, which: str = "input") -> Path:
    """Where the k-NN graphs of ``lens``'s space live: its model cache entry, or a folder per content hash."""
    entry = getattr(lens, "entry", None)
    if entry is not None and getattr(entry, "folder", None) is not None:
        return Path(entry.folder)
    from ..cache import cache_root

    sp = _lens_space(lens, which)
    return cache_root() / "spaces" / space_content_hash(sp.vectors)


def knn_path(lens: Any, which: str, k: int, method: str) -> Path:
    return knn_folder(lens, which) / f"knn-{which}-k{k}-{method}.safetensors"


def cached_knn(lens: Any, which: str = "input", k: int = 10, *, min_recall: float = 0.99) -> KnnGraph | None:
    """A cached k-NN graph of ``lens``'s space with at least ``k`` neighbours per row, cut to ``k``; else None.

    An exact graph is preferred; an approximate one is used only if its stored recall is >= ``min_recall``.
    """
    folder = knn_folder(lens, which)
    if not folder.is_dir():
        return None
    n = len(_lens_space(lens, which))
    best: tuple[int, int, Path] | None = None
    for method_rank, method in enumerate(METHODS):
        for meta_path in folder.glob(f"knn-{which}-k*-{method}.json"):
            try:
                kk = int(meta_path.name.split("-k", 1)[1].split("-", 1)[0])
            except ValueError:
                continue
            tensors = meta_path.with_suffix(".safetensors")
            if kk >= k and tensors.is_file() and (best is None or (method_rank, kk) < best[:2]):
                best = (method_rank, kk, tensors)
    if best is None:
        return None
    try:
        graph = KnnGraph.load(best[2])
    except EmbedlensError as exc:
        log.warning("%s", exc)
        return None
    if graph.n != n or (graph.method == "approx" and graph.recall < min_recall):
        return None
    return graph if graph.k == k else graph.truncate(k)


def build_knn(
    lens: Any,
    which: str = "input",
    k: int = 10,
    *,
    method: str = "exact",
    rebuild: bool = False,
    progress: bool = False,
    **options: Any,
) -> tuple[KnnGraph, Path, bool]:
    """The k-NN graph of a lens's space, from the cache or computed and cached.

    Returns:
        ``(graph, path, from_cache)``.
    """
    # An exact graph answers an approx request too (and is what approx becomes on CPUs without fast bf16).
    for cached in dict.fromkeys([method, "exact"]):
        path = knn_path(lens, which, k, cached)
        if rebuild or not (path.is_file() and path.with_suffix(".json").is_file()):
            continue
        try:
            graph = KnnGraph.load(path)
            if graph.n == len(_lens_space(lens, which)):
                return graph, path, True
        except EmbedlensError as exc:
            log.warning("%s", exc)
    sp = _lens_space(lens, which)
    graph = knn_graph(sp, k, method=method, progress=progress, **options)
    path = knn_path(lens, which, k, graph.method)  # an approx request may have been computed exactly
    from ..spaces.extract import versions

    manifest = lens.manifest() if hasattr(lens, "manifest") else {}
    graph.save(path, extra={"which": which, "model": manifest, "versions": versions()})
    return graph, path, False
