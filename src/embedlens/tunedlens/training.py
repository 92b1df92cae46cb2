"""Training a tuned lens on a CPU in minutes.

The frozen model runs once per batch (no gradients); only each batch's residual states are kept, never the
whole corpus's. Training has two stages, both over the same ``tokens`` of the corpus:

1. **Least squares** (``init="least-squares"``, the default): for every layer at once, the affine map that
   best predicts the last block's output from the layer's state, ``[h_l, 1] A_l ~ h_L``, from running sums
   of ``[h_l, 1]^T [h_l, 1]`` and ``[h_l, 1]^T h_L`` (a ridge term keeps it well posed). This is the
   "linear shortcut" of Din et al. (2023); it costs one forward pass per batch and no decode, which is
   what makes a useful lens affordable on a CPU (a decode of every layer through a 49k-token head costs
   ~15x the forward pass). ``init="zero"`` starts from the logit lens instead, as the ``tuned-lens`` package does;
   on SmolLM2 with the same 16,384 tokens it stays 1.5x below the logit lens over the first half after the KL
   steps that fit minutes on a 2-core CPU, where least squares is 8x below in 3.5 minutes (README).
2. **KL** (``steps`` optimiser steps, Adam): the tuned-lens objective, KL(final || lens) per layer averaged
   over tokens, summed over layers (each translator has its own parameters, so each gets its own layer's
   gradient); layers are decoded in groups to bound the logits held at once.

Then the held-out KL per layer (tuned and logit lens) is measured on the ``heldout_tokens`` that follow the
training tokens in the corpus. A checkpoint (the sums, or the translators and optimiser state) is written
atomically every ``checkpoint_seconds`` into ``out``; a run with the same settings resumes from it. The seed
fixes the order of the KL batches, so it fixes the result.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_dir
from ..errors import EmbedlensError
from ..lens import ModelLens, as_lens
from ..logitlens import runtime
from ..logitlens.compute import _pad, check_causal, residual_states
from ..logitlens.translators import LogitLens, TunedLens
from ..logitlens.tuned_files import cached_folder, save_tuned_lens
from ..models.forward import runner_for
from ..progress import bar
from ..timing import Timings
from .data import as_corpus, check_count, corpus_hash, corpus_tokens, sequences
from .evaluation import LOGIT_BUDGET, decode_logprobs, kl_rows, measure
from .metrics import HeadProduct, choose_product

log = logging.getLogger("embedlens")

INITS = ("least-squares", "zero")
CHECKPOINT = ".checkpoint"


def least_squares_translators(gram: Any, cross: Any, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Translators ``(W, b)`` of shapes (L, d, d), (L, d) from per-layer sums.

    Args:
        gram: float64 tensor (L, d + 1, d + 1): sum of ``[h_l, 1]^T [h_l, 1]`` over tokens.
        cross: float64 tensor (L, d + 1, d): sum of ``[h_l, 1]^T h_final``.
        ridge: weight of ``||A||^2`` (bias excluded), relative to the mean squared entry of ``h_l``.
    """
    import torch

    d = cross.shape[-1]
    scale = gram[:, :d, :d].diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1e-12)        # (L,)
    mask = torch.ones(d + 1, dtype=gram.dtype)
    mask[d] = 0.0
    a = torch.linalg.solve(gram + ridge * scale[:, None, None] * torch.diag(mask), cross)   # (L, d + 1, d)
    eye = torch.eye(d, dtype=a.dtype)
    weight = a[:, :d, :].transpose(1, 2) - eye          # h @ A = h + h @ W.T
    return weight.float().numpy(), a[:, d, :].float().numpy()


def kl_loss(runner: Any, states: Any, final_logp: Any, weight: Any, bias: Any, layers: list[int],
            head: HeadProduct | None = None) -> Any:
    """Mean over tokens of KL(final || tuned lens) for each of ``layers``: a tensor of shape (len(layers),).

    ``states``: (len(layers), n, d) residual states (no gradient); ``weight``/``bias``: all translators;
    ``head``: a bfloat16 :class:`~.metrics.HeadProduct` to decode with (gradients flow through it), else the
    model's own decode.
    """
    import torch

    x = states.float()
    idx = torch.as_tensor(layers)
    moved = x + torch.baddbmm(bias[idx][:, None, :], x, weight[idx].transpose(1, 2))
    logp = decode_logprobs(runner, moved) if head is None else head.logits(moved)[0].float().log_softmax(-1)
    return kl_rows(final_logp, logp).mean(-1)


class _Checkpoint:
    """``out/.checkpoint``: tensors (safetensors) + progress (JSON), replaced as a whole, atomically."""

    def __init__(self, out: Path | None, config: dict[str, Any]) -> None:
        self.folder = None if out is None else Path(out) / CHECKPOINT
        self.config = config
        self.last = time.monotonic()

    def load(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if self.folder is None or not (self.folder / "state.json").exists():
            return None
        from safetensors.torch import load_file

        state = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))
        if state.get("config") != self.config:
            log.warning("a checkpoint in %s was made with other settings: starting afresh", self.folder.parent)
            return None
        return state, load_file(str(self.folder / "state.safetensors"))

    def save(self, state: dict[str, Any], tensors: dict[str, Any], *, every: float) -> None:
        if self.folder is None or time.monotonic() - self.last < every:
            return
        from safetensors.torch import save_file

        with atomic_dir(self.folder) as tmp:
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps({**state, "config": self.config}), encoding="utf-8")
        self.last = time.monotonic()

    def remove(self) -> None:
        import shutil

        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class _Settings:
    """A run's training options, checked: what its checkpoint must match and its manifest records."""

    tokens: int
    heldout_tokens: int
    seq_len: int
    batch_tokens: int
    init: str
    ridge: float
    steps: int
    lr: float
    seed: int
    product: str  # as asked ("auto" included), not as chosen

    def __post_init__(self) -> None:
        self.seq_len = check_count(self.seq_len, "seq_len", 2)
        self.batch_tokens = check_count(self.batch_tokens, "batch_tokens", self.seq_len)
        self.tokens = check_count(self.tokens, "tokens", 1)
        self.heldout_tokens = check_count(self.heldout_tokens, "heldout_tokens", self.seq_len)
        self.steps = check_count(self.steps, "steps", 0)
        if self.tokens < self.batch_tokens:
            raise EmbedlensError(f"`tokens={self.tokens}` is less than one batch "
                                 f"(`batch_tokens={self.batch_tokens}`): train on more tokens or use smaller batches")
        if self.init not in INITS:
            raise EmbedlensError(f"`init` must be one of {', '.join(INITS)}, got {self.init!r}")
        ridge, lr = self.ridge, self.lr
        if not (isinstance(ridge, int | float) and ridge >= 0) or not (isinstance(lr, int | float) and lr > 0):
            raise EmbedlensError(f"ridge must be >= 0 and lr > 0, got ridge={ridge!r}, lr={lr!r}")

    def checkpoint_config(self, lens: ModelLens, corpus_hash: str, dtype: Any) -> dict[str, Any]:
        """What a checkpoint was made with: it is resumed only under the same."""
        return {"model": lens.manifest().get("content_hash"), "corpus": corpus_hash, "tokens": self.tokens,
                "seq_len": self.seq_len, "batch_tokens": self.batch_tokens, "init": self.init, "ridge": self.ridge,
                "steps": self.steps, "lr": self.lr, "seed": self.seed, "heldout_tokens": self.heldout_tokens,
                "dtype": runtime.dtype_name(dtype), "product": self.product}


@dataclass
class _Training:
    """What every stage of one training run reads: the frozen model, the training sequences, the checkpoint."""

    net: Any
    runner: Any
    head: HeadProduct | None  # a bfloat16 head product for the KL steps, else None (the model's own decode)
    pad: int
    train: np.ndarray  # int64 (n_sequences, seq_len): the training sequences
    per: int  # sequences per batch
    ckpt: _Checkpoint
    checkpoint_seconds: float
    progress: bool

    @property
    def seq_len(self) -> int:
        return int(self.train.shape[1])

    @property
    def layers(self) -> list[int]:
        """Every residual state read: 0 (the input embeddings) .. n_layers (the last block's output)."""
        return list(range(self.runner.n_layers + 1))


def _open_training(lens: ModelLens, device: str, dtype: Any, product: str, train: np.ndarray, opts: _Settings,
                   ckpt: _Checkpoint, *, checkpoint_seconds: float, progress: bool) -> _Training:
    """The frozen model on ``device`` in ``dtype`` (no gradients), ready for both stages."""
    net = runtime.weights(lens, device, dtype)
    net.requires_grad_(False)
    runner = runner_for(lens, net)
    head = HeadProduct(runner, product) if product == "bfloat16" else None
    return _Training(net, runner, head, _pad(net), train, max(1, opts.batch_tokens // opts.seq_len), ckpt,
                     checkpoint_seconds, progress)


def _least_squares(run: _Training, state: dict[str, Any], saved: dict[str, Any], ridge: float,
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 1: running sums over every training batch, then the closed-form translators.

    Resumes from ``state["done"]`` sequences and the sums in ``saved``; returns the KL stage's starting
    ``(state, saved)``: no step done, the translators as ``saved["weight"]``, ``saved["bias"]``.
    """
    import torch

    n, d, seq_len, train, per = run.runner.n_layers, run.runner.d_model, run.seq_len, run.train, run.per
    gram = saved.get("gram", torch.zeros(n, d + 1, d + 1, dtype=torch.float64))
    cross = saved.get("cross", torch.zeros(n, d + 1, d, dtype=torch.float64))
    clock = Timings()  # only for the progress bar's tokens/s
    with bar(len(train) * seq_len, "tuned lens: least squares", enabled=run.progress) as advance:
        advance(state["done"] * seq_len)
        for s in range(0, len(train), per):
            if s < state["done"]:
                continue
            hs = residual_states(run.net, list(train[s: s + per]), run.layers, pad=run.pad)
            hs = hs.reshape(n + 1, -1, d).float()
            xa = torch.cat([hs[:n], hs.new_ones(n, hs.shape[1], 1)], dim=-1)      # (n, N, d + 1)
            gram += torch.bmm(xa.transpose(1, 2), xa).double()
            cross += torch.matmul(xa.transpose(1, 2), hs[n]).double()
            state["done"] = min(len(train), s + per)
            rate = state["done"] * seq_len / max(clock.since_start(), 1e-9)
            advance(len(train[s: s + per]) * seq_len, f"tuned lens: least squares, {rate:,.0f} tokens/s")
            run.ckpt.save(state, {"gram": gram, "cross": cross}, every=run.checkpoint_seconds)
    w0, b0 = least_squares_translators(gram, cross, float(ridge))
    del gram, cross
    state = {"phase": "kl", "done": 0}
    saved = {"weight": torch.from_numpy(w0), "bias": torch.from_numpy(b0)}
    run.ckpt.save(state, saved, every=0.0)
    return state, saved


def _adam(weight: Any, bias: Any, lr: float, saved: dict[str, Any]) -> Any:
    """Adam over the translators, with the moments of a checkpoint when ``saved`` holds them."""
    import torch

    opt = torch.optim.Adam([weight, bias], lr=float(lr))
    if "exp_avg.0" in saved:
        opt.load_state_dict({"state": {i: {"step": saved[f"step.{i}"], "exp_avg": saved[f"exp_avg.{i}"],
                                            "exp_avg_sq": saved[f"exp_avg_sq.{i}"]} for i in range(2)},
                             "param_groups": [{**opt.param_groups[0], "params": [0, 1]}]})
    return opt


def _kl_tensors(weight: Any, bias: Any, opt: Any) -> dict[str, Any]:
    """What a KL-stage checkpoint holds: the translators and Adam's step and moments."""
    tensors = {"weight": weight.detach(), "bias": bias.detach()}
    for i, p in enumerate((weight, bias)):
        st = opt.state[p]
        tensors.update({f"step.{i}": st["step"].reshape(1) if st["step"].ndim == 0 else st["step"],
                        f"exp_avg.{i}": st["exp_avg"], f"exp_avg_sq.{i}": st["exp_avg_sq"]})
    return tensors


def _kl_steps(run: _Training, state: dict[str, Any], saved: dict[str, Any], *, steps: int, lr: float,
              seed: int) -> tuple[Any, Any]:
    """Stage 2: ``steps`` Adam steps on KL(final || tuned lens) from the translators in ``saved`` (zero when
    absent), resuming after ``state["done"]`` steps; returns the translators ``(weight, bias)``."""
    import torch

    n, d, seq_len, train, per = run.runner.n_layers, run.runner.d_model, run.seq_len, run.train, run.per
    weight = saved.get("weight", torch.zeros(n, d, d)).clone().requires_grad_(True)
    bias = saved.get("bias", torch.zeros(n, d)).clone().requires_grad_(True)
    opt = _adam(weight, bias, lr, saved)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(train)) for _ in range(-(-steps * per // len(train)) or 1)])
    group = max(1, LOGIT_BUDGET // max(1, 4 * run.runner.n_vocab * per * seq_len))
    running = np.zeros(n)
    with bar(steps, "tuned lens: KL steps", enabled=run.progress and steps > 0) as advance:
        advance(state["done"])
        for step in range(state["done"], steps):
            batch = train[order[step * per: (step + 1) * per]]
            hs = residual_states(run.net, list(batch), run.layers, pad=run.pad).reshape(n + 1, -1, d)
            with torch.no_grad():
                final = decode_logprobs(run.runner, hs[n])
            hs = hs.clone()  # out of inference mode: autograd keeps it for the backward pass
            for s in range(0, n, group):
                idx = list(range(s, min(n, s + group)))
                loss = kl_loss(run.runner, hs[idx], final, weight, bias, idx, run.head)
                loss.sum().backward()
                running[idx] = loss.detach().numpy() / np.log(2)
            opt.step()
            opt.zero_grad(set_to_none=False)
            state = {"phase": "kl", "done": step + 1}
            run.ckpt.save(state, _kl_tensors(weight, bias, opt), every=run.checkpoint_seconds)
            advance(1, f"tuned lens: KL step {step + 1}/{steps}, mean KL {running.mean():.2f} bits")
    return weight, bias


def _manifest(lens: ModelLens, corpus: Any, corpus_hash: str, opts: _Settings, held: np.ndarray,
              got: dict[str, Any], *, device: str, dtype: Any, product: str, timings: Timings) -> dict[str, Any]:
    """The trained lens's manifest: model and corpus, settings, optimiser, held-out KL per layer, timings."""
    init, steps = opts.init, opts.steps
    return {
        "model": lens.manifest(), "corpus": {"hash": corpus_hash, **corpus.manifest()}, "tokens": opts.tokens,
        "heldout_tokens": int(held.size), "seq_len": opts.seq_len, "batch_tokens": opts.batch_tokens, "init": init,
        "ridge": opts.ridge, "steps": steps, "seed": opts.seed,
        "optimiser": ({"name": "Adam", "lr": opts.lr, "betas": [0.9, 0.999], "after": init} if steps else
                      {"name": "none: closed-form least squares only" if init == "least-squares" else "none"}),
        "device": device, "dtype": runtime.dtype_name(dtype), "product": product,
        "heldout_kl_bits": [round(float(v), 6) for v in got["kl_bits"][0]],
        "heldout_kl_bits_logit_lens": [round(float(v), 6) for v in got["kl_bits"][1]],
        "heldout_top1_agreement": [round(float(v), 6) for v in got["top1_agreement"][0]],
        "layers": "translator l reads the residual stream after l blocks (0 = input embeddings); "
                  "held-out lists are layers 0 .. n_layers (n_layers = the model's own output)",
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def train_tuned_lens(
    model: Any,
    corpus: Any,
    *,
    tokens: int = 16384,
    heldout_tokens: int = 1024,
    seq_len: int = 256,
    batch_tokens: int = 1024,
    init: str = "least-squares",
    ridge: float = 1e-3,
    steps: int = 0,
    lr: float = 1e-4,
    seed: int = 0,
    device: str | None = None,
    dtype: Any = None,
    out: str | Path | None = None,
    cache: bool = True,
    resume: bool = True,
    checkpoint_seconds: float = 60.0,
    progress: bool = False,
    product: str = "auto",
) -> TunedLens:
    """Train a :class:`TunedLens` for a causal LM on a corpus (see the module docstring for the method).

    Args:
        model: a model spec or :class:`~embedlens.lens.ModelLens`.
        corpus: a corpus spec (file, folder, ``lee``, ``enwiki-sample``, ``hf:NAME``) or a Corpus.
        tokens: training tokens, the first of the corpus's token stream (cut into sequences of ``seq_len``).
        heldout_tokens: the tokens after them, never trained on, on which the manifest's KL is measured.
        batch_tokens: tokens per forward pass (and per KL step).
        init: ``"least-squares"`` or ``"zero"`` (W = 0, b = 0: the logit lens).
        ridge: the least-squares ridge weight (relative to the mean square of each layer's states).
        steps: KL optimiser steps (Adam, learning rate ``lr``) after the initialisation.
        seed: fixes which sequences each KL step uses.
        device, dtype: where the frozen model runs (translators are always float32).
        out: folder for ``tuned_lens.safetensors`` + ``manifest.json`` and the resumable checkpoint.
        cache: also keep the lens in the model's cache entry (what ``decoder="tuned"`` reads).
        resume: continue from a checkpoint in ``out`` made with the same settings.
        product: precision of the head products of the KL steps and the held-out measure: ``"float32"``,
            ``"bfloat16"`` or ``"auto"`` (bfloat16 on CPUs with bfloat16 units; see :mod:`.metrics`).

    Returns:
        The trained :class:`TunedLens`; its ``manifest`` records model and corpus hashes, tokens, steps,
        optimiser, seed and the held-out KL per layer of the tuned and the logit lens.
    """
    timings = Timings()
    lens = as_lens(model)
    check_causal(lens)
    opts = _Settings(tokens, heldout_tokens, seq_len, batch_tokens, init, ridge, steps, lr, seed, product)
    body = as_corpus(corpus)
    hash_ = corpus_hash(body)
    toks = corpus_tokens(lens, body, opts.tokens + opts.heldout_tokens,
                         what=f"training on {opts.tokens:,} tokens and holding out {opts.heldout_tokens:,}")
    train, held = sequences(toks[:opts.tokens], opts.seq_len), sequences(toks[opts.tokens:], opts.seq_len)
    dev, dt = runtime.choose(lens, device, dtype)
    chosen = choose_product(product, dev, dt)  # refused before any weight is read
    ckpt = _Checkpoint(None if out is None else Path(out), opts.checkpoint_config(lens, hash_, dt))
    loaded = ckpt.load() if resume else None
    state, saved = loaded if loaded else ({"phase": "least-squares", "done": 0}, {})
    run = _open_training(lens, dev, dt, chosen, train, opts, ckpt, checkpoint_seconds=checkpoint_seconds,
                         progress=progress)
    timings["prepare_s"] = timings.since_start()
    with timings.stage("least_squares_s"):
        if opts.init == "least-squares" and state["phase"] == "least-squares":
            state, saved = _least_squares(run, state, saved, opts.ridge)
    with timings.stage("kl_s"):
        weight, bias = _kl_steps(run, state, saved, steps=opts.steps, lr=opts.lr, seed=seed)
    with timings.stage("heldout_s"):  # held-out KL of the tuned and the logit lens
        tuned = TunedLens(weight.detach().numpy(), bias.detach().numpy())
        got = measure(run.net, run.runner, held, [tuned, LogitLens()], batch_tokens=opts.batch_tokens, pad=run.pad,
                      label="tuned lens: held-out KL", progress=progress, product=chosen)
    timings["total_s"] = timings.since_start()
    tuned.manifest = _manifest(lens, body, hash_, opts, held, got, device=dev, dtype=dt, product=chosen,
                               timings=timings)
    if out is not None:
        save_tuned_lens(tuned, out)
        ckpt.remove()
    if cache:
        save_tuned_lens(tuned, cached_folder(lens))
    return tuned
