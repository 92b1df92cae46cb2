"""Benchmark: corpus work on the local engine vs the Ray engine (1 and 2 workers), SmolLM2's tokenizer and model.

    flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_corpus_engines.py --mb 64 --repeats 3

Two workloads, each run in a fresh child process (median of ``--repeats``; peak RSS = the largest sum of
the resident memory of the child and every process under it, Ray's raylet and workers included,
sampled every 0.1 s):

* counting: the packaged Wikipedia sample (enwiki-sample, ~3 MB, ~19,800 paragraphs = documents) repeated
  with seeded shuffles into ``--mb`` MB of text files under /tmp, counted with SmolLM2's tokenizer on the
  local engine (baseline; the tokenizer's own threads use every core), then on a local Ray with 1 and with 2
  CPU workers (one tokenizer thread per worker). Figures: counting seconds
  (Ray start excluded; also shown with it), MB/s, tokens/s, and a check that every engine's counts are equal;
* contextual: every occurrence of "first" in enwiki-sample, one layer (the last), local engine (baseline)
  vs Ray (start-up excluded and included).

The issue's target is a 1 GB corpus (``--mb 1024``); SmolLM2's tokenizer reads ~3 MB/s per core on this box,
so 1 GB is ~6 minutes per run and per engine: the default is 64 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _util import print_machine  # noqa: E402

MODEL = "smollm2-135m"
PART_MB = 16


def build_corpus(mb: int, seed: int = 0) -> Path:
    """enwiki-sample's documents, shuffled (seed, seed+1, ...) round after round, into ``mb`` MB of .txt parts."""
    import numpy as np

    from embedlens.cache import atomic_dir
    from embedlens.corpus import open_corpus

    folder = Path(f"/tmp/embedlens-bench-corpus/{mb}mb-seed{seed}")
    if (folder / "DONE").exists():
        return folder
    docs = [t for _, t in open_corpus("enwiki-sample").iter_documents()]
    target, part, written, rnd = mb << 20, 0, 0, 0
    t0 = time.perf_counter()
    with atomic_dir(folder) as tmp:
        fh = open(tmp / f"part-{part:03d}.txt", "w", encoding="utf-8")
        while written < target:
            order = np.random.default_rng(seed + rnd).permutation(len(docs))
            data = "\n".join(docs[i] for i in order.tolist()) + "\n"
            data = data[: target - written] if written + len(data) > target else data
            fh.write(data)
            written += len(data.encode("utf-8"))
            rnd += 1
            if fh.tell() >= PART_MB << 20:
                fh.close()
                part += 1
                fh = open(tmp / f"part-{part:03d}.txt", "w", encoding="utf-8")
        fh.close()
        (tmp / "DONE").write_text(f"{written} bytes, {rnd} shuffled rounds\n")
    print(f"built {folder}: {written / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f} s", flush=True)
    return folder


# -- children ---------------------------------------------------------------------------------------------
def child_count(engine: str, workers: int | None, corpus: str) -> dict:
    import hashlib

    import embedlens
    from embedlens.corpus import open_corpus
    from embedlens.corpus.frequencies import count_tokens
    from embedlens.engines import open_engine

    lens = embedlens.load(MODEL)
    opened = open_corpus(corpus)
    opened.manifest = lambda: {}  # hashing the files is not what is measured
    t0 = time.perf_counter()
    with open_engine(engine, workers=workers) as eng:  # the Ray start, timed apart
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        freqs = count_tokens(lens, opened, engine=eng, progress=False)
        seconds = time.perf_counter() - t1
    return {"count_s": seconds, "start_s": started, "n_tokens": freqs.n_tokens, "n_bytes": freqs.n_bytes,
            "counts_sha": hashlib.sha256(freqs.counts.tobytes()).hexdigest()[:16]}


def child_context(engine: str, workers: int | None) -> dict:
    import hashlib

    import numpy as np

    import embedlens
    from embedlens.contextual import occurrences
    from embedlens.engines import open_engine

    lens = embedlens.load(MODEL)
    if engine == "local":
        lens.model  # noqa: B018 - loaded before timing, as the Ray actors load theirs inside the timing
    kw = {"layers": -1, "max_occurrences": 1_000_000, "progress": False}
    t0 = time.perf_counter()
    with open_engine(engine, workers=workers) as eng:
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        occ = occurrences(lens, "enwiki-sample", "first", engine=eng, **kw)
        seconds = time.perf_counter() - t1
    order = np.lexsort((occ.spans[:, 0], np.asarray(occ.docs)))
    return {"states_s": seconds, "start_s": started, "n": len(occ), "timings": occ.timings,
            "docs_sha": hashlib.sha256("|".join(occ.docs).encode()).hexdigest()[:16],
            "vectors": occ.vectors[order].reshape(len(occ), -1).round(6).tolist()}


# -- parent -----------------------------------------------------------------------------------------------
def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            status = Path(f"/proc/{d}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(d)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(d)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024 if "VmRSS" in fields else 0
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parents.items():
            if pp == p and c not in tree:
                tree.add(c)
                frontier.append(c)
    return sum(rss.get(p, 0) for p in tree)


def run_child(args: list[str]) -> tuple[dict, float, float]:
    """(child's JSON result, wall seconds, peak RSS of its process tree in MB)."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    t = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), wall, peak[0] / 2**20


def bench_count(corpus: Path, repeats: int) -> None:
    size = sum(p.stat().st_size for p in corpus.glob("*.txt"))
    print(f"\ncounting {size / 2**20:.0f} MiB ({corpus}) with {MODEL}'s tokenizer, median of {repeats}:", flush=True)
    rows = {}
    for name, engine, workers in (("local (baseline)", "local", None), ("ray, 1 worker", "ray", 1),
                                  ("ray, 2 workers", "ray", 2)):
        runs = []
        for _ in range(repeats):
            args = ["--child", "count", "--engine", engine, "--corpus", str(corpus)]
            runs.append(run_child(args + (["--workers", str(workers)] if workers else [])))
        count_s = statistics.median(r["count_s"] for r, _, _ in runs)
        start_s = statistics.median(r["start_s"] for r, _, _ in runs)
        peak = max(p for _, _, p in runs)
        res = runs[0][0]
        rows[name] = (count_s, res)
        print(f"  {name:17s} count {count_s:7.2f} s ({size / 2**20 / count_s:5.2f} MiB/s, "
              f"{res['n_tokens'] / count_s / 1e6:5.2f} M tokens/s); +start {start_s:4.1f} s; "
              f"peak RSS {peak:6.0f} MB; counts sha {res['counts_sha']}", flush=True)
    base = rows["local (baseline)"][0]
    one, two = rows["ray, 1 worker"][0], rows["ray, 2 workers"][0]
    same = len({r["counts_sha"] for _, r in rows.values()}) == 1
    print(f"  ray 2 workers vs 1: {one / two:.2f}x throughput (target >= 1.6x); ray 1 worker vs local: "
          f"{base / one:.2f}x; ray 2 workers vs local: {base / two:.2f}x; counts equal on every engine: {same}",
          flush=True)


def bench_context(repeats: int) -> None:
    print(f"\ncontext: every 'first' in enwiki-sample, last layer, {MODEL}, median of {repeats}:", flush=True)
    import numpy as np

    results = {}
    for name, engine, workers in (("local (baseline)", "local", None), ("ray, 2 CPUs", "ray", None)):
        runs = [run_child(["--child", "context", "--engine", engine] + (["--workers", str(workers)] if workers else []))
                for _ in range(repeats)]
        states_s = statistics.median(r["states_s"] for r, _, _ in runs)
        start_s = statistics.median(r["start_s"] for r, _, _ in runs)
        peak = max(p for _, _, p in runs)
        results[name] = (states_s, start_s, runs[0][0])
        print(f"  {name:17s} {runs[0][0]['n']} occurrences in {states_s:6.2f} s (+start {start_s:4.1f} s); "
              f"peak RSS {peak:6.0f} MB; stages {json.dumps({k: round(v, 2) for k, v in runs[0][0]['timings'].items()})}",
              flush=True)
    (ls, _, lr), (rs, rstart, rr) = results["local (baseline)"], results["ray, 2 CPUs"]
    a, b = np.asarray(lr["vectors"]), np.asarray(rr["vectors"])
    rel = float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)))  # per occurrence vector
    print(f"  ray vs local: {rs / ls:.2f}x the time without Ray's start (target <= 1.3x), {(rs + rstart) / ls:.2f}x "
          f"with it; same occurrences: {lr['docs_sha'] == rr['docs_sha']}; max relative difference of a state vector {rel:.1e}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=64, help="corpus size for counting (the issue's target: 1024)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--context-repeats", type=int, default=2, help="repeats of the contextual workload (~2 min each)")
    ap.add_argument("--skip-count", action="store_true")
    ap.add_argument("--skip-context", action="store_true")
    ap.add_argument("--child", choices=("count", "context"))
    ap.add_argument("--engine", default="local")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--corpus")
    a = ap.parse_args()
    if a.child == "count":
        print(json.dumps(child_count(a.engine, a.workers, a.corpus)))
        return
    if a.child == "context":
        print(json.dumps(child_context(a.engine, a.workers)))
        return
    print_machine()
    if not a.skip_count:
        bench_count(build_corpus(a.mb), a.repeats)
    if not a.skip_context:
        bench_context(a.context_repeats)


if __name__ == "__main__":
    main()
