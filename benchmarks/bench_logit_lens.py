"""Logit lens on SmolLM2-135M: one 64-token prompt (all 31 layers, top-5) and 100 prompts from a file.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_logit_lens.py [--quick] [--threads N]

Figures (median of several warm runs, model already loaded):
  * ``logit_lens(lens, text, max_tokens=64)``: one forward pass with output_hidden_states, then all 31 x 64
    rows decoded through the final norm + the 49,152 x 576 head in blocks (float32, and the runtime's
    ``auto`` dtype: bfloat16 on CPUs with fast bfloat16 units);
  * baseline, the obvious transformers way: the same forward pass, then per layer in a Python loop
    ``lm_head(norm(h))`` + softmax + top-5 + the next token's rank;
  * ``rank_curve`` over 100 prompts (sentences of the gensim Lee corpus, and the same cut to 8 words), in-process
    warm, and ``embedlens logit-lens --text-file`` end to end in a fresh process (model load included);
  * ``embedlens logit-lens TEXT --max-tokens 64`` end to end in a fresh process (HTML, PNG, JSON written).
Targets (issue 18): <= 2 s for the 64-token prompt warm, <= 30 s for 100 prompts.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, median_time, run_timed, runs_note  # noqa: E402


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def corpus_lines(n: int) -> list[str]:
    from gensim.test.utils import datapath

    text = Path(datapath("lee_background.cor")).read_text(encoding="utf-8", errors="replace")
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) >= 8]
    return [s[:300] for s in sentences[:n]]


def baseline(model, ids, target, k: int = 5):
    """transformers output_hidden_states, then final norm + head per layer in a Python loop."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=ids, output_hidden_states=True)
        hs = out.hidden_states
        n = len(hs) - 1
        result = []
        for layer, h in enumerate(hs):
            logits = model.lm_head(h[0] if layer == n else model.model.norm(h[0]))
            probs = torch.softmax(logits.float(), dim=-1)
            top = torch.topk(probs, k, dim=-1)
            rank = (logits[:-1] > logits[:-1].gather(1, target[:, None])).sum(1) + 1
            result.append((top.indices, top.values, rank))
    return result


def main(quick: bool) -> None:
    import numpy as np
    import torch

    import embedlens
    from embedlens.logitlens import logit_lens, rank_curve

    repeats = 3 if quick else 5
    if "--threads" in sys.argv:
        torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    print(f"torch threads {torch.get_num_threads()}, {load()}")
    lens = embedlens.load("smollm2-135m")
    lines = corpus_lines(100)
    prompt = " ".join(lines[:6])
    r = logit_lens(lens, prompt, max_tokens=64)  # warm: loads the model once
    assert r.top_ids.shape == (31, 64, 5), r.top_ids.shape
    ours = median_time(lambda: logit_lens(lens, prompt, max_tokens=64), repeats)
    print(f"logit_lens, 64 tokens x 31 layers, top-5, float32: {runs_note(repeats)} {ours:.3f} s "
          f"(last run: forward {r.timings['forward_s']:.3f} s, decode {r.timings['decode_s']:.3f} s)")
    ra = logit_lens(lens, prompt, max_tokens=64, dtype="auto")
    auto = median_time(lambda: logit_lens(lens, prompt, max_tokens=64, dtype="auto"), repeats)
    agree = float((ra.top_ids[:, :, 0] == r.top_ids[:, :, 0]).mean())
    print(f"logit_lens, dtype auto ({ra.settings['dtype']}): {runs_note(repeats)} {auto:.3f} s, top-1 agreement with float32 {agree:.3f}")
    ids = torch.as_tensor(r.token_ids)[None]
    target = torch.as_tensor(r.token_ids[1:])
    base = median_time(lambda: baseline(lens.model, ids, target), repeats)
    check = baseline(lens.model, ids, target)
    same = np.mean([(check[li][0].numpy() == r.top_ids[li]).all(axis=1).mean() for li in range(31)])
    print(f"baseline (transformers output_hidden_states + norm + head per layer, Python loop): {runs_note(repeats)} "
          f"{base:.3f} s; "
          f"ratio {base / ours:.2f}x; identical top-5 rows {same:.3f}")

    short = [" ".join(line.split()[:8]) for line in lines]  # ~10 tokens each
    for name, texts in (("100 short prompts (8 words)", short), ("100 sentences (<= 300 chars)", lines)):
        for dtype in ("auto",) if quick else ("auto", None):
            t = time.perf_counter()
            curve = rank_curve(lens, texts, dtype=dtype)
            wall = time.perf_counter() - t
            print(f"rank_curve, {name}, {curve.n_positions} positions x 31 layers, dtype "
                  f"{curve.settings['dtype']}: {wall:.2f} s, 1 run (mean rank layer 0 {curve.mean_rank[0]:.0f} -> "
                  f"last {curve.mean_rank[-1]:.1f})")

    with tempfile.TemporaryDirectory() as tmp:
        for name, texts in (("short", short), ("sentences", lines)):
            f = Path(tmp) / f"{name}.txt"
            f.write_text("\n".join(texts) + "\n", encoding="utf-8")
            wall, rss = run_timed([EMBEDLENS, "logit-lens", "--text-file", str(f), "--out", str(Path(tmp) / name)],
                                  repeats=1)
            print(f"embedlens logit-lens --text-file ({name}, 100 prompts), fresh process: {wall:.2f} s (1 run), "
                  f"peak RSS {rss:.0f} MB")
        cli_runs = 1 if quick else 2
        wall, rss = run_timed([EMBEDLENS, "logit-lens", prompt, "--max-tokens", "64", "--out", str(Path(tmp) / "o")],
                              repeats=cli_runs)
        print(f"embedlens logit-lens TEXT --max-tokens 64 (HTML + PNG + JSON), fresh process: "
              f"{runs_note(cli_runs)} {wall:.2f} s, "
              f"peak RSS {rss:.0f} MB")
    print(load())


if __name__ == "__main__":
    t0 = time.perf_counter()
    main("--quick" in sys.argv)
    print(f"benchmark took {time.perf_counter() - t0:.0f} s")
