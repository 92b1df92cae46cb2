"""Tuned lens on SmolLM2-135M on this CPU: training time, held-out KL per layer (tuned vs logit lens), the
time of ``lens eval`` of both, and the ``tuned-lens`` package's own training step side by side.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_tuned_lens.py

Settings (environment): BENCH_CORPUS (default lee), BENCH_TOKENS (training tokens, 16384), BENCH_HELDOUT
(1024), BENCH_STEPS (KL steps after least squares, 0), BENCH_INIT (least-squares or zero), BENCH_LR (1e-4),
BENCH_EVAL_TOKENS (``lens eval`` tokens, 20480), BENCH_PRODUCT (auto), BENCH_BASELINE_TOKENS (a float32 run
on that many tokens in the same process),
BENCH_PEER=1 to run the peer: the ``tuned-lens`` package (PyPI 0.2.0) installed in its own folder on
PYTHONPATH (``pip install --target DIR --no-deps tuned-lens simple-parsing``). Its script
``tuned_lens.scripts.train_loop`` cannot be imported with current torch (it needs ``torchdata.dataloader2``,
removed from torchdata), so its training step is run as that script runs it: the package's ``TunedLens``
and ``Unembed``, per-layer KL in bfloat16 autocast with a backward per layer, gradient clipping at 1, SGD
with Nesterov momentum 0.9, lr 1.0 x (1 - 0.9), weight decay 1e-3, linear decay. BENCH_PEER_STEPS
(default 2) steps of BENCH_PEER_STEP_TOKENS (1024) tokens are timed and the rest extrapolated; its lens is
saved in the package's format, read back with ``read_tuned_lens`` and measured on the same held-out tokens.

Measured alone on this 2-core machine (AMD EPYC, AVX512-BF16, load average 1.2-2.1), lee corpus, float32:
  * training, 16,384 tokens, least squares, no KL step: 89-93 s (least squares ~35 s, measuring both lenses on
    the 1,024 held-out tokens ~51 s). Held-out KL lower than the logit lens at every layer below the last;
    mean over layers 0..14: logit 33.4 bits, tuned 4.09 bits (8.2x lower).
  * ``lens eval`` of both lenses on 2,048 tokens: 105 s before the fused evaluation. Decoding 30 layers x 2
    lenses + the final distribution through a 49,152 x 576 head is 3.45 GFLOP per token (69 TFLOP for 20k
    tokens); the head product runs at ~90-100 GFLOP/s in float32 and ~300 in bfloat16 here, so 20k tokens need
    >= ~230 s (bfloat16) + the forward pass whatever the code does. Both lenses on 1,024 tokens, one after the
    other, load average ~3: the fused evaluation 19.2 s in bfloat16 (37 CPU-ms/token), 71 s in float32 (83),
    the previous one 60.9 s (90): 20,480 tokens -> ~380 s in bfloat16. Chunking the head by 4,096 rows costs
    0.71 CPU-ms per row and layer in bfloat16 against 0.96 for whole-vocabulary blocks (1.06 vs 1.36 float32).
  * zero init (``BENCH_INIT=zero BENCH_STEPS=2 BENCH_LR=3e-3``): ~70 CPU-seconds per KL step of 1,024 tokens;
    after 2 steps 1.5x below the logit lens over the first half and above it at layers 24-29 (README).
  * the peer given the same 16,384 tokens (16 steps of 1,024, all run): 475 s, held-out KL 82.4 bits at layer
    0, 11-14 in layers 1-14, 1.9 at layer 29; ours 5.2, 3.5-4.9, 0.25.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _util import median_time, print_machine  # noqa: E402

MODEL = "smollm2-135m"


def env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def table(logit: list[float], tuned: list[float], peer: list[float] | None = None) -> None:
    head = "layer  logit KL  tuned KL" + ("  peer KL" if peer else "")
    print(head)
    for layer, (a, b) in enumerate(zip(logit, tuned, strict=True)):
        print(f"{layer:5d}  {a:8.3f}  {b:8.3f}" + (f"  {peer[layer]:7.3f}" if peer else ""))
    n = len(logit) - 1
    half = slice(0, n // 2)
    print(f"mean over layers 0..{n // 2 - 1}: logit {np.mean(logit[half]):.3f} bits, tuned {np.mean(tuned[half]):.3f} "
          f"bits: {np.mean(logit[half]) / max(np.mean(tuned[half]), 1e-12):.1f}x lower")
    below = all(t < lg for t, lg in zip(tuned[:-1], logit[:-1], strict=True))
    print(f"tuned below logit at every layer below the last: {below}")


def peer_run(lens, corpus, tokens: int, heldout: int, out: Path) -> dict:
    """The tuned-lens package's training step on our token stream (see the module docstring)."""
    import torch as th
    from tuned_lens import TunedLens as PeerLens

    from embedlens.logitlens import runtime as rt
    from embedlens.tunedlens import evaluate_decoders
    from embedlens.tunedlens.data import as_corpus, corpus_tokens, sequences

    steps_run = env("BENCH_PEER_STEPS", 2)
    step_tokens = env("BENCH_PEER_STEP_TOKENS", 1024)
    steps_total = tokens // step_tokens
    net = rt.weights(lens, *rt.choose(lens, None, None))
    seqs = sequences(corpus_tokens(lens, as_corpus(corpus), tokens), 256)
    per = step_tokens // 256
    peer = PeerLens.from_model(net)
    beta = 0.9
    opt = th.optim.SGD([p for p in peer.parameters() if p.requires_grad], lr=1.0 * (1 - beta), momentum=beta,
                       nesterov=True, weight_decay=1e-3)
    sched = th.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps_total))
    t0 = time.perf_counter()
    for step in range(steps_run):
        batch = th.from_numpy(seqs[step * per: (step + 1) * per])
        with th.no_grad():
            output = net(input_ids=batch, output_hidden_states=True)
        labels = output.logits.float().log_softmax(dim=-1)
        for i, h in enumerate(output.hidden_states[:-1]):
            with th.autocast("cpu", dtype=th.bfloat16):
                logits = peer(h, idx=i)
                loss = th.sum(labels.exp() * (labels - logits.log_softmax(-1)), dim=-1).mean()
            loss.backward()
        th.nn.utils.clip_grad_norm_(peer.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        sched.step()
        print(f"  peer step {step + 1}/{steps_run}: {time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.1f}",
              flush=True)
    per_step = (time.perf_counter() - t0) / steps_run
    peer.save(out)
    ev = evaluate_decoders(lens, corpus, decoders=[str(out)], tokens=heldout, skip=tokens)
    return {"per_step_s": per_step, "steps_run": steps_run, "steps_total": steps_total,
            "extrapolated_s": per_step * steps_total, "kl_bits": ev.kl_bits[0].tolist()}


def floor(n_tokens: int, n_layers: int, d: int, vocab: int, n_lenses: int = 2) -> None:
    """What the head products of ``lens eval`` cost at least: ``2 d V`` FLOP per token and decode (every
    layer below the last per lens, plus the final distribution once), at the rate torch reaches here for a
    (256 x d) @ (d x V) product in float32 and in bfloat16."""
    import torch

    decodes = n_lenses * n_layers + 1
    flop = 2 * d * vocab * decodes * n_tokens
    w = torch.randn(vocab, d)
    for dtype in (torch.float32, torch.bfloat16):
        x, wt = torch.randn(256, d).to(dtype), w.to(dtype)
        best = min(median_time(lambda x=x, wt=wt: torch.mm(x, wt.T), repeats=3) for _ in range(2))
        rate = 2 * 256 * d * vocab / best
        print(f"floor, {str(dtype)[6:]} head product: {rate / 1e9:.0f} GFLOP/s; {decodes} decodes x 2 x {d} x {vocab:,} "
              f"x {n_tokens:,} tokens = {flop / 1e12:.1f} TFLOP -> {flop / rate:.0f} s; load {os.getloadavg()}",
              flush=True)


def timed_eval(lens, corpus, decoders, tokens: int, product: str) -> object:
    from embedlens.tunedlens import evaluate_decoders

    t0, c0 = time.perf_counter(), time.process_time()
    ev = evaluate_decoders(lens, corpus, decoders=decoders, tokens=tokens, product=product)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"lens eval, logit + tuned, {ev.n_tokens:,} tokens, product {ev.settings['product']}: {wall:.1f} s "
          f"({wall / ev.n_tokens * 1e3:.1f} ms/token -> {wall / ev.n_tokens * 20480:.0f} s for 20,480; CPU {cpu:.0f} s) "
          f"{ev.timings}; load {os.getloadavg()}", flush=True)
    return ev


def main() -> None:
    from embedlens import load
    from embedlens.tunedlens import train_tuned_lens

    print_machine()
    corpus = os.environ.get("BENCH_CORPUS", "lee")
    tokens, heldout, steps = env("BENCH_TOKENS", 16384), env("BENCH_HELDOUT", 1024), env("BENCH_STEPS", 0)
    eval_tokens = env("BENCH_EVAL_TOKENS", 20480)
    lens = load(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"train: tokens={tokens} heldout={heldout} steps={steps} init={os.environ.get('BENCH_INIT', 'least-squares')} "
              f"corpus={corpus}; load {os.getloadavg()}",
              flush=True)
        t0 = time.perf_counter()
        init = os.environ.get("BENCH_INIT", "least-squares")
        lr = float(os.environ.get("BENCH_LR", 1e-4))
        tuned = train_tuned_lens(lens, corpus, tokens=tokens, heldout_tokens=heldout, steps=steps, init=init, lr=lr,
                                 out=Path(tmp) / "t", cache=False)
        train_s = time.perf_counter() - t0
        m = tuned.manifest
        print(f"train: {train_s:.1f} s (target <= 600 s) {m['timings']}; load {os.getloadavg()}", flush=True)
        peer = None
        if os.environ.get("BENCH_PEER"):
            peer = peer_run(lens, corpus, tokens, heldout, Path(tmp) / "peer")
            print(f"peer: {peer['per_step_s']:.1f} s per step x {peer['steps_total']} steps = "
                  f"{peer['extrapolated_s']:.0f} s (extrapolated from {peer['steps_run']} steps) vs ours {train_s:.0f} s;"
                  f" load {os.getloadavg()}", flush=True)
        table(m["heldout_kl_bits_logit_lens"], m["heldout_kl_bits"], peer["kl_bits"] if peer else None)
        if eval_tokens:
            meta = lens.meta
            floor(eval_tokens, meta["n_layers"], meta["d_model"], meta["n_vocab"])
            ev = timed_eval(lens, corpus, ["logit", tuned], eval_tokens, os.environ.get("BENCH_PRODUCT", "auto"))
            if os.environ.get("BENCH_BASELINE_TOKENS"):     # the float32 product on fewer tokens, same run
                timed_eval(lens, corpus, ["logit", tuned], env("BENCH_BASELINE_TOKENS", 1024), "float32")
            table(ev.kl_bits[0].tolist(), ev.kl_bits[1].tolist())


if __name__ == "__main__":
    main()
