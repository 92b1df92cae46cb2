"""The k-nearest-neighbour graph t-SNE and UMAP start from: found in the full space, with the map's metric.

A map can only keep the neighbours it is given. On SmolLM2's 49,152 x 576 input embeddings a graph found
after PCA to 50 dimensions (24% of the variance) left UMAP a neighbour recall@10 of 0.022 and t-SNE
0.113; the same maps on the exact full-space cosine graph reach ~0.15 and ~0.35
(``docs/faithfulness.md``, ``benchmarks/bench_faithfulness.py``). So :func:`map_graph`:

- takes a graph the caller already has (``Reducer.fit(X, neighbors=...)``: a
  :class:`~embedlens.neighbors.index.Neighbors` of every row, or a cached ``embedlens knn``
  :class:`~embedlens.neighbors.knn.KnnGraph`) when it holds at least the k needed and has the map's
  metric; a graph with too few neighbours is rebuilt, with a note, never silently used;
- else reuses a graph cached for the same vectors (content hash), metric and k or more;
- else builds one by its ``route``: ``"search"`` (the neighbour layer's :func:`~embedlens.neighbors.build_index`:
  exact up to ``EXACT_MAX`` rows, exhaustive bfloat16 short lists re-scored exactly (where bfloat16 is
  fast) up to ``EXHAUSTIVE_MAX``, faiss HNSW above), ``"exact"`` at any size, ``"nndescent"``
  (:class:`~embedlens.neighbors.nndescent.NNDescentIndex`, two threads, seeded) at any size, or ``"auto"``,
  what t-SNE and UMAP maps use: NN-descent from ``NNDESCENT_FROM`` rows (up to ``NNDESCENT_MAX_K`` neighbours
  per row), ``"search"`` otherwise. An
  approximate graph's recall at the map's k is measured against an exact search of seeded rows and reported
  in a note and the params (``knn_route``, ``knn_recall``, ``knn_recall_k``, ``knn_recall_rows``); the graph
  is cached under ``$EMBEDLENS_CACHE/spaces/<content hash>/`` when the space has at least ``CACHE_FROM`` rows.

Why NN-descent from 100,000 rows (``docs/faithfulness.md``): a map's recall is decided by its optimisation,
not by the last few true neighbours of its graph. On SmolLM2 (49,152 rows) UMAP kept recall@10 0.175 on
NN-descent's graph (84.6% of the true neighbours, 10 s) and 0.173 on the exact one (33 s through bfloat16
short lists), but pynndescent compiles its numba code in every process (30-120 s on 2 cores), so below
100,000 rows the exhaustive search is cheaper. On Gemma 3's 262,144 rows the exhaustive pass took 390 s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..neighbors import build_index
from ..neighbors.index import (  # noqa: F401 (re-exported)
    EXACT_MAX,
    EXHAUSTIVE_MAX,
    RECALL_SAMPLE,
    BFloat16Index,
    ExactIndex,
    Neighbors,
    faiss_available,
    one_off_backend,
    recall_at_k,
    sample_rows,
)
from ..neighbors.knn import FORMAT_VERSION, KnnGraph, space_folder
from ..neighbors.nndescent import NNDescentIndex
from ..progress import shielded
from ..timing import Timings
from .base import LARGE_FROM
from .pca import pre_pca_applies, pre_reduce

log = logging.getLogger("embedlens")

CACHE_FROM = 5000  # rows from which a map's graph is cached on disk (below, building it costs less than hashing)
NNDESCENT_FROM = LARGE_FROM  # rows from which the "auto" route finds a map's graph by NN-descent
# The most neighbours per row "auto" asks of NN-descent: its cost grows with k (on Gemma 3, k=14 43 s and k=30
# 67 s alone; k=90 1.8x k=30's time under the same load), the exhaustive search's does not (390 s on Gemma), and
# t-SNE's perplexity 30 (k=90) is the largest measured (docs/faithfulness.md). Above it, the exhaustive search.
NNDESCENT_MAX_K = 90
ROUTES = ("auto", "search", "exact", "nndescent")
# The least stored recall at which a cached approximate graph is reused: "search" keeps the exhaustive
# route's standard; the NN-descent routes accept their own graphs (0.85 on SmolLM2, the map's recall unchanged).
MIN_CACHED_RECALL = {"search": 0.9, "auto": 0.8, "nndescent": 0.8}


def check_route(route: str) -> str:
    if route not in ROUTES:
        raise EmbedlensError(f"knn_route must be one of {', '.join(ROUTES)}, got {route!r}")
    return route


def check_nndescent_from(rows: int | None) -> int | None:
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1):
        raise EmbedlensError(f"nndescent_from must be a positive integer or None, got {rows!r}")
    return rows


def nndescent_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pynndescent") is not None and importlib.util.find_spec("numba") is not None


def pick_route(route: str, n: int, nndescent_from: int | None = None, k: int | None = None) -> str:
    """The route that finds the ``k``-NN graph of ``n`` rows: ``"auto"`` resolved by size, by ``k`` (NN-descent up
    to ``NNDESCENT_MAX_K``) and by pynndescent's presence."""
    route = check_route(route)
    if route != "auto":
        return route
    start = NNDESCENT_FROM if nndescent_from is None else int(nndescent_from)
    small_k = k is None or k <= NNDESCENT_MAX_K
    return "nndescent" if n >= start and small_k and nndescent_available() else "search"


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Threads to use: ``None`` or -1 means every core this process may run on."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n_jobs is None or n_jobs == -1:
        return cores
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise EmbedlensError(f"n_jobs must be a positive integer, -1 or None (all cores), got {n_jobs!r}")
    return int(n_jobs)


def _as_neighbors(given: Any) -> tuple[Neighbors, dict[str, Any]]:
    """A caller's graph (Neighbors, KnnGraph, or an ``(indices, distances)`` pair) as Neighbors + its description."""
    if isinstance(given, Neighbors):
        return given, {"knn_method": "given", "knn_metric": given.metric}
    if hasattr(given, "indices") and hasattr(given, "neighbors"):  # a KnnGraph
        info = {"knn_method": f"given {given.method} k-NN graph ({given.backend})", "knn_metric": given.metric}
        if given.method != "exact":
            info["knn_recall"] = round(float(given.recall), 4)
        return given.neighbors(), info
    raise EmbedlensError("neighbors must be a Neighbors or a KnnGraph of every row, or None to build the graph")


def _cached_graph(folder: Path, n: int, k: int, metric: str, min_recall: float | None = 0.9) -> Any:
    """The narrowest cached graph of these rows with >= k neighbours and this metric (exact preferred), or None.

    ``min_recall``: the least stored recall of an approximate graph to take; None takes exact graphs only."""

    if not folder.is_dir():
        return None
    found = []
    for meta_path in folder.glob("knn-*-k*-*.json"):
        try:
            kk = int(meta_path.name.rsplit("-k", 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if kk >= k and meta_path.with_suffix(".safetensors").is_file():
            found.append((not meta_path.name.endswith("-exact.json"), kk, meta_path.with_suffix(".safetensors")))
    for _, _, path in sorted(found):
        try:
            graph = KnnGraph.load(path)
        except EmbedlensError as exc:
            log.warning("%s", exc)
            continue
        if graph.n == n and graph.metric == metric and graph.format >= FORMAT_VERSION and (
                graph.method == "exact" or (min_recall is not None and graph.recall >= min_recall)):
            return graph
    return None


def map_graph(
    X: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    neighbors: Any = None,
    seed: int = 0,
    n_jobs: int | None = None,
    exact_max: int | None = None,
    cache: bool = True,
    route: str = "search",
    nndescent_from: int | None = None,
) -> tuple[Neighbors, dict[str, Any], list[str]]:
    """Each row's ``k`` nearest other rows of ``X`` (n, d) by ``metric``, for a map.

    Args:
        route: how a graph not given nor cached is found (module docstring): ``"search"`` (default),
            ``"exact"``, ``"nndescent"`` or ``"auto"`` (NN-descent from ``nndescent_from`` rows).
        nndescent_from: rows from which ``"auto"`` takes NN-descent (default ``NNDESCENT_FROM``).

    Returns:
        ``(neighbors, info, notes)``: :class:`Neighbors` of shape (n, k) (self excluded by id), what the
        manifest records about the graph (method, metric, recall when approximate, where it came from,
        seconds), and one-line notes for the user.
    """
    n = X.shape[0]
    notes: list[str] = []
    if neighbors is not None:
        nb, info = _as_neighbors(neighbors)
        if nb.indices.shape[0] != n:
            raise EmbedlensError(f"the given k-NN graph has {nb.indices.shape[0]} rows but X has {n}")
        if nb.metric != metric:
            notes.append(f"the given k-NN graph is {nb.metric}, the map is {metric}: rebuilt")
        elif nb.k < k:
            notes.append(f"the given k-NN graph holds {nb.k} neighbours per row, the map needs {k}: rebuilt")
        else:
            return nb.first(k), {**info, "knn_source": "given", "knn_k_stored": nb.k}, notes

    graph, info, found_notes = _found_graph(X, k, metric, seed, n_jobs, exact_max, cache, route, nndescent_from)
    return graph.neighbors(k=k), info, notes + found_notes


def map_knn_graph(X: np.ndarray, k: int, *, metric: str = "cosine", seed: int = 0, route: str = "auto") -> KnnGraph:
    """:func:`map_graph`'s graph of every row as the :class:`~embedlens.neighbors.knn.KnnGraph` it caches (a cached
    one may hold more than ``k`` neighbours): one graph, found where the maps of the same rows find it, that a
    caller also clusters and measures on (the explorer's big spaces)."""
    return _found_graph(X, k, metric, seed, None, None, True, route, None)[0]


def _found_graph(X: np.ndarray, k: int, metric: str, seed: int, n_jobs: int | None, exact_max: int | None, cache: bool,
                 route: str, nndescent_from: int | None) -> tuple[KnnGraph, dict[str, Any], list[str]]:
    """:func:`map_graph` once no graph was given: the cached graph, else the one its ``route`` builds (and caches)."""
    n = X.shape[0]
    clock = Timings()
    route = pick_route(route, n, nndescent_from, k)
    folder = space_folder(X) if cache and n >= CACHE_FROM else None
    if folder is not None:
        graph = _cached_graph(folder, n, k, metric, MIN_CACHED_RECALL.get(route))
        if graph is not None:
            info = {"knn_method": f"{graph.method} ({graph.backend})", "knn_metric": metric,
                    "knn_route": _cached_route(graph), "knn_source": "cache", "knn_k_stored": graph.k, "knn_seconds": round(clock.since_start(), 3)}
            if graph.method != "exact":
                info.update(knn_recall=round(float(graph.recall), 4), knn_recall_k=graph.k)
            return graph, info, []
    # A stop (progress.stop_on) ends the searches block by block. NN-descent cannot be interrupted, and once it
    # (or a search) has finished, the few seconds left (its table, the recall, the cache) run to the end.
    if route == "nndescent":
        index: Any = NNDescentIndex(X, metric=metric, k=k, seed=seed)
        with shielded():
            nb = index.query(None, k, exclude_self=True)
    else:
        exact_max = (n if route == "exact" else EXACT_MAX) if exact_max is None else exact_max
        index = build_index(X, metric=metric, exact_max=exact_max, exhaustive_max=max(exact_max, EXHAUSTIVE_MAX),
                            n_jobs=n_jobs, seed=seed, recall_sample=0 if route == "exact" else RECALL_SAMPLE)
        nb = index.query(None, k, exclude_self=True)
    with shielded():
        return _described_graph(X, nb, index, k, metric, seed, folder, round(clock.since_start(), 3))


def _described_graph(X: np.ndarray, nb: Neighbors, index: Any, k: int, metric: str, seed: int, folder: Path | None,
                     seconds: float) -> tuple[KnnGraph, dict[str, Any], list[str]]:
    """A graph just found by ``index``: its recall measured when approximate, described, cached in ``folder``."""
    n = X.shape[0]
    notes: list[str] = []
    info = {**index.describe(), "knn_route": _index_route(index), "knn_source": "computed", "knn_seconds": seconds}
    if not index.exact:
        # The graph's own recall, at the k the map uses (the index measured recall@10 when it was built).
        recall = graph_recall(X, nb, metric=metric, sample=RECALL_SAMPLE, seed=seed)
        for key in ("recall_k", "recall_rows", "recall_seed"):  # the build-time figure, superseded
            info.pop(key, None)
        info.update(knn_recall=round(recall, 4), knn_recall_k=k, knn_recall_rows=min(n, RECALL_SAMPLE))
        how = {"bf16 short lists": "bfloat16 products (short lists re-scored exactly)",
               "nndescent": "NN-descent (pynndescent, seeded, a fixed thread count) rather than an exhaustive search",
               }.get(info["knn_route"], "an HNSW index (faiss) rather than an exhaustive search")
        notes.append(f"{n:,} points: the k-NN graph comes from {how}; it holds {recall:.1%} of the true "
                     f"{k} nearest neighbours ({min(n, RECALL_SAMPLE)} sampled points)")
    graph = KnnGraph(nb.indices, nb.scores, "exact" if index.exact else "approx", index.name,
                     1.0 if index.exact else float(info["knn_recall"]), int(info.get("knn_recall_rows", 0)), seed,
                     {"search": float(info["knn_seconds"])}, "map",
                     {k_: v for k_, v in index.info.items() if isinstance(v, int | float | str) and not k_.startswith("recall_")},
                     metric)
    if folder is not None:
        _save(folder, graph)
    return graph, info, notes


def _index_route(index: Any) -> str:
    """The route an index took, by name: ``exact``, ``bf16 short lists``, ``hnsw`` or ``nndescent``."""
    if isinstance(index, NNDescentIndex):
        return "nndescent"
    if index.exact:
        return "exact"
    return "bf16 short lists" if isinstance(index, BFloat16Index) else "hnsw"


def _cached_route(graph: Any) -> str:
    """The route that found a cached graph, from the index name it stored."""
    if graph.method == "exact":
        return "exact"
    backend = str(graph.backend)
    return "nndescent" if backend.startswith("nndescent") else "bf16 short lists" if backend.startswith("bf16") else "hnsw"


def _save(folder: Path, graph: KnnGraph) -> None:
    try:
        graph.save(folder / f"knn-map-{graph.metric}-k{graph.k}-{graph.method}.safetensors")
    except OSError as exc:  # a read-only cache costs the next map a rebuild, nothing more
        log.warning("could not cache the map's k-NN graph in %s (%s)", folder, exc)


def graph_recall(X: np.ndarray, found: Neighbors, *, metric: str = "cosine", sample: int = 256, seed: int = 0) -> float:
    """:func:`~embedlens.neighbors.index.recall_at_k` of a graph of every row of ``X`` against the exact
    ``found.k`` nearest rows (full space, ``metric``) of ``sample`` seeded rows: what an approximate graph,
    or one found after a PCA, costs in true neighbours."""

    rows = sample_rows(X.shape[0], sample, seed)
    truth = ExactIndex(X, metric=metric, backend=one_off_backend(X.shape, len(rows), metric)).query(
        rows, found.k, exclude_self=True)
    return recall_at_k(Neighbors(found.indices[rows], found.scores[rows], found.metric), truth)


def record_graph(reducer: Any, info: dict, notes: list[str]) -> str:
    """Put a :func:`map_graph` description into a reducer's ``params_`` and its notes into ``notes_``."""
    info = dict(info)
    method = str(info.pop("knn_method"))
    reducer.params_.update(info)
    reducer.notes_.extend(notes)
    return method


def graph_and_rows(reducer: Any, X: np.ndarray, pre_pca: int | None, k: int, neighbors: Any,
                   n_jobs: int | None) -> tuple[np.ndarray, int | None, Neighbors, str]:
    """The rows a t-SNE/UMAP ``reducer`` optimises on (:func:`~embedlens.reduce.pca.pre_reduce`, with the PCA
    dimensions used) and its graph (:func:`reducer_graph`).

    A full-space graph is found before the prepared rows exist: the graph search holds its own unit rows, so
    the two copies never live at once (each is 2.1 GB on an 8B model's 128,256 x 4,096 vocabulary)."""
    if not pre_pca_applies(X.shape[1], pre_pca):
        graph, how = reducer_graph(reducer, X, None, k, None, neighbors, n_jobs)
        Z, used = pre_reduce(reducer, X, pre_pca)
        return Z, used, graph, how
    Z, used = pre_reduce(reducer, X, pre_pca)
    graph, how = reducer_graph(reducer, X, Z, k, used, neighbors, n_jobs)
    return Z, used, graph, how


def reducer_graph(reducer: Any, X: np.ndarray, Z: np.ndarray | None, k: int, pre_pca: int | None, neighbors: Any,
                  n_jobs: int | None) -> tuple[Neighbors, str]:
    """The graph a t-SNE/UMAP ``reducer`` starts from, timed as its ``knn`` stage, recorded in its params and notes.

    Without ``pre_pca``: :func:`map_graph` of the raw rows ``X`` with the reducer's metric and ``knn_route``
    (default ``"auto"``: NN-descent from ``NNDESCENT_FROM`` rows; a cached ``embedlens knn`` graph of the
    same vectors is found first). With it: the graph of the PCA'd rows ``Z``
    (euclidean), and a note saying how many true full-space neighbours it kept. Sets the reducer's
    ``neighbors_``: the graph when it is the exact full-space one (reused by the map's recall), else None;
    ``graph_``: the graph when it is a full-space one, exact or not (reused by clustering), else None.
    """
    with reducer._timed("knn"):
        if pre_pca is None:
            nb, info, notes = map_graph(X, k, metric=reducer.metric, neighbors=neighbors, seed=reducer.seed,
                                        n_jobs=n_jobs, route=getattr(reducer, "knn_route", "auto"),
                                        nndescent_from=getattr(reducer, "nndescent_from", None))
        else:
            nb, info, notes = map_graph(Z, k, metric="euclidean", seed=reducer.seed, n_jobs=n_jobs)
            if neighbors is not None:
                notes.append("the given k-NN graph was not used: with pre_pca the graph is found after the PCA")
            recall = graph_recall(X, nb, metric=reducer.metric, seed=reducer.seed)
            info.update(knn_space=f"after PCA to {pre_pca} dims", knn_full_space_recall=round(recall, 4))
            notes.append(f"pre_pca={pre_pca}: the k-NN graph is found after the PCA, so it holds only {recall:.1%} of "
                         f"the true {k} nearest neighbours of the full space (256 sampled points); without "
                         "pre_pca it is found in the full space")
    # The graph is also the space's exact neighbours (for the map's recall) when nothing approximated it.
    exact_full = pre_pca is None and "knn_recall" not in info and info.get("knn_method") != "given"
    reducer.neighbors_ = nb if exact_full else None
    reducer.graph_ = nb if pre_pca is None else None  # full-space, maybe approximate: good enough for clusters
    return nb, record_graph(reducer, info, notes)
