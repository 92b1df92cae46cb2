"""Benchmark the reducers on SmolLM2's full input embedding matrix (49,152 x 576).

Each method runs in its own fresh subprocess (so imports, numba compilation and peak RSS are
counted per method, as a user running ``embedlens map`` would pay them):

- PCA 3D: ours (covariance + eigh) vs scikit-learn's ``PCA(n_components=3)`` (its default solver)
  on the same raw matrix, median of 5 warm fits each, plus the cold end-to-end time (process start,
  load the memory-mapped space, fit).
- t-SNE 2D and UMAP 2D: one run each with per-stage timings.
- projection_quality (k=10, 2,000-point sample): median of 5, and the figures for each map.
- knn (``--methods knn``): the full-space cosine k-NN graph t-SNE (k=90) and UMAP (k=14) start from:
  faiss exact flat search (the baseline) vs the HNSW graph used above 100,000 rows, with the recall of
  HNSW against brute force on 256 sampled rows. Recall and time of whole maps: bench_faithfulness.py.

Run (one benchmark at a time on the shared machine):
    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_reduce.py
Options: ``--methods pca,tsne,umap[,knn]``, ``--model smollm2-135m`` (or ``gemma3-270m``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_STARTED = time.perf_counter()


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load(model: str):
    import embedlens

    return embedlens.load(model).space.vectors


def _quality(x, y, repeats: int) -> dict:
    from embedlens.reduce.quality import projection_quality

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        q = projection_quality(x, y, k=10, sample=2000, seed=0, metric="cosine")
        times.append(time.perf_counter() - t)
    return {"quality": q.to_dict(), "quality_s_median": statistics.median(times), "quality_s_all": times}


def child(method: str, model: str) -> dict:
    t = time.perf_counter()
    x = _load(model)
    out: dict = {"method": method, "shape": list(x.shape), "load_s": time.perf_counter() - t}
    from embedlens.reduce import make_reducer

    if method == "knn":
        from embedlens.neighbors.index import ExactIndex, HNSWIndex

        # The full-space cosine graphs t-SNE (k=90) and UMAP (k=14 others + itself) start from.
        for k in (14, 90):
            t = time.perf_counter()
            h = HNSWIndex(x, seed=0)
            h.query(None, k)
            out[f"hnsw_k{k}_s"] = time.perf_counter() - t
            out[f"hnsw_k{k}"] = h.describe()
            t = time.perf_counter()
            ExactIndex(x, backend="faiss").query(None, k)
            out[f"exact_k{k}_s"] = time.perf_counter() - t
        out["peak_rss_mb"] = _peak_rss_mb()
        return out
    if method == "pca":
        t = time.perf_counter()
        r = make_reducer("pca", n_components=3, metric="cosine")
        y = r.fit_transform(x)
        out["first_fit_s"] = time.perf_counter() - t
        out["end_to_end_s"] = time.perf_counter() - _STARTED  # interpreter start + imports + load + fit
        out["timings"] = r.timings_
        ours, ours_cos, theirs = [], [], []
        import numpy as np
        from sklearn.decomposition import PCA

        for _ in range(5):
            t = time.perf_counter()
            make_reducer("pca", n_components=3, metric="euclidean").fit_transform(x)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            make_reducer("pca", n_components=3, metric="cosine").fit_transform(x)
            ours_cos.append(time.perf_counter() - t)
            t = time.perf_counter()
            sk = PCA(n_components=3, random_state=0)
            ref = sk.fit_transform(x)
            theirs.append(time.perf_counter() - t)
        mine = make_reducer("pca", n_components=3, metric="euclidean").fit_transform(x)
        signs = np.sign(np.einsum("ij,ij->j", mine, ref))
        diff = float(np.abs(mine - signs * ref).max())
        out.update(
            ours_euclidean_s=statistics.median(ours),
            ours_cosine_s=statistics.median(ours_cos),
            sklearn_s=statistics.median(theirs),
            sklearn_solver=getattr(sk, "_fit_svd_solver", "?"),
            ratio_sklearn_over_ours=statistics.median(theirs) / statistics.median(ours),
            max_abs_diff_vs_sklearn_up_to_sign=diff,
        )
        out.update(_quality(x, y, 5))
    else:
        t = time.perf_counter()
        r = make_reducer(method, n_components=2, metric="cosine", seed=0)
        y = r.fit_transform(x)
        out["fit_s"] = time.perf_counter() - t
        out["end_to_end_s"] = time.perf_counter() - _STARTED
        out["timings"] = r.timings_
        out["notes"] = r.notes_
        out["params"] = {k: v for k, v in r.params_.items() if not isinstance(v, list)}
        out.update(_quality(x, y, 3))
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="pca,tsne,umap")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model)))
        return
    print(f"cores: {len(os.sched_getaffinity(0))}, load average: {os.getloadavg()}", flush=True)
    targets = {"pca": 5.0, "tsne": 90.0, "umap": 60.0}
    results = []
    for method in args.methods.split(","):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", method, "--model", args.model],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            print(f"{method}: FAILED\n{proc.stderr[-3000:]}", flush=True)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["process_wall_s"] = wall
        results.append(res)
        if method == "knn":
            print(f"\n== k-NN graph on {res['shape'][0]:,} rows (pre-PCA 50, {args.model}), fresh process")
            for k in (15, 90):
                info = res[f"hnsw_k{k}"]
                print(f"  k={k}: faiss exact {res[f'exact_k{k}_s']:.1f} s; HNSW {res[f'hnsw_k{k}_s']:.1f} s "
                      f"(exact/HNSW {res[f'exact_k{k}_s'] / res[f'hnsw_k{k}_s']:.1f}x, efSearch {info['hnsw_ef_search']}), "
                      f"recall {info['knn_recall_sampled']:.4f} on {info['knn_recall_rows']} rows", flush=True)
            continue
        q = res["quality"]
        print(
            f"\n== {method} on {res['shape'][0]:,} x {res['shape'][1]} ({args.model}), fresh process",
            flush=True,
        )
        if method == "pca":
            print(
                f"  end to end (start python, load space, PCA 3D cosine): {res['end_to_end_s']:.2f} s"
                f"  [target <= {targets[method]:.0f} s]  stages {fmt(res['timings'])}"
            )
            print(
                f"  warm fit, median of 5: ours {res['ours_euclidean_s']:.3f} s (euclidean), "
                f"{res['ours_cosine_s']:.3f} s (cosine); sklearn PCA(n_components=3, solver "
                f"{res['sklearn_solver']}) {res['sklearn_s']:.3f} s -> ratio sklearn/ours "
                f"{res['ratio_sklearn_over_ours']:.2f}x; max |ours - sklearn| up to sign "
                f"{res['max_abs_diff_vs_sklearn_up_to_sign']:.2e}"
            )
        else:
            print(
                f"  fit {res['fit_s']:.1f} s, end to end {res['end_to_end_s']:.1f} s "
                f"[target <= {targets[method]:.0f} s]; stages {fmt(res['timings'])}"
            )
            print(f"  notes: {res['notes']}")
        print(
            f"  quality: trustworthiness {q['trustworthiness']:.4f}, neighbour recall@10 "
            f"{q['neighbor_recall']:.4f} (n_sample {q['n_sample']}); projection_quality median of "
            f"{len(res['quality_s_all'])} "
            f"{res['quality_s_median']:.3f} s"
        )
        print(f"  peak RSS {res['peak_rss_mb']:.0f} MB [target <= 3072 MB]", flush=True)
    print("\nJSON:", json.dumps(results))


def fmt(timings: dict) -> str:
    return ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())


if __name__ == "__main__":
    main()
