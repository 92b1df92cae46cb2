"""The full-vocabulary k-nearest-neighbour graph: every token's k most cosine-similar tokens.

Computed by one query of the neighbour layer (:mod:`embedlens.neighbors.index`) over every row, in
steps of rows so a progress bar can move. Three exact backends answer in the same canonical order
(ties by row); :data:`DEFAULT_BACKEND` is the fastest one measured on this machine
(``benchmarks/bench_knn.py``: faiss, with torch when faiss-cpu is not installed).

The approximate path (``method="approx"``) takes the products in bfloat16 through torch — several
times the float32 throughput on CPUs with AVX512-BF16 — keeps a short list of candidates per row and
re-scores it exactly, so every returned score is exact and only the membership can differ. Its
recall@k against exact search is measured on a seeded sample of rows and stored with the graph.

A graph is cached beside the model's matrices (``<entry>/knn-<space>-k<k>-<method>.safetensors`` and
its ``.json``) or, for any other space, under ``$EMBEDLENS_CACHE/spaces/<content hash>/``.
:func:`cached_knn` finds a cached graph with at least k neighbours; :func:`space_index` is what every
caller asks: that graph as a :class:`~embedlens.neighbors.index.PrecomputedIndex` (falling back to an
exact scan for what it cannot answer), or the exact scan alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import hardware
from ..cache import atomic_path, cache_root, write_json_atomic
from ..errors import EmbedlensError
from ..progress import bar
from ..timing import Timings
from ..versions import versions
from .index import BFloat16Index, ExactIndex, Neighbors, PrecomputedIndex, check_k, exact_twin, recall_at_k

log = logging.getLogger("embedlens")

KNN_METHODS = ("exact", "approx")
BACKENDS = ("torch", "faiss", "numpy")
# Measured on SmolLM2 (49,152 x 576, k=10, 2 threads, shared machine): faiss 28.4 s, torch 41.2 s, numpy 73.9 s
# (benchmarks/bench_knn.py); torch is the fallback when faiss-cpu is not installed.
DEFAULT_BACKEND = "faiss"
MAX_K = 1000
# 2: canonical order (ties by row, near-ties settled in float64); graphs of format 1 are rebuilt.
FORMAT_VERSION = 2


class SpaceRows(Protocol):
    """The rows of a space as the k-NN layer reads them (an :class:`~embedlens.spaces.space.EmbeddingSpace` is
    one; ``spaces/`` sits above ``neighbors/``, so the layer names what it uses instead of importing the class)."""

    @property
    def vectors(self) -> np.ndarray: ...

    @property
    def norms(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


class CachedView(Protocol):
    """One space of a handle as the k-NN cache reads it (a :class:`~embedlens.lens.SpaceView` is one): its rows,
    which space it is, where its cache lives and what describes it."""

    which: str

    @property
    def space(self) -> SpaceRows: ...

    def cache_folder(self) -> Path: ...

    def manifest(self) -> dict[str, Any]: ...


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
        metric: ``"cosine"`` (scores are similarities) or ``"euclidean"`` (scores are distances).
        format: the file format it was written in (:data:`FORMAT_VERSION` for a new graph).
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
    metric: str = "cosine"
    format: int = FORMAT_VERSION

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
        return Neighbors(np.ascontiguousarray(idx[:, :k]), np.ascontiguousarray(sc[:, :k]), self.metric)

    def index(self, fallback: Any = None) -> Any:
        """This graph as a :class:`~embedlens.neighbors.index.PrecomputedIndex` (``fallback``: an exact index)."""

        return PrecomputedIndex(self, fallback)

    def truncate(self, k: int) -> KnnGraph:
        nb = self.neighbors(k=k)
        # The recall stays the one measured at the stored k (recall at a smaller k is not measured).
        return KnnGraph(nb.indices, nb.scores, self.method, self.backend, self.recall, self.recall_sample, self.seed,
                        dict(self.timings), self.space, {**self.params, "truncated_from": self.k}, self.metric,
                        self.format)

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays, for JSON."""
        return {"format": FORMAT_VERSION, "n": self.n, "k": self.k, "method": self.method, "backend": self.backend,
                "recall": self.recall, "recall_sample": self.recall_sample, "seed": self.seed,
                "timings": {key: round(v, 4) for key, v in self.timings.items()}, "space": self.space,
                "params": self.params, "metric": self.metric}

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta(), "indices": self.indices.tolist(), "scores": self.scores.tolist()}

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write ``path`` (safetensors: ``indices``, ``scores``) and ``path.json`` (meta), both atomically."""
        from safetensors.numpy import save_file


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
        if not isinstance(meta, dict) or meta.get("method") not in KNN_METHODS or meta.get("metric", "cosine") not in (
                "cosine", "euclidean"):
            raise EmbedlensError(damaged)
        idx, sc = arrays.get("indices"), arrays.get("scores")
        if idx is None or sc is None or idx.shape != sc.shape or list(idx.shape) != [meta.get("n"), meta.get("k")]:
            raise EmbedlensError(damaged)
        return cls(idx, sc, meta["method"], meta.get("backend", "?"), float(meta.get("recall", 1.0)),
                   int(meta.get("recall_sample", 0)), int(meta.get("seed", 0)), dict(meta.get("timings", {})),
                   meta.get("space", "space"), dict(meta.get("params", {})), meta.get("metric", "cosine"),
                   int(meta.get("format", 1)))


# -- computing -------------------------------------------------------------------------------------


def _default_backend() -> str:
    if DEFAULT_BACKEND == "faiss":
        import importlib.util

        if importlib.util.find_spec("faiss") is None:
            return "torch"
    return DEFAULT_BACKEND


def _check_knn_k(k: int, n: int) -> int:
    return check_k(k, min(MAX_K, n - 1), context=f" for a space of {n} rows")


def knn_graph(
    space: SpaceRows | np.ndarray,
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
    """The k nearest rows (cosine) of every row of ``space``, the row itself excluded (by id).

    One query of a :mod:`~embedlens.neighbors.index` index over every row.

    Args:
        space: an :class:`~embedlens.spaces.space.EmbeddingSpace` or an array of shape (n, d).
        k: neighbours per row, 1 to ``min(1000, n - 1)``.
        method: ``"exact"`` (float32 blocked products, canonical order) or ``"approx"`` (bfloat16
            products for a short list, exact re-scoring; its recall@k is measured on ``recall_sample`` rows).
        backend: exact backend, ``faiss`` (default when installed, else ``torch``), ``torch`` or ``numpy``.
        block: query rows per step (the progress bar moves once per step); default 8192.
        shortlist: candidates re-scored per row by the approximate path (default ``4 * (k + 8)``).
        recall_sample: rows on which the approximate path's recall is measured.
        seed: seed of that sample.
        progress: show a progress bar on a terminal.
    """

    if method not in KNN_METHODS:
        raise EmbedlensError(f"unknown k-NN method '{method}' (choose {' or '.join(KNN_METHODS)})")
    backend = backend or _default_backend()
    if backend not in BACKENDS:
        raise EmbedlensError(f"unknown k-NN backend '{backend}' (choose {', '.join(BACKENDS)})")
    vectors = space.vectors if hasattr(space, "vectors") else np.asarray(space)
    if vectors.ndim != 2:
        raise EmbedlensError(f"a k-NN graph needs a (n, d) matrix, got shape {vectors.shape}")
    n, d = vectors.shape
    k = _check_knn_k(k, n)
    if block is not None and (isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1):
        raise EmbedlensError(f"block must be a positive number of rows, got {block}")
    step = int(min(n, block or 8192))
    timings = Timings()
    params: dict[str, Any] = {"n": n, "dim": d, "block": step}

    if method == "approx" and not hardware.fast_bfloat16():
        # Without bfloat16 units torch's bf16 product is ~40x slower than float32 (measured on an AVX2 EPYC):
        # the "fast" path would take hours, and the exact one is the faster answer anyway.
        params["note"] = "approx was asked, but this CPU has no fast bfloat16 products: computed exactly instead"
        log.warning("%s", params["note"])
        method = "exact"
    norms = getattr(space, "norms", None)
    with timings.stage("index"):
        if method == "exact":
            index = ExactIndex(vectors, backend=backend, norms=norms)
            used = backend
        else:
            index = BFloat16Index(vectors, shortlist=shortlist, norms=norms, recall_sample=0)
            used = "torch-bf16"

    idx = np.empty((n, k), dtype=np.int64)
    sc = np.empty((n, k), dtype=np.float32)
    with bar(n, f"{method} {k}-NN graph of {n:,} rows", enabled=progress) as advance, timings.stage("search"):
        for start in range(0, n, step):
            rows = np.arange(start, min(n, start + step))
            nb = index.query(rows, k, exclude_self=True)
            idx[start : start + len(rows)], sc[start : start + len(rows)] = nb.indices, nb.scores
            advance(len(rows))
    recall, sample = 1.0, 0
    if method == "approx":
        params["shortlist"] = index.info.get("shortlist")
        with timings.stage("recall"):
            sample = int(min(n, recall_sample))
            rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
            truth = exact_twin(index).query(rows, k, exclude_self=True)
            recall = recall_at_k(Neighbors(idx[rows], sc[rows]), truth)
    name = getattr(space, "name", "space")
    return KnnGraph(idx, sc, method, used, recall, sample, seed, dict(timings), name, params)


# -- cache -----------------------------------------------------------------------------------------


def space_folder(vectors: np.ndarray, content_hash: str | None = None) -> Path:
    """The cache folder of a matrix that is not a model's (its k-NN graphs): one per content hash."""

    return cache_root() / "spaces" / (content_hash or space_content_hash(vectors))


def space_content_hash(vectors: np.ndarray, block_bytes: int = 1 << 26) -> str:
    """SHA-256 (first 16 hex digits) of a matrix's shape and float32 bytes, read in row blocks.

    The blocks are hashed through the buffer protocol: a float32 C-ordered matrix is read in place, anything
    else is converted one block (at most ``block_bytes``) at a time, so hashing adds no copy of the matrix
    (an 8B model's 2 GB vocabulary used to take two transient 1 GB copies)."""
    digest = hashlib.sha256(f"{vectors.shape}".encode())
    row_bytes = 4 * int(np.prod(vectors.shape[1:], dtype=np.int64))
    block = max(1, block_bytes // max(1, row_bytes))
    for start in range(0, vectors.shape[0], block):
        digest.update(np.ascontiguousarray(vectors[start : start + block], dtype=np.float32).data)
    return digest.hexdigest()[:16]


def knn_folder(view: CachedView) -> Path:
    """Where the k-NN graphs of a space live (:meth:`embedlens.lens.SpaceView.cache_folder`)."""
    return view.cache_folder()


def knn_path(view: CachedView, k: int, method: str) -> Path:
    return knn_folder(view) / f"knn-{view.which}-k{k}-{method}.safetensors"


def cached_knn(view: CachedView, k: int = 10, *, min_recall: float = 0.99) -> KnnGraph | None:
    """A cached k-NN graph of a space (``lens.input``...) with at least ``k`` neighbours per row, cut to ``k``; else None.

    An exact graph is preferred; an approximate one is used only if its stored recall is >= ``min_recall``.
    """
    folder = knn_folder(view)
    if not folder.is_dir():
        return None
    n = len(view.space)
    best: tuple[int, int, Path] | None = None
    for method_rank, method in enumerate(KNN_METHODS):
        for meta_path in folder.glob(f"knn-{view.which}-k*-{method}.json"):
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
    if graph.n != n or graph.format < FORMAT_VERSION or (graph.method == "approx" and graph.recall < min_recall):
        return None
    return graph if graph.k == k else graph.truncate(k)


def build_knn(
    view: CachedView,
    k: int = 10,
    *,
    method: str = "exact",
    rebuild: bool = False,
    progress: bool = False,
    **options: Any,
) -> tuple[KnnGraph, Path, bool]:
    """The k-NN graph of a space (``lens.input``, ``lens.output``...), from the cache or computed and cached.

    Returns:
        ``(graph, path, from_cache)``.
    """
    # An exact graph answers an approx request too (and is what approx becomes on CPUs without fast bf16).
    for cached in dict.fromkeys([method, "exact"]):
        path = knn_path(view, k, cached)
        if rebuild or not (path.is_file() and path.with_suffix(".json").is_file()):
            continue
        try:
            graph = KnnGraph.load(path)
            if graph.n == len(view.space) and graph.format >= FORMAT_VERSION:
                return graph, path, True
        except EmbedlensError as exc:
            log.warning("%s", exc)
    graph = knn_graph(view.space, k, method=method, progress=progress, **options)
    path = knn_path(view, k, graph.method)  # an approx request may have been computed exactly

    graph.save(path, extra={"which": view.which, "model": view.manifest(), "versions": versions()})
    return graph, path, False


def space_index(view: CachedView, k: int | None = None, *, use_cache: bool = True) -> ExactIndex | PrecomputedIndex:
    """The neighbour index of a space (``lens.input``...) that every caller uses.

    A cached exact k-NN graph with at least ``k`` neighbours (or, with ``k=None``, the widest one on
    disk) becomes a :class:`~embedlens.neighbors.index.PrecomputedIndex` whose fallback is an exact
    scan; without one, the exact scan itself. Answers are the same either way.
    """

    sp = view.space
    scan = ExactIndex(sp.vectors, norms=sp.norms)
    if not use_cache:
        return scan
    graph = None
    try:
        if k is None:
            folder = knn_folder(view)
            ks = [int(m.name.split("-k", 1)[1].split("-", 1)[0])
                  for m in folder.glob(f"knn-{view.which}-k*-exact.json")] if folder.is_dir() else []
            if ks:
                graph = cached_knn(view, max(ks))
        else:
            graph = cached_knn(view, k)
    except (EmbedlensError, ValueError, OSError) as exc:  # a damaged or foreign file: scan instead
        log.warning("%s", exc)
        graph = None
    if graph is None or graph.method != "exact":
        return scan
    return graph.index(scan)
