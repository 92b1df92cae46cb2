"""Benchmark: a t-SNE perplexity sweep against one map, and part-of-speech tagging of a whole vocabulary.

    EMBEDLENS_CACHE=/tmp/elcache .venv/bin/python benchmarks/bench_perplexity_sweep.py

Two figures:
* the sweep: up to 1,000 occurrences of "first" in enwiki-sample (it holds 897) through SmolLM2 (last layer, the states ``embedlens
  context --corpus enwiki-sample --focus first`` maps, computed once), then, alternating, ``--repeats`` times
  each: one map at the largest perplexity (:func:`embedlens.reduce.sweep.perplexity_sweep` with that one value:
  its k-NN graph, the t-SNE, the quality figures) and the sweep of all of ``--perplexities`` (one graph, one map
  per value, each with its quality figures). Medians and their ratio (target: the sweep of three <= 2x one map).
* part-of-speech tagging of SmolLM2's 49,152 tokens (:func:`embedlens.parts_of_speech.space_parts_of_speech`),
  each in a fresh process: cold (the cache file removed: spaCy imported and loaded, every word tagged) and warm
  (the cached classes read back).

The load average is printed with each figure: on a shared machine, read figures taken under load with care.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import print_machine  # noqa: E402

WORD, CORPUS, MODEL = "first", "enwiki-sample", "smollm2-135m"
POS_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import embedlens
from embedlens.parts_of_speech import pos_cache_path, space_parts_of_speech
view = embedlens.load(sys.argv[1]).input
opened = time.perf_counter() - started
if sys.argv[2] == "cold":
    pos_cache_path(view).unlink(missing_ok=True)
t = time.perf_counter()
classes, info = space_parts_of_speech(view)
print(json.dumps({"seconds": time.perf_counter() - t, "open": opened, "n": int(classes.size),
                  "tagged_now": info["tagged_now"], "tagger": info["tagger"], "spacy": info["spacy"]}))
"""


def load() -> str:
    return "load " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def occurrence_states(max_occurrences: int, word: str, keep: str | None) -> np.ndarray:
    """The last-layer states of the word's occurrences; read from ``keep`` (.npy) when it exists, else computed
    (and saved there when given: the forward passes take minutes on a loaded machine)."""
    if keep and os.path.exists(keep):
        X = np.load(keep, allow_pickle=False)
        print(f"states: {X.shape[0]:,} x {X.shape[1]} read from {keep}", flush=True)
        return X
    import embedlens
    from embedlens.contextual.occurrences import occurrences

    lens = embedlens.load(MODEL)
    t = time.perf_counter()
    occ = occurrences(lens, CORPUS, word, layers=-1, max_occurrences=max_occurrences, seed=0, progress=False)
    X = occ.stacked()
    print(f"states: {X.shape[0]:,} occurrences of '{word}' in {CORPUS} x {X.shape[1]} ({MODEL}, last layer) "
          f"in {time.perf_counter() - t:.1f} s", flush=True)
    if keep:
        np.save(keep, X, allow_pickle=False)
    return X


def sweep_figures(perplexities: list[float], repeats: int, n_jobs: int, X: np.ndarray) -> None:
    from embedlens.reduce.options import ReduceOptions
    from embedlens.reduce.sweep import perplexity_sweep

    tsne = ReduceOptions("tsne", seed=0, n_jobs=n_jobs)
    perplexity_sweep(X[:64], [5], tsne)  # imports (openTSNE, numba...) before any timing
    top = max(perplexities)
    one, many = [], []
    for r in range(repeats):  # alternating, so both see the same load
        t = time.perf_counter()
        perplexity_sweep(X, [top], tsne)
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        sweep = perplexity_sweep(X, perplexities, tsne)
        many.append(time.perf_counter() - t)
        print(f"  run {r + 1}: one map {one[-1]:.2f} s, sweep {many[-1]:.2f} s ({load()})", flush=True)
    for m in sweep.maps:
        print(f"  perplexity {m.perplexity:g}: {m.quality_text()}, fit {m.timings['fit']:.2f} s")
    a, b = statistics.median(one), statistics.median(many)
    print(f"one map at perplexity {top:g} (graph + t-SNE + quality): median {a:.2f} s over {repeats} runs")
    print(f"sweep {', '.join(f'{p:g}' for p in perplexities)} (one graph, {len(perplexities)} maps + quality): "
          f"median {b:.2f} s; ratio {b / a:.2f}x (target <= 2x; n_jobs={n_jobs}; {load()})", flush=True)


def pos_figures(repeats: int) -> None:
    import json

    for mode in ["cold", *["warm"] * repeats]:
        out = subprocess.run([sys.executable, "-c", POS_SCRIPT, MODEL, mode], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"part of speech, {mode}: {r['n']:,} tokens ({r['tagged_now']:,} tagged now) in {r['seconds']:.2f} s "
              f"[{r['tagger']}, spaCy {r['spacy']}; model opened in {r['open']:.1f} s] ({load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--perplexities", default="5,30,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-occurrences", type=int, default=1000)
    parser.add_argument("--word", default=WORD, help="the word whose occurrences are mapped (first: 897 in enwiki-sample)")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="t-SNE threads (default 1: on a loaded machine openTSNE's threads wait on each other)")
    parser.add_argument("--states", default=None, metavar="FILE.npy",
                        help="keep the occurrence states in this file (read back when it exists)")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-pos", action="store_true")
    args = parser.parse_args()
    print_machine()
    if not args.skip_sweep:
        X = occurrence_states(args.max_occurrences, args.word, args.states)
        sweep_figures([float(p) for p in args.perplexities.split(",")], args.repeats, args.n_jobs, X)
    if not args.skip_pos:
        pos_figures(max(1, args.repeats - 1))


if __name__ == "__main__":
    main()
