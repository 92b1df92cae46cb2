"""``embedlens lens train`` and ``embedlens lens eval``: train a tuned lens for a model, measure lenses per layer."""

from __future__ import annotations

import sys

import click

from ..errors import EmbedlensError
from ..models.specs import DEFAULT_MODEL
from .common import emit_json, json_option
from .device_options import device_options
from .table import console


@click.group("lens")
def lens() -> None:
    """Per-layer decoders of the residual stream: train a tuned lens, measure how far each layer's readout
    is from the model's own prediction."""


@lens.command("train")
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True, help="Causal language model.")
@click.option("--corpus", default="lee", show_default=True,
              help="Training text: a file, folder, JSONL/Parquet, hf:NAME, or a packaged corpus (lee, enwiki-sample).")
@click.option("--tokens", type=int, default=16384, show_default=True, help="Training tokens (the corpus's first).")
@click.option("--heldout-tokens", type=int, default=1024, show_default=True,
              help="Tokens after the training tokens, never trained on, to measure the lens on.")
@click.option("--steps", type=int, default=0, show_default=True,
              help="KL optimiser steps (Adam) after the least-squares start, one batch each.")
@click.option("--init", type=click.Choice(["least-squares", "zero"]), default="least-squares", show_default=True,
              help="Start from the least-squares translators, or from W=0, b=0 (the logit lens).")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate of the KL steps.")
@click.option("--batch-tokens", type=int, default=1024, show_default=True, help="Tokens per forward pass and KL step.")
@click.option("--seq-len", type=int, default=256, show_default=True, help="Tokens per sequence.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the order of the KL batches.")
@click.option("--product", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True,
              help="Precision of the head products of the KL steps and the held-out KL (bfloat16: see lens eval).")
@device_options
@click.option("--out", default="embedlens-tuned-lens", show_default=True, type=click.Path(file_okay=False),
              help="Folder for tuned_lens.safetensors + manifest.json (and the checkpoint a rerun resumes from).")
@click.option("--tuned-lens-format", "package_out", default=None, type=click.Path(file_okay=False),
              help="Also write the lens here in the tuned-lens package's format (config.json + params.pt).")
@click.option("--no-cache", is_flag=True, help="Do not keep the lens in the model's cache entry (--lens tuned).")
@json_option
def train(model: str, corpus: str, tokens: int, heldout_tokens: int, steps: int, init: str, lr: float,
          batch_tokens: int, seq_len: int, seed: int, product: str, device: str, dtype: str, out: str, package_out: str | None,
          no_cache: bool, as_json: bool) -> None:
    """Train a tuned lens: one affine translator per layer so that decoding the translated residual stream
    matches the model's final next-token distribution. Prints the held-out KL per layer, tuned vs logit lens."""
    from ..tunedlens import (  # lazy: imports numpy/torch; --help stays light
        train_tuned_lens,
        write_tuned_lens_package,
    )

    tuned = train_tuned_lens(model, corpus, tokens=tokens, heldout_tokens=heldout_tokens, seq_len=seq_len,
                             batch_tokens=batch_tokens, init=init, steps=steps, lr=lr, seed=seed, device=device,
                             dtype=dtype, out=out, cache=not no_cache, progress=sys.stderr.isatty(), product=product)
    if package_out:
        write_tuned_lens_package(tuned, package_out)
    m = tuned.manifest
    if as_json:
        emit_json(m)
        return
    from rich.table import Table

    t = Table(title=f"{m['model']['name']}: held-out KL to the final distribution, {m['heldout_tokens']:,} tokens "
                    f"(bits)", title_justify="left")
    for col in ("layer", "logit lens", "tuned lens"):
        t.add_column(col, justify="right")
    for layer, (a, b) in enumerate(zip(m["heldout_kl_bits_logit_lens"], m["heldout_kl_bits"], strict=True)):
        t.add_row(str(layer), f"{a:.3f}", f"{b:.3f}")
    console().print(t)
    from pathlib import Path

    click.echo(f"Written to {Path(out).resolve()} in {m['timings']['total_s']:.0f} s")


@lens.command("eval")
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True, help="Causal language model.")
@click.option("--lens", "decoders", default="logit,tuned", show_default=True, metavar="logit,tuned,PATH",
              help="Decoders to compare, comma-separated: logit, tuned (the model's cached tuned lens), lens folders.")
@click.option("--corpus", default="lee", show_default=True, help="Held-out text (as for lens train).")
@click.option("--tokens", type=int, default=2048, show_default=True, help="Tokens to average over.")
@click.option("--skip", type=int, default=None,
              help="Corpus tokens to skip first (default: those a tuned lens under test was trained on).")
@click.option("--seq-len", type=int, default=256, show_default=True, help="Tokens per sequence.")
@click.option("--batch-tokens", type=int, default=2048, show_default=True, help="Tokens per forward pass.")
@click.option("--product", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True,
              help="Precision of the head product: bfloat16 is ~3x faster on CPUs with bfloat16 units (auto uses it "
                   "there) and moves the mean KL per layer by under 0.02 bits + 1%.")
@click.option("--site", type=click.Choice(["resid", "mid"]), default="resid", show_default=True,
              help="Read between blocks (resid) or inside each block after attention, before the MLP (mid; logit lens only).")
@device_options
@click.option("--out", default="embedlens-lens-eval", show_default=True, type=click.Path(file_okay=False),
              help="Folder for lens_eval.csv/.json/.png/.html and manifest.json.")
@json_option
def evaluate(model: str, decoders: str, corpus: str, tokens: int, skip: int | None, seq_len: int, batch_tokens: int,
             product: str, site: str, device: str, dtype: str, out: str, as_json: bool) -> None:
    """Per layer and lens: KL to the model's final distribution (bits), top-1 agreement with its prediction,
    and cross-entropy of the actual next token, on text the lenses were not trained on."""
    from ..tunedlens import evaluate_decoders  # lazy: imports numpy/torch; --help stays light
    from ..tunedlens.output import write_decoder_eval  # lazy: imports numpy/torch; --help stays light

    names = [s.strip() for s in decoders.split(",") if s.strip()]
    if not names:
        raise EmbedlensError("--lens is empty: give logit, tuned or lens folders, comma-separated")
    ev = evaluate_decoders(model, corpus, decoders=names, tokens=tokens, skip=skip, seq_len=seq_len,
                           batch_tokens=batch_tokens, device=device, dtype=dtype, progress=sys.stderr.isatty(), site=site,
                           product=product)
    manifest = write_decoder_eval(ev, out)
    if as_json:
        emit_json(ev.to_dict())
        return
    from rich.table import Table

    t = Table(title=f"{ev.model.get('name')}: {ev.n_tokens:,} held-out tokens (skipped {ev.skip:,})",
              title_justify="left")
    t.add_column("layer", justify="right")
    for name in ev.decoders:
        for col in ("KL bits", "top-1", "CE bits"):
            t.add_column(f"{name}\n{col}", justify="right")
    for layer in range(ev.n_layers + 1):
        cells = []
        for i in range(len(ev.decoders)):
            cells += [f"{ev.kl_bits[i, layer]:.3f}", f"{ev.top1_agreement[i, layer]:.3f}", f"{ev.ce_bits[i, layer]:.3f}"]
        t.add_row(str(layer), *cells)
    console().print(t)
    from pathlib import Path

    click.echo(f"Written to {Path(out).resolve()}: {', '.join(manifest['files'])}")
