"""Benchmark: every occurrence of "first" in enwiki-sample through SmolLM2, all 31 hidden states, PCA map.

Run under the shared lock, with the cache where SmolLM2 is already extracted:

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_contextual.py

* ours: ``embedlens context --corpus enwiki-sample --focus first --layer all --method pca`` in a subprocess,
  end to end (wall time, peak RSS of the child), ``--repeats`` times, median reported.
* baseline, the tutorial way: the same windows through the same transformers model in-process, one
  forward pass per occurrence (unbatched, full window both sides, LM head included, all hidden states
  returned), on the first ``--baseline-n`` occurrences; the time for all of them is extrapolated
  linearly (model load excluded, which favours the baseline).
Targets (issue 6): end to end <= 60 s, peak RSS <= 3 GB. The load average is printed: other jobs on this
2-core machine slow every figure down.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDLENS = Path(sys.executable).with_name("embedlens")


def run_ours(out: Path, window: int) -> tuple[float, float]:
    cmd = [str(EMBEDLENS), "context", "--corpus", "enwiki-sample", "--focus", "first", "--layer", "all",
           "--method", "pca", "--window", str(window), "--out", str(out)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"embedlens context failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # KiB -> GB; max over children so far
    return wall, rss_gb


def run_baseline(n: int, window: int) -> tuple[float, int, int]:
    import torch

    import embedlens
    from embedlens.contextual.occurrences import find_occurrences
    from embedlens.contextual.states import network
    from embedlens.corpus import open_corpus

    lens = embedlens.load("smollm2-135m")
    model = network(lens)
    tok = lens.tokenizer
    found, total = find_occurrences(open_corpus("enwiki-sample"), "first", window=window, causal=False)
    sample = found[:n]
    started = time.perf_counter()
    with torch.no_grad():
        for f in sample:
            enc = tok(f.model_text, return_tensors="pt", return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")[0]
            out = model(**enc, output_hidden_states=True)
            ws, we = f.word_span
            cover = ((offsets[:, 0] < we) & (offsets[:, 1] > ws)).nonzero()[:, 0]
            _ = torch.stack(out.hidden_states)[:, 0, cover].mean(1).numpy()
    return time.perf_counter() - started, len(sample), len(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-n", type=int, default=100)
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("EMBEDLENS_CACHE", "/tmp/elcache")
    print(f"EMBEDLENS_CACHE={os.environ['EMBEDLENS_CACHE']} cores={os.cpu_count()} load={os.getloadavg()}")
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            wall, rss = run_ours(Path(tmp) / f"run{r}", args.window)
            walls.append(wall)
            print(f"ours run {r + 1}: {wall:.1f} s end to end, peak RSS so far {rss:.2f} GB, load={os.getloadavg()[0]:.1f}",
                  flush=True)
        import json

        m = json.loads((Path(tmp) / "run0" / "manifest.json").read_text())
        print("ours timings (last run):", json.dumps(m["timings"]))
        print(f"occurrences: {m['models'][0]['n_points'] // len(m['models'][0]['layers'])}, "
              f"layers {len(m['models'][0]['layers'])}")
    ours = statistics.median(walls)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    print(f"OURS median {ours:.1f} s end to end (target <= 60 s), peak RSS {rss:.2f} GB (target <= 3 GB)")
    if args.baseline_n > 0:
        secs, n, n_all = run_baseline(args.baseline_n, args.window)
        est = secs / n * n_all
        print(f"BASELINE (one transformers forward per occurrence, unbatched): {secs:.1f} s for {n} occurrences "
              f"-> {est:.0f} s for all {n_all} (forward passes only, extrapolated); load={os.getloadavg()[0]:.1f}")
        print(f"ratio baseline / ours: {est / ours:.2f}x")


if __name__ == "__main__":
    main()
