"""Reading a map: what labelled clusters cost on a UMAP map, and a word-axes map of the whole vocabulary.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_map_labels.py

Measured on SmolLM2 (warm cache: the model extracted, the UMAP k-NN graph cached by an earlier run):
  * clustering overhead: ``embedlens map --method umap`` with ``--clusters none`` and ``--clusters auto``,
    each a fresh process (median of BENCH_REPEATS, default 3), and the clustering stage's own seconds
    (manifest ``timings.clusters``) against the rest of the run (target <= 10%). The clusters reuse the
    reducer's full-space k-NN graph, so the stage is Leiden + labels + tightness. BENCH_ALL=1 maps the
    whole vocabulary (49,152 tokens) instead of the lee corpus's tokens.
  * a word-axes map of the whole vocabulary end to end, warm: ``embedlens map --all --method axes
    --x-axis man woman`` as a fresh process and ``write_atlas`` in a warm process (target <= 3 s), against the
    notebook way (numpy formula + sklearn PCA of the rest + plotly express HTML with the CDN).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import EMBEDLENS, median_time, runs_note  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def cli(args: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([EMBEDLENS, "map", *args, "--no-png", "--out", out], check=True, capture_output=True)
        wall = time.perf_counter() - t
        return wall, json.loads((Path(out) / "manifest.json").read_text())


def clustering_overhead() -> None:
    scope = ["--all"] if os.environ.get("BENCH_ALL") else []
    cli(["--method", "umap", *scope, "--clusters", "none"])  # warm: model extracted, graph cached
    plain, clustered, stage, rest = [], [], [], []
    for _ in range(REPEATS):
        plain.append(cli(["--method", "umap", *scope, "--clusters", "none"])[0])
        wall, manifest = cli(["--method", "umap", *scope, "--clusters", "auto"])
        clustered.append(wall)
        t = manifest["timings"]
        stage.append(t["clusters"])
        rest.append(t["total"] - t["clusters"])
    n = manifest["n_points"]
    block = manifest["clusters"]
    a, b = statistics.median(plain), statistics.median(clustered)
    s, r = statistics.median(stage), statistics.median(rest)
    print(f"UMAP map of {n:,} SmolLM2 tokens: --clusters none {a:.2f} s, --clusters auto {b:.2f} s "
          f"(wall, fresh processes, {runs_note(REPEATS)}): {100 * (b - a) / a:+.1f}%")
    print(f"  clustering stage {s:.2f} s vs the rest of the run {r:.2f} s ({runs_note(REPEATS)}): {100 * s / r:.1f}% (target <= 10%); "
          f"{block['n_clusters']} clusters, {block['method']}, graph: {block['params'].get('knn_source')}")
    print("  stages: " + ", ".join(f"{k} {v:.3f} s" for k, v in block["timings"].items()))


BASELINE = r"""
import os, sys, time
t0 = time.perf_counter()
import numpy as np
import embedlens
from sklearn.decomposition import PCA
import plotly.express as px
lens = embedlens.load("smollm2-135m")
sp = lens.space
U = np.asarray(sp.vectors, dtype=np.float32)
U = U / np.linalg.norm(U, axis=1, keepdims=True)
a, b = U[sp.row_of_id[lens.encode("man", add_special_tokens=False)[0]]], U[sp.row_of_id[lens.encode("woman", add_special_tokens=False)[0]]]
v = b - a
x = ((U - a) @ v) / (v @ v)
rest = U - np.outer(U @ v, v) / (v @ v)
y = PCA(1).fit_transform(rest)[:, 0]
fig = px.scatter(x=x, y=y, hover_name=list(sp.display))
fig.write_html(sys.argv[1], include_plotlyjs="cdn")
print(time.perf_counter() - t0)
"""


def axes_map() -> None:
    args = ["--all", "--method", "axes", "--x-axis", "man", "woman"]
    cli(args)
    walls = [cli(args)[0] for _ in range(REPEATS)]
    import embedlens
    from embedlens.atlas import write_atlas
    from embedlens.reduce.options import ReduceOptions

    lens = embedlens.load("smollm2-135m")
    with tempfile.TemporaryDirectory() as out:
        axes = ReduceOptions("axes", x_axis=["man", "woman"])
        warm = median_time(lambda: write_atlas(lens, out, all_tokens=True, reduce=axes, png=False),
                           repeats=REPEATS, warmup=1)
        result = write_atlas(lens, out, all_tokens=True, reduce=axes, png=False)
    with tempfile.TemporaryDirectory() as out:
        base = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", BASELINE, str(Path(out) / "b.html")], check=True, capture_output=True)
            base.append(time.perf_counter() - t)
    print(f"axes map of the whole vocabulary ({result.n_points:,} tokens, HTML + parquet + manifest, no PNG): "
          f"CLI {runs_note(REPEATS)} {statistics.median(walls):.2f} s (fresh process), write_atlas {runs_note(REPEATS)} "
          f"{warm:.2f} s warm (target <= 3 s)")
    print("  stages (1 run): " + ", ".join(f"{k} {v:.3f} s" for k, v in result.timings.items() if isinstance(v, float)))
    print(f"  baseline (numpy formula + sklearn PCA + plotly express, CDN): {runs_note(REPEATS)} {statistics.median(base):.2f} s "
          f"-> ratio {statistics.median(walls) / statistics.median(base):.2f}")


if __name__ == "__main__":
    which = sys.argv[1:] or ["axes", "clusters"]
    if "axes" in which:
        axes_map()
    if "clusters" in which:
        clustering_overhead()
