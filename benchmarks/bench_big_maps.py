"""Whole-vocabulary maps of a big vocabulary, end to end through the CLI: Gemma 3's 262,144 tokens.

``embedlens map --model gemma3-270m --all --method umap`` and ``--method tsne``, each with an empty graph
cache (the model's matrix extracted beforehand, so the figures are the maps'), then once more with the
graph cached (a repeated map). Reported per run: wall time, peak RSS, the manifest's stage timings, how
the k-NN graph was found (exact, bfloat16 short lists or HNSW, and its measured recall at the map's k:
14 for UMAP, 90 for t-SNE), and the map's recall@10 (2,000 seeded queries, neighbours over all points:
:func:`embedlens.reduce.quality.map_recall`).

Targets (issue 14): <= 6 min each, the full-space graph's recall >= 0.95 reported, map recall reported.

Run (one benchmark at a time on a shared machine; ~20 min):
    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_big_maps.py
Options: ``--model``, ``--methods umap,tsne``, ``--no-repeat``.

``--pca-8b FOLDER`` instead: the PCA map of an 8B vocabulary (``benchmarks/make_shape_checkpoint.py
llama-3.1-8b FOLDER``: 128,256 x 4,096), ``map --all --method pca --no-png`` end to end, warm (matrix
extracted), the baseline ``--pca exact`` (float64 covariance; ``--baseline-runs``, default 1: it takes minutes)
and the default route (``--pca auto``: randomized; ``--runs``, default 3) in the same run, with wall time,
peak RSS, the manifest's stages, the route and its stated accuracy. The first run of the default route also
searches the recall's query truth once (later maps, the baseline's too, read it), so runs are listed one by one. ``--cache``
reuses an extraction (default: a fresh one under a temporary folder, ~4 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine, run_once  # noqa: E402


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from embedlens.cli import entry; sys.argv[0] = 'embedlens'; entry()",
            *args]


def pca_8b(folder: str, cache: str | None, runs: int, baseline_runs: int) -> None:
    """``map --all --method pca`` of an 8B-shaped vocabulary: ``--pca exact`` vs the default, same run."""
    import statistics

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EMBEDLENS_CACHE": cache or f"{tmp}/cache"}
        wall, rss, _ = run_once(_cli("neighbors", "king", "--model", folder, "-k", "3"), env)
        print(f"extract (or open) {folder}: {wall:.1f} s, peak {rss:.0f} MB (not part of the map figures)", flush=True)
        for name, solver, n in (("--pca auto", "auto", runs), ("baseline --pca exact", "exact", baseline_runs)):
            walls = []
            for i in range(n):
                out = Path(tmp) / f"pca-{solver}-{i}"
                wall, rss, _ = run_once(_cli("map", "--model", folder, "--all", "--method", "pca", "--pca", solver,
                                             "--no-png", "--out", str(out)), env)
                walls.append(wall)
                m = json.loads((out / "manifest.json").read_text())
                reducer = m["params"]["reducer"]
                stages = {k: round(v, 1) for k, v in m["timings"].items() if isinstance(v, int | float)}
                fit = {k: round(v, 1) for k, v in m["timings"].get("reduce_stages", {}).items()}
                print(f"{name:22s} run {i + 1}/{n}: {wall:6.1f} s (target <= 30 s)  peak {rss:6.0f} MB (target <= 6 GB)"
                      f"  load {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
                      f"      {reducer.get('solver')}; accuracy {json.dumps(reducer.get('accuracy'))}\n"
                      f"      stages {json.dumps(stages)} reducer {json.dumps(fit)}", flush=True)
            print(f"{name:22s} median {statistics.median(walls):6.1f} s over {n} run(s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--methods", default="umap,tsne")
    ap.add_argument("--no-repeat", action="store_true", help="skip the second run with the graph cached")
    ap.add_argument("--pca-8b", default=None, metavar="FOLDER", help="the 8B PCA map benchmark instead (see above)")
    ap.add_argument("--cache", default=None, help="with --pca-8b: an embedlens cache holding the extraction")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline-runs", type=int, default=1)
    args = ap.parse_args()
    print(machine(), flush=True)
    if args.pca_8b:
        pca_8b(args.pca_8b, args.cache, args.runs, args.baseline_runs)
        print(machine(), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EMBEDLENS_CACHE": f"{tmp}/cache"}
        wall, rss, out = run_once(_cli("neighbors", "king", "--model", args.model, "-k", "3"), env)
        print(f"extract {args.model}: {wall:.1f} s, peak {rss:.0f} MB (not part of the map figures)", flush=True)
        for method in args.methods.split(","):
            for run in ("cold graph", "graph cached")[: 1 if args.no_repeat else 2]:
                folder = Path(tmp) / f"{method}-{run.split()[0]}"
                wall, rss, out = run_once(_cli("map", "--model", args.model, "--all", "--method", method,
                                               "--out", str(folder), "--json"), env)
                if not (folder / "manifest.json").is_file():
                    print(f"{method} ({run}) failed:\n{out[-2000:]}")
                    continue
                m = json.loads((folder / "manifest.json").read_text())
                reducer = m["params"]["reducer"]
                quality = m.get("quality") or {}
                stages = {k: round(v, 1) for k, v in m["timings"].items() if isinstance(v, int | float)}
                print(f"{method:5s} {run:13s} {wall:6.1f} s ({wall / 60:.1f} min; target <= 6 min)  peak {rss:6.0f} MB  "
                      f"map recall@10 {quality.get('neighbor_recall')}  graph: {reducer.get('knn_method')} "
                      f"recall@{reducer.get('knn_recall_k', '')} {reducer.get('knn_recall', 1.0)} (source {reducer.get('knn_source')})", flush=True)
                print(f"      stages {json.dumps(stages)}  reducer {json.dumps(m['timings'].get('reduce_stages', {}))}",
                      flush=True)
    print(machine(), flush=True)


if __name__ == "__main__":
    main()
