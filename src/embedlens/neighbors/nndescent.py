"""A k-NN graph of every row by NN-descent (pynndescent, what umap-learn and embedding-atlas search with).

NN-descent refines random-projection-tree neighbours by looking at neighbours of neighbours; it finds most,
not all, true neighbours. Measured on SmolLM2's 49,152 x 576 input embeddings (``docs/faithfulness.md``):
at umap-learn's own settings its k=14 cosine graph held 84.6% of the true neighbours, and UMAP on it kept
the same map recall@10 as on the exact graph (0.175 vs 0.173), while HNSW graphs of similar recall cost the
map much more (0.109 at 75%): NN-descent misses scattered neighbours, HNSW whole crowds of them.

It runs on a FIXED number of threads (:data:`GRAPH_THREADS`, two) with a seed. pynndescent splits its work
into one block per thread, each with its own random state, and applies the blocks' updates in thread
order: for a seed its graph is the same at a given thread count on any machine (one core or many, any load)
and differs between thread counts. So the count is a constant, not the machine's cores; a process that numba
lets run fewer threads (``NUMBA_NUM_THREADS=1``) builds with one, and the params say which
(``nndescent_threads``). Its numba code compiles in every new process (about
30-120 s on a 2-core machine), so it pays only where an exhaustive search costs more (above
:data:`~embedlens.neighbors.index.EXACT_MAX` rows).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from ..timing import Timings
from ..versions import package_version
from .index import ExactIndex, Neighbors

# Threads NN-descent runs on: part of what decides its graph (module docstring), so a constant. On SmolLM2 two
# threads did the same CPU work as one (6.6 s against 6.7 s), split over two cores (docs/faithfulness.md).
GRAPH_THREADS = 2
_RESCORE_ROWS = 16_384  # rows whose candidates are re-scored at once (their float64 copy bounds the memory)


def allow_graph_threads() -> None:
    """Let numba run :data:`GRAPH_THREADS` threads where fewer cores are usable (a one-core container, a
    ``taskset``): numba reads ``NUMBA_NUM_THREADS`` once, when it is imported, and defaults it to the usable
    cores, so such a machine would build the one-thread graph instead. Call it before anything imports numba;
    a value the user set is kept."""
    if "numba" not in sys.modules:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        os.environ.setdefault("NUMBA_NUM_THREADS", str(max(GRAPH_THREADS, cores)))


def graph_threads() -> int:
    """The threads NN-descent runs on: :data:`GRAPH_THREADS`, or fewer where numba allows fewer."""
    allow_graph_threads()
    import numba

    return max(1, min(GRAPH_THREADS, int(numba.config.NUMBA_NUM_THREADS)))


def umap_settings(n: int) -> dict[str, int]:
    """umap-learn's NN-descent settings for ``n`` rows (``umap.umap_.nearest_neighbors``)."""
    return {"n_trees": min(64, 5 + int(round(n**0.5 / 20.0))), "n_iters": max(5, int(round(np.log2(max(n, 2))))),
            "max_candidates": 60}


class NNDescentIndex(ExactIndex):
    """The NN-descent k-NN graph of every row (self excluded by id), re-scored exactly; exact search for the rest.

    Rows of the space asked with ``exclude_self`` and k up to the graph's read the graph; any other query
    (free vectors, more exclusions, a larger k) is searched exactly, as :class:`ExactIndex` does.

    Args:
        vectors: (n, d) rows.
        k: neighbours per row the graph holds (besides the row itself).
        seed: pynndescent's ``random_state``.
        n_trees, n_iters, max_candidates: pynndescent's; None takes umap-learn's (:func:`umap_settings`).
    """

    exact = False

    def __init__(self, vectors: Any, *, metric: str = "cosine", k: int = 15, seed: int = 0, n_trees: int | None = None,
                 n_iters: int | None = None, max_candidates: int | None = None, norms: np.ndarray | None = None) -> None:
        super().__init__(vectors, metric=metric, backend="auto", norms=norms)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < self.n:
            raise EmbedlensError(f"k must be an integer from 1 to {self.n - 1}, got {k!r}")
        settings = umap_settings(self.n)
        for name, value in (("n_trees", n_trees), ("n_iters", n_iters), ("max_candidates", max_candidates)):
            if value is not None:
                settings[name] = int(value)
        allow_graph_threads()
        pynndescent = require("pynndescent", "the NN-descent k-NN graph", extra="maps", package="pynndescent")
        import numba

        clock = Timings()
        threads = numba.get_num_threads()
        jobs = graph_threads()
        try:
            # Unit rows under euclidean order pairs as cosine does; a fixed thread count makes the graph the seed's.
            found = pynndescent.NNDescent(self.unit_rows(), n_neighbors=int(k) + 1, metric="euclidean",
                                          random_state=int(seed), n_jobs=jobs, low_memory=True, compressed=True,
                                          verbose=False, **settings).neighbor_graph[0]
        finally:
            numba.set_num_threads(threads)
        self.k_graph = int(k)
        self.graph = self._rescored(np.asarray(found, dtype=np.int64), int(k))
        self.name = f"nndescent (pynndescent, {jobs} thread{'s' if jobs > 1 else ''})"
        self.info = {**settings, "nndescent_seed": int(seed), "nndescent_k": int(k), "nndescent_threads": jobs,
                     "nndescent_build_s": round(clock.since_start(), 3),
                     "pynndescent_version": package_version("pynndescent")}

    def _rescored(self, found: np.ndarray, k: int) -> Neighbors:
        """The found candidates without each row itself, scored exactly, best first (ties: lower row); rows
        left with fewer than ``k`` candidates are searched exactly."""
        n = self.n
        cand = np.where(found == np.arange(n)[:, None], -1, found)
        idx = np.empty((n, k), dtype=np.int64)
        key = np.empty((n, k), dtype=np.float64)
        for start in range(0, n, _RESCORE_ROWS):
            stop = min(n, start + _RESCORE_ROWS)
            c = cand[start:stop]
            keys = self._keys64(np.asarray(self.vectors[start:stop], dtype=np.float64), c)
            order = np.lexsort((np.where(c >= 0, c, np.iinfo(np.int64).max), -keys), axis=1)[:, :k]
            idx[start:stop] = np.take_along_axis(c, order, axis=1)
            key[start:stop] = np.take_along_axis(keys, order, axis=1)
        short = np.flatnonzero((idx < 0).any(axis=1))
        scores = key if self.metric == "cosine" else np.sqrt(np.maximum(-key, 0.0))
        out = Neighbors(idx, scores.astype(np.float32), self.metric)
        if short.size:
            fill = ExactIndex.query(self, short, k, exclude_self=True)
            out.indices[short], out.scores[short] = fill.indices, fill.scores
        return out

    def query(self, queries: Any = None, k: int = 10, *, exclude_self: bool | None = None,
              exclude: Any = None) -> Neighbors:
        arr = None if queries is None else np.asarray(queries)
        is_rows = arr is None or np.issubdtype(arr.dtype, np.integer)
        if (is_rows and exclude is None and exclude_self is not False and not isinstance(k, bool)
                and isinstance(k, int | np.integer) and 1 <= k <= self.k_graph):
            rows = np.arange(self.n) if arr is None else np.atleast_1d(arr).astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= self.n):
                raise EmbedlensError(f"query rows must be from 0 to {self.n - 1}")
            return Neighbors(np.ascontiguousarray(self.graph.indices[rows, :k]),
                             np.ascontiguousarray(self.graph.scores[rows, :k]), self.metric)
        return super().query(queries, k, exclude_self=exclude_self, exclude=exclude)

