"""``embedlens compare``: SmolLM2's input space against Gemma 3 270M's, end to end, and what the control adds.

    EMBEDLENS_CACHE=<a cache with both models extracted> .venv/bin/python benchmarks/bench_compare.py [--repeats 3]

Measured: the real command ``embedlens compare smollm2-135m gemma3-270m --out TMP`` in a child process, both
matrices already extracted in the cache and no k-NN graph of the shared tokens cached (a string match: the
shared tokens are a subset of each vocabulary, searched exactly each run): wall seconds (median of
``--repeats``), the child's CPU seconds (user + system: on a loaded machine wall time grows, CPU time much
less) and peak RSS; each stage's seconds from the run's manifest; the control's added cost, its seconds over
the rest of the run. Targets: <= 60 s end to end, the control <= 10 %.

Measured on the 2-core AMD EPYC box, load average 2.0: median 45.8 s over 3 runs (87 s CPU, peak RSS 1.5 GB;
the three exact searches of 46,145 x 46,145 take 41 s of it), the control 2.7 s = +6.3 %.

``--big``: the untied Llama-3.1-8B-shaped random checkpoint (``--checkpoint``), its input space against its
unembedding (identity match, 128,256 x 4,096 each; the k-NN graphs of both spaces are the cost and are
cached by the neighbour layer). Random weights: every figure must sit at its control's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, print_machine  # noqa: E402


def run(a: str, b: str, extra: list[str]) -> dict:
    """One run of the command: wall and CPU seconds, peak RSS, the manifest."""
    import subprocess
    import time

    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryFile() as log:
        t = time.perf_counter()
        proc = subprocess.Popen([EMBEDLENS, "compare", a, b, "--out", out, *extra], stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"compare {a} {b} failed:\n{log.read().decode(errors='replace')[-3000:]}")
        manifest = json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "manifest": manifest}


def report(name: str, runs: list[dict], target_s: float) -> None:
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    m = runs[len(runs) // 2]["manifest"]
    t = m["timings"]
    control = statistics.median(r["manifest"]["timings"]["control"] for r in runs)
    rest = statistics.median(r["manifest"]["timings"]["total"] - r["manifest"]["timings"]["control"] for r in runs)
    print(f"{name}: {m['n_shared']:,} shared tokens ({m['match']} match), k {m['k']}, "
          f"{m['params']['control_runs']} control runs")
    print(f"  end to end: median {wall:.1f} s wall over {len(runs)} run(s) (target <= {target_s:.0f} s), "
          f"{cpu:.1f} s CPU, peak RSS {max(r['rss_mb'] for r in runs):,.0f} MB; load {os.getloadavg()[0]:.1f}")
    print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    print(f"  control: {control:.1f} s over {rest:.1f} s for the rest = +{100 * control / rest:.1f} % (target <= 10 %)")
    figures = ", ".join(f"{k} {m[k]:.4f} (control {m['control'][k]['mean']:.4f} ± {m['control'][k]['std']:.4f})"
                        for k in ("cka", "knn_overlap", "procrustes_residual", "acc1", "acc10"))
    print(f"  figures: {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--big", action="store_true", help="also the 8B-shaped input vs output case")
    parser.add_argument("--checkpoint", default=None, help="folder of the 8B-shaped checkpoint (for --big)")
    args = parser.parse_args()
    print_machine()
    runs = [run("smollm2-135m", "gemma3-270m", []) for _ in range(args.repeats)]
    report("SmolLM2 input vs Gemma 3 270M input", runs, 60)
    if args.big:
        if not args.checkpoint:
            raise SystemExit("--big needs --checkpoint FOLDER (benchmarks/make_shape_checkpoint.py writes one)")
        runs = [run(args.checkpoint, f"{args.checkpoint}:output", ["--no-html"])]
        report("Llama-3.1-8B-shaped input vs output", runs, 240)
    print_machine()


if __name__ == "__main__":
    main()
