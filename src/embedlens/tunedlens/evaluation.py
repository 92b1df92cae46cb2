"""How far each layer's readout is from the model's own prediction, per decoder (logit lens, tuned lens).

For every layer ``l`` (0 = the input embeddings .. ``n_layers`` = the last block's output) and every token of
held-out text: the KL divergence from the model's final next-token distribution ``p`` to the decoder's
distribution ``q_l`` (bits), whether their top-1 tokens agree, and the cross-entropy of the token that
actually comes next (bits; every position but the last of a sequence). Layer ``n_layers`` decodes to ``p``
itself, so its KL is 0 for every decoder.

Each batch of sequences runs through the model once for all layers; the decoding and the three metrics are
fused per block of logits in :mod:`.metrics`, whose head product (2 x d_model x vocab FLOP per token, layer
and lens) is the whole cost: ~3.5 GFLOP per token for SmolLM2's 30 layers x 2 lenses + the final distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..lens import as_lens
from ..logitlens import runtime
from ..logitlens.compute import _pad, check_causal, check_site, residual_states
from ..logitlens.translators import LogitLens, TunedLens
from ..logitlens.tuned_files import resolve_decoder
from ..models.forward import runner_for
from ..progress import bar
from ..render.decoder_eval import eval_figure
from ..timing import Timings
from .data import as_corpus, check_count, corpus_hash, corpus_tokens, sequences
from .metrics import choose_product, layer_metrics

LN2 = math.log(2.0)
LOGIT_BUDGET = 64 << 20  # bytes of float32 logits decoded at once
METRICS = ("kl_bits", "top1_agreement", "ce_bits")


def decode_logprobs(runner: Any, states: Any) -> Any:
    """float32 log-probabilities of residual vectors of shape (..., d) through the model's one decode."""
    return runner.decode(states.to(runner.dtype)).float().log_softmax(-1)


def kl_rows(final_logp: Any, logp: Any) -> Any:
    """KL(p || q) in nats per row, from log-probabilities of shape (..., vocab)."""
    return (final_logp.exp() * (final_logp - logp)).sum(-1)


def measure(net: Any, runner: Any, seqs: np.ndarray, decoders: Sequence[LogitLens | TunedLens], *,
            batch_tokens: int, pad: int, label: str = "evaluating", progress: bool = False,
            site: str = "resid", product: str = "float32") -> dict[str, np.ndarray]:
    """Mean metrics over all ``seqs`` (int64 (n_seq, seq_len)) for every decoder and layer ``0 .. n_layers``
    (``site="mid"``: layers ``0 .. n_layers - 1`` are read inside each block after attention, before the MLP).

    ``product``: the head product's precision, ``"float32"`` or ``"bfloat16"`` (:mod:`.metrics`).

    Returns ``{"kl_bits", "top1_agreement", "ce_bits"}``, each of shape (n_decoders, n_layers + 1).
    """
    import torch

    n_layers = runner.n_layers
    layers = list(range(n_layers + 1))
    per = max(1, batch_tokens // seqs.shape[1])
    sums = np.zeros((len(decoders), n_layers + 1, 3))
    clock = Timings()  # only for the progress bar's tokens/s
    with bar(seqs.size, label, enabled=progress) as advance:
        for s in range(0, len(seqs), per):
            batch = seqs[s: s + per]
            states = residual_states(net, list(batch), layers, pad=pad, site=site)    # one forward for all layers
            states = states.reshape(len(layers), -1, states.shape[-1])
            nxt = np.concatenate([batch[:, 1:], np.full((len(batch), 1), -1)], axis=1).reshape(-1)
            sums += layer_metrics(runner, states, torch.from_numpy(nxt), decoders, layers, product=product)
            done = min(len(seqs), s + per) * seqs.shape[1]
            advance(batch.size, f"{label}: {done / max(clock.since_start(), 1e-9):,.0f} tokens/s")
    n_rows, n_targets = seqs.size, seqs.shape[0] * (seqs.shape[1] - 1)
    return {"kl_bits": sums[..., 0] / n_rows / LN2, "top1_agreement": sums[..., 1] / n_rows,
            "ce_bits": sums[..., 2] / max(n_targets, 1) / LN2}


@dataclass
class DecoderEval:
    """Per-layer quality of decoders on held-out text.

    Attributes:
        model: the model's manifest; ``n_layers``: its block count (layers are 0 .. n_layers).
        decoders: one name per decoder (``logit``, ``tuned`` or a path) and ``describe`` of each.
        kl_bits, top1_agreement, ce_bits: arrays of shape (n_decoders, n_layers + 1).
        n_tokens: tokens averaged; ``corpus``: its manifest and hash; ``skip``: tokens of the corpus skipped first.
    """

    model: dict[str, Any]
    n_layers: int
    decoders: list[str]
    described: list[dict[str, Any]]
    kl_bits: np.ndarray
    top1_agreement: np.ndarray
    ce_bits: np.ndarray
    n_tokens: int
    corpus: dict[str, Any]
    skip: int
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per decoder and layer (what ``lens_eval.csv`` holds)."""
        return [{"lens": name, "layer": layer, "depth": round(layer / max(self.n_layers, 1), 6),
                 "kl_bits": float(self.kl_bits[i, layer]), "top1_agreement": float(self.top1_agreement[i, layer]),
                 "ce_bits": float(self.ce_bits[i, layer]), "n_tokens": self.n_tokens}
                for i, name in enumerate(self.decoders) for layer in range(self.n_layers + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "n_layers": self.n_layers, "decoders": list(self.decoders),
                "described": self.described, **{k: getattr(self, k).tolist() for k in METRICS},
                "n_tokens": self.n_tokens, "corpus": self.corpus, "skip": self.skip, "settings": self.settings,
                "timings": self.timings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecoderEval:
        return cls(model=dict(data["model"]), n_layers=int(data["n_layers"]), decoders=list(data["decoders"]),
                   described=list(data["described"]), **{k: np.asarray(data[k], dtype=np.float64) for k in METRICS},
                   n_tokens=int(data["n_tokens"]), corpus=dict(data["corpus"]), skip=int(data["skip"]),
                   settings=dict(data.get("settings", {})), timings=dict(data.get("timings", {})))

    def figure(self) -> Any:
        """Three panels (KL to the final distribution, top-1 agreement, next-token cross-entropy), one curve per lens."""

        return eval_figure(self)


def _skip_for(decoders: Sequence[LogitLens | TunedLens], hash_: str) -> int:
    """Tokens of this corpus that a tuned lens under evaluation was trained on (evaluation starts after them)."""
    return max([int(d.manifest.get("tokens", 0)) for d in decoders
                if isinstance(d, TunedLens) and (d.manifest.get("corpus") or {}).get("hash") == hash_] or [0])


def evaluate_decoders(
    model: Any,
    corpus: Any,
    *,
    decoders: Sequence[Any] = ("logit", "tuned"),
    tokens: int = 2048,
    skip: int | None = None,
    seq_len: int = 256,
    batch_tokens: int = 2048,
    device: str | None = None,
    dtype: Any = None,
    progress: bool = False,
    site: str = "resid",
    product: str = "auto",
) -> DecoderEval:
    """Per-layer KL to the final distribution, top-1 agreement and next-token cross-entropy of each decoder.

    Args:
        model: a model spec or :class:`~embedlens.lens.ModelLens`.
        corpus: a corpus spec (file, folder, ``lee``, ``enwiki-sample``...) or :class:`~embedlens.corpus.Corpus`.
        decoders: ``"logit"``, ``"tuned"`` (the model's cached tuned lens), lens paths or :class:`TunedLens` objects.
        tokens: tokens of held-out text to average over (cut into sequences of ``seq_len``).
        skip: corpus tokens to skip first; default: the tokens a tuned lens under evaluation was trained on
            when it was trained on this corpus, so evaluation text is never training text.
        site: ``"resid"`` (between blocks) or ``"mid"`` (inside each block, after attention, before the MLP;
            the logit lens only).
        product: precision of the head product: ``"float32"``, ``"bfloat16"`` (CPUs with bfloat16 units only;
            mean KL within ``metrics.BF16_KL_TOLERANCE`` of float32) or ``"auto"`` (bfloat16 where that holds).
    """

    timings = Timings()
    lens = as_lens(model)
    check_causal(lens)
    seq_len = check_count(seq_len, "seq_len", 2)
    tokens = check_count(tokens, "tokens", seq_len)
    batch_tokens = check_count(batch_tokens, "batch_tokens", 1)
    names = [str(d) if isinstance(d, str) else ("tuned" if isinstance(d, TunedLens) else "logit") for d in decoders]
    if not names:
        raise EmbedlensError("no decoder given")
    resolved = [resolve_decoder(d, lens) for d in decoders]
    if check_site(site) == "mid" and any(isinstance(d, TunedLens) for d in resolved):
        raise EmbedlensError("a tuned lens reads the residual stream between blocks: evaluate it with site='resid'")
    body = as_corpus(corpus)
    hash_ = corpus_hash(body)
    skip = _skip_for(resolved, hash_) if skip is None else check_count(skip, "skip", 0)
    seqs = sequences(corpus_tokens(lens, body, tokens, skip=skip, what=f"skipping {skip:,} and evaluating"), seq_len)
    dev, dt = runtime.choose(lens, device, dtype)
    product = choose_product(product, dev, dt)  # refused before any weight is read
    timings["prepare_s"] = timings.since_start()
    net = runtime.weights(lens, dev, dt)
    runner = runner_for(lens, net)
    with timings.stage("measure_s"):
        got = measure(net, runner, seqs, resolved, batch_tokens=batch_tokens, pad=_pad(net), progress=progress,
                      site=site, product=product)
    timings["total_s"] = timings.since_start()
    settings = {"seq_len": seq_len, "batch_tokens": batch_tokens, "device": dev, "dtype": runtime.dtype_name(dt), "site": site,
                "product": product,
                "units": "KL and cross-entropy in bits per token"}
    return DecoderEval(model=lens.manifest(), n_layers=runner.n_layers, decoders=names,
                    described=[d.describe() for d in resolved], n_tokens=int(seqs.size),
                    corpus={"hash": hash_, **body.manifest()}, skip=skip, settings=settings,
                    timings={k: round(v, 3) for k, v in timings.items()}, **got)
