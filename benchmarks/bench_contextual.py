"""Benchmark: every occurrence of "first" in enwiki-sample through SmolLM2, all 31 hidden states.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_contextual.py

Three figures, from one run:
* end to end: ``embedlens context --corpus enwiki-sample --focus first --layer all --method pca`` in a
  subprocess (warm cache; wall time and the child's own peak RSS), median of ``--repeats``;
* in process, ours: :func:`embedlens.contextual.occurrences` on the same lens (model already loaded);
* in process, baseline: the tutorial way done properly on EXACTLY the same windows (the texts the model
  reads, found by :func:`~embedlens.contextual.occurrences.find_occurrences`): batched (``--batch`` windows
  padded per forward pass), ``output_hidden_states=True``, the base model without the LM head, every
  occurrence, mean of the word's tokens at every layer. Run to the end, nothing extrapolated; its states
  are checked against ours (max relative difference printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, print_machine, run_once, runs_note  # noqa: E402

WORD, CORPUS = "first", "enwiki-sample"


def baseline(lens, found, batch: int) -> tuple[float, np.ndarray]:
    """Batched forward passes of the base model over the same windows; returns seconds and (n, L+1, d) states."""
    import torch

    from embedlens.models.running import network

    base = network(lens).base_model
    tok = lens.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token or tok.convert_ids_to_tokens(0)
    tok.padding_side = "right"
    out = []
    started = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(found), batch):
            chunk = found[i: i + batch]
            enc = tok([f.model_text for f in chunk], return_tensors="pt", padding=True, return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")
            hs = torch.stack(base(**enc, output_hidden_states=True).hidden_states, dim=1)  # (b, L+1, t, d)
            for j, f in enumerate(chunk):
                ws, we = f.word_span
                cover = ((offsets[j, :, 0] < we) & (offsets[j, :, 1] > ws) & (enc["attention_mask"][j] > 0))
                out.append(hs[j][:, cover].mean(1).float().numpy())
    return time.perf_counter() - started, np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="Windows per forward pass in the baseline.")
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("EMBEDLENS_CACHE", "/tmp/elcache")
    print_machine()

    import embedlens
    from embedlens.contextual import occurrences
    from embedlens.contextual.occurrences import find_occurrences
    from embedlens.corpus import open_corpus

    cmd = [EMBEDLENS, "context", "--corpus", CORPUS, "--focus", WORD, "--layer", "all", "--method", "pca",
           "--window", str(args.window), "--max-occurrences", "100000"]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_once(cmd + ["--out", str(Path(tmp) / f"run{r}")]) for r in range(args.repeats)]
        m = json.loads((Path(tmp) / "run0" / "manifest.json").read_text())
    walls = [w for w, _, _ in runs]
    print(f"end to end (CLI, warm cache): {runs_note(len(walls))} {statistics.median(walls):.1f} s "
          f"({[round(w, 1) for w in walls]}), "
          f"peak RSS {max(r for _, r, _ in runs):.0f} MB; stages {json.dumps(m.get('timings', {}))}")

    lens = embedlens.load("smollm2-135m")
    corpus = open_corpus(CORPUS)
    occurrences(lens, corpus, WORD, layers="all", max_occurrences=100_000, window=args.window, progress=False)  # warm
    ours_times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        occ = occurrences(lens, corpus, WORD, layers="all", max_occurrences=100_000, window=args.window, progress=False)
        ours_times.append(time.perf_counter() - t)
    found, total = find_occurrences(corpus, WORD, max_occurrences=100_000, window=args.window, causal=True)
    base_times, states = [], None
    for _ in range(args.repeats):
        secs, states = baseline(lens, found, args.batch)
        base_times.append(secs)
    ours, base = statistics.median(ours_times), statistics.median(base_times)
    print(f"occurrences: {len(occ)} (of {total} found), layers {len(occ.layers)}, d {occ.vectors.shape[2]}")
    print(f"in process, ours (find + tokenize + forward + states): {runs_note(args.repeats)} {ours:.2f} s")
    print(f"in process, baseline (same {len(found)} windows, batched {args.batch}, output_hidden_states, no head, "
          f"forward only): {runs_note(args.repeats)} {base:.2f} s")
    print(f"ratio baseline / ours: {base / ours:.2f}x")
    if states is not None and states.shape == occ.vectors.shape:
        rel = np.abs(states - occ.vectors).max() / np.abs(occ.vectors).max()
        print(f"same states: max |baseline - ours| / max |ours| = {rel:.2e}")


if __name__ == "__main__":
    main()
