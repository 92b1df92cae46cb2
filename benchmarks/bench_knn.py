"""Full-vocabulary k-NN graph: time against the float32 matmul floor measured in the same run.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_knn.py

Measured (2 threads, as the CI machine has 2 cores):
  * the floor: 2 n² d FLOP at the sgemm GFLOP/s of ``torch.mm`` measured now (and bf16 GFLOP/s);
  * SmolLM2 (49,152 x 576) exact k=10: torch blocks + topk, faiss ``IndexFlatIP`` (the default: fastest
    measured) and the baseline numpy blocks + argpartition (all through ``knn_graph(backend=...)``);
  * SmolLM2 approx (bfloat16 + exact re-rank): time and recall@10 on a seeded sample;
  * ``--big``: Gemma-3-270M's 262,144 x 640 matrix when extracted in the cache (else a random matrix of
    that shape), approx k=10 in a child process: wall time, recall@10, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import median_time, print_machine, runs_note  # noqa: E402


def _threads(n: int = 2) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


def gflops(x: np.ndarray, dtype: str = "float32", rows: int = 2048, repeats: int = 3) -> float:
    """Matmul throughput on (rows x d) @ (d x n), the shape of one k-NN block."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    q = t[:rows]
    if dtype == "bfloat16":
        q, other = q.bfloat16(), t.bfloat16().T.contiguous()
    else:
        other = t.T
    sec = median_time(lambda: torch.mm(q, other), repeats=repeats)
    return 2 * rows * x.shape[0] * x.shape[1] / sec / 1e9


def load_matrix(spec: str) -> tuple[np.ndarray, str]:
    import embedlens

    lens = embedlens.load(spec)
    return np.ascontiguousarray(lens.space.vectors, dtype=np.float32), lens.space.name


def child_big(spec: str, k: int) -> None:
    """Run in a fresh process: approx k-NN of a big matrix; print time, recall and peak RSS as JSON."""
    _threads()
    from embedlens.neighbors.knn import knn_graph

    if spec == "random":
        x = np.random.default_rng(0).standard_normal((262_144, 640), dtype=np.float32)
        name = "random 262144x640"
    else:
        x, name = load_matrix(spec)
    t = time.perf_counter()
    g = knn_graph(x, k, method="approx", recall_sample=2000, seed=0)
    wall = time.perf_counter() - t
    print(json.dumps({"space": name, "n": int(x.shape[0]), "d": int(x.shape[1]), "wall_s": wall,
                      "timings": g.timings, "recall": g.recall, "recall_ties_ok": g.params.get("recall_ties_ok"),
                      "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024}))


def main() -> None:
    print_machine()
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", action="store_true", help="also the 262,144 x 640 approx run (Gemma-3 or random)")
    ap.add_argument("--big-spec", default="gemma3-270m", help="model for --big, or 'random'")
    ap.add_argument("--child-big", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_big:
        child_big(args.child_big, args.k)
        return
    _threads()
    from embedlens.neighbors.knn import knn_graph

    x, name = load_matrix(args.model)
    n, d = x.shape
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    print(f"{name}: {n:,} x {d}, k={args.k}, 2 threads, load average {os.getloadavg()[0]:.1f}")
    gf32 = gflops(xn)
    gf16 = gflops(xn, "bfloat16")
    floor = 2 * n * n * d / gf32 / 1e9
    print(f"sgemm {gf32:.0f} GFLOP/s, bf16 {gf16:.0f} GFLOP/s -> float32 floor 2n²d = {floor:.2f} s")

    results = {}
    for label, kwargs in (("embedlens exact (torch blocks + topk)", {"backend": "torch"}),
                          ("embedlens exact (faiss IndexFlatIP, default)", {"backend": "faiss"}),
                          ("baseline: numpy blocks + argpartition", {"backend": "numpy"}),
                          ("embedlens approx (bf16 + exact re-rank)", {"method": "approx"})):
        times, graph = [], None
        for _ in range(args.repeats):
            t = time.perf_counter()
            graph = knn_graph(x, args.k, **kwargs)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        results[label] = med
        extra = f"  recall@{args.k} {graph.recall:.4f} ({graph.recall_sample} rows)" if graph.method == "approx" else ""
        print(f"{label:50s} {runs_note(len(times))} {med:7.2f} s  = {med / floor:4.2f}x floor{extra}")
    default = results["embedlens exact (faiss IndexFlatIP, default)"]
    for label, med in results.items():
        if label != "embedlens exact (faiss IndexFlatIP, default)":
            print(f"  default vs {label}: {med / default:.2f}x")
    # floor measured again at the end: the machine is shared, so report the spread
    gf32_end = gflops(xn)
    print(f"sgemm at the end: {gf32_end:.0f} GFLOP/s (floor {2 * n * n * d / gf32_end / 1e9:.2f} s)")

    if args.big:
        out = subprocess.run([sys.executable, __file__, "--child-big", args.big_spec, "--k", str(args.k)],
                             check=True, capture_output=True, text=True, env=os.environ)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        big_floor = 2 * r["n"] ** 2 * r["d"] / gf32 / 1e9
        print(f"{r['space']} ({r['n']:,} x {r['d']}) approx k={args.k}: {r['wall_s']:.1f} s "
              f"(float32 floor {big_floor:.0f} s), recall@{args.k} {r['recall']:.4f} "
              f"(ties counted: {r['recall_ties_ok']:.4f}), peak RSS {r['peak_rss_gb']:.2f} GB, stages {r['timings']}")


if __name__ == "__main__":
    main()
