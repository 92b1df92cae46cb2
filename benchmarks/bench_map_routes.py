"""UMAP on a whole vocabulary: which k-NN graph and which optimisation settings buy map recall per second.

Each candidate k=14 cosine graph (each row's 14 nearest other rows; umap-learn's n_neighbors=15 counts the
row itself) is built ONCE per space and kept in ``--work`` (npz), with its build time and its own recall@14
against an exact search of 256 seeded rows (:func:`embedlens.reduce.knn.graph_recall`):

- ``exact``: embedlens' exact float32 search (read from the embedlens cache when it holds it);
- ``bf16``: exhaustive bfloat16 products, short lists re-scored exactly (:class:`BFloat16Index`);
- ``nnd``: pynndescent (NN-descent) with umap-learn's own settings (what umap-learn and embedding-atlas
  run: ``n_trees = min(64, 5 + sqrt(n) / 20)``, ``n_iters = max(5, log2 n)``, 60 candidates);
- ``nnd2``: the same on two threads (what embedlens runs: :class:`~embedlens.neighbors.nndescent.NNDescentIndex`);
- ``nnd-cheap``: pynndescent with 8 trees, 4 iterations, 30 candidates;
- ``hnsw16`` / ``hnsw32``: faiss HNSW (M 16, efConstruction 40, efSearch 32; M 32, efConstruction 80,
  efSearch 64), built on one thread (deterministic), re-scored exactly;
- ``pca128-hnsw``: HNSW on a randomized PCA to 128 dims, 56 candidates re-scored in the full space.

Then umap-learn (seeded, one thread, as :class:`embedlens.reduce.umap.UMAPReducer` runs it) on each
graph, and on ``--vary`` graphs the settings grid (epochs, negative sample rate, init). Every map is scored
by :func:`embedlens.reduce.quality.map_recall` (2,000 seeded queries, neighbours among ALL points; the
query rows' exact truth searched once and reused). Load is printed with every figure: on a shared
machine the seconds are "loaded" when it is above the core count.

Run: ``python benchmarks/bench_map_routes.py --model smollm2-135m --work WORKDIR``
(``--graphs exact,nnd,...``, ``--maps GRAPH:EPOCHS:NSR:INIT,...``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine  # noqa: E402

K = 14  # neighbours per row besides itself (umap-learn's n_neighbors=15)


def _load() -> str:
    return "load " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def _nb(indices: np.ndarray, x: np.ndarray):
    """Neighbors of every row (self dropped by id, K columns) with exact cosine scores."""
    from embedlens.neighbors.index import Neighbors

    n = x.shape[0]
    own = indices == np.arange(n)[:, None]
    order = np.argsort(own, axis=1, kind="stable")
    idx = np.take_along_axis(indices, order, axis=1)[:, :K]
    idx = np.where(idx < 0, np.arange(n)[:, None], idx)
    scores = np.einsum("ij,ikj->ik", x, x[idx], optimize=True).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    return Neighbors(np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1), "cosine")


def build_graph(name: str, x: np.ndarray, unit: np.ndarray, seed: int = 0):
    from embedlens.neighbors.index import BFloat16Index, ExactIndex

    if name == "exact":
        return ExactIndex(x, metric="cosine").query(None, K, exclude_self=True)
    if name == "bf16":
        return BFloat16Index(x, metric="cosine", recall_sample=0).query(None, K, exclude_self=True)
    if name.startswith("nnd"):
        from pynndescent import NNDescent

        n = x.shape[0]
        if name in ("nnd", "nnd2"):
            kw = {"n_trees": min(64, 5 + int(round(n**0.5 / 20.0))), "n_iters": max(5, int(round(np.log2(n)))),
                  "max_candidates": 60}
        else:
            kw = {"n_trees": 8, "n_iters": 4, "max_candidates": 30}
        index = NNDescent(x, n_neighbors=K + 1, metric="cosine", random_state=seed, low_memory=True,
                          compressed=True, verbose=False, n_jobs=2 if name == "nnd2" else 1, **kw)
        return _nb(index.neighbor_graph[0].astype(np.int64), unit)
    if name.startswith("hnsw") or name == "pca128-hnsw":
        import faiss

        faiss.omp_set_num_threads(1)
        m, efc, efs = (32, 80, 64) if name == "hnsw32" else (16, 40, 32)
        space = unit
        want = K + 1
        if name == "pca128-hnsw":
            from sklearn.utils.extmath import randomized_svd

            _, _, vt = randomized_svd(unit, 128, n_iter=2, random_state=seed)
            space = np.ascontiguousarray(unit @ vt.T, dtype=np.float32)
            space /= np.maximum(np.linalg.norm(space, axis=1, keepdims=True), 1e-12)
            want = 4 * want
        index = faiss.IndexHNSWFlat(space.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        index.add(space)
        index.hnsw.efSearch = max(efs, want)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        _, idx = index.search(space, want)
        return _nb(idx.astype(np.int64), unit)
    raise SystemExit(f"unknown graph {name}")


class UmapStages:
    """umap-learn's stages timed from outside (its fuzzy set, its spectral or PCA start, its epochs), by wrapping
    the functions ``umap.umap_`` calls while the block runs; ``seconds`` maps each stage to its time."""

    WRAPPED = {"fuzzy_simplicial_set": "fuzzy set", "spectral_layout": "init", "tswspectral_layout": "init",
               "optimize_layout_euclidean": "epochs"}

    def __enter__(self) -> UmapStages:
        import umap.umap_ as umap_

        self.seconds: dict[str, float] = {}
        self.saved = {name: getattr(umap_, name) for name in self.WRAPPED}
        for name, stage in self.WRAPPED.items():
            setattr(umap_, name, self._timed(self.saved[name], stage))
        return self

    def _timed(self, fn, stage: str):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - t, 1)
        return run

    def __exit__(self, *exc) -> None:
        import umap.umap_ as umap_

        for name, fn in self.saved.items():
            setattr(umap_, name, fn)


def run_umap(nb, x: np.ndarray, seed: int, n_epochs: int, nsr: float, init: str) -> tuple[np.ndarray, float, dict]:
    import warnings

    import umap

    t = time.perf_counter()
    with warnings.catch_warnings(), UmapStages() as stages:
        warnings.simplefilter("ignore")
        y = umap.UMAP(n_neighbors=K + 1, metric="cosine", min_dist=0.1, random_state=seed, n_jobs=1, init=init,
                      n_epochs=n_epochs, negative_sample_rate=nsr, precomputed_knn=nb.with_self()).fit_transform(x)
    return np.asarray(y, np.float32), time.perf_counter() - t, stages.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--work", required=True)
    ap.add_argument("--graphs", default="exact,bf16,nnd,nnd-cheap,hnsw16,hnsw32,pca128-hnsw")
    ap.add_argument("--maps", default="", help="GRAPH:EPOCHS:NSR:INIT,... (default: each graph at 200:5:spectral)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import embedlens
    from embedlens.neighbors.index import Neighbors, normalized_rows
    from embedlens.reduce.knn import graph_recall
    from embedlens.reduce.quality import _search_truth, map_recall, sample_indices

    print(machine(), flush=True)
    x = np.ascontiguousarray(embedlens.load(args.model).space.vectors, dtype=np.float32)
    unit = normalized_rows(x)
    n = x.shape[0]
    work = Path(args.work) / args.model
    work.mkdir(parents=True, exist_ok=True)
    rows = sample_indices(n, 2000, 0)
    truth_path = work / "truth.npy"
    if not truth_path.exists():
        np.save(truth_path, _search_truth(x, rows, 10, "cosine").indices)
    truth = Neighbors(np.load(truth_path), np.zeros((len(rows), 10), np.float32), "cosine")
    print(f"{args.model} {x.shape}", flush=True)
    if any(g.startswith("nnd") for g in args.graphs.split(",")):
        from pynndescent import NNDescent

        for jobs in (1, 2):  # numba compiles here
            NNDescent(unit[:2000], n_neighbors=15, metric="cosine", random_state=0, n_jobs=jobs)
    graphs = {}
    for g in args.graphs.split(","):
        path = work / f"graph-{g}.npz"
        if not path.exists():
            t = time.perf_counter()
            nb = build_graph(g, x, unit, args.seed)
            seconds = time.perf_counter() - t
            recall = graph_recall(x, nb, metric="cosine", sample=256, seed=0)
            np.savez(path, indices=nb.indices, scores=nb.scores, seconds=seconds, recall=recall)
            print(f"graph {g:12s} {seconds:7.1f} s  recall@{K} {recall:.4f}  {_load()}", flush=True)
        f = np.load(path)
        graphs[g] = (Neighbors(f["indices"], f["scores"], "cosine"), float(f["seconds"]), float(f["recall"]))
    maps = args.maps.split(",") if args.maps else [f"{g}:200:5:spectral" for g in graphs]
    warm = _nb(np.argsort(-(unit[:2000] @ unit[:2000].T), axis=1)[:, : K + 1], unit[:2000])
    run_umap(warm, x[:2000], args.seed, 10, 5.0, "spectral")  # umap-learn's numba compiles here
    for spec in maps:
        g, epochs, nsr, init = spec.split(":")
        nb, gsec, grec = graphs[g]
        y, seconds, stages = run_umap(nb, x, args.seed, int(epochs), float(nsr), init)
        recall = map_recall(x, y, 10, sample=2000, seed=0, metric="cosine", space_neighbors=truth)
        print(json.dumps({"graph": g, "graph_s": round(gsec, 1), "graph_recall": round(grec, 4), "epochs": int(epochs),
                          "nsr": float(nsr), "init": init, "umap_s": round(seconds, 1), "stages": stages,
                          "total_s": round(gsec + seconds, 1), "map_recall": round(recall, 4), "load": os.getloadavg()[0]}),
              flush=True)


if __name__ == "__main__":
    main()
