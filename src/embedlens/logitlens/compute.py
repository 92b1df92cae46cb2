"""The logit lens: decode the residual stream after every block through the model's own head.

Layer ``l`` is the residual stream after ``l`` blocks: 0 is the input embeddings as the model feeds them to
block 0 (GPT-2: token + position embedding; Gemma: scaled by sqrt(d)), ``n_layers`` is the output of the
last block. Each is decoded by :meth:`embedlens.models.forward.BlockRunner.decode` (the final norm, the
unembedding, Gemma's soft-cap), the same decode the grid uses at ``layer_idx = n_layers``, so layer
``n_layers`` IS the model's next-token distribution.

One forward pass gives every layer: ``output_hidden_states`` for layers ``0 .. n_layers - 1``. Its last
entry is the *normed* output in transformers 5 (it is tied to ``last_hidden_state``), so the raw output of
the last block is taken from the final norm's input with a forward pre-hook, and normed once by the decode.
All layers x positions are then decoded as one batch of rows (in blocks of ~64 MB of logits).

Every check the cached metadata can answer (no LM head, empty text, a layer, a position, top-k, the
context length) is done before any weight is read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbedlensError
from ..indices import parse_index_list
from ..lens import as_lens
from ..models.architectures import execution_device, get_path, model_parts
from ..models.forward import runner_for
from ..models.loading import loaded_record
from ..models.running import check_texts, encode_batch, layers_of, max_positions, parse_layers, token_strings
from ..progress import bar
from ..timing import Timings
from . import runtime
from .result import LogitLensResult, RankCurve
from .tuned_files import resolve_decoder

if TYPE_CHECKING:
    from ..lens import ModelLens

SEMANTICS = ("layer l = the residual stream after l blocks (0 = input embeddings as the model scales them), "
             "decoded by the final norm, the unembedding and the final logit soft-cap where the model has one; "
             "layer n_layers = the model's own next-token distribution. target_rank: 1-based rank of the next "
             "token of the text (1 + number of logits strictly above it)")
SEMANTICS_MID = ("site mid: layer l = the residual stream inside block l after its attention, before its MLP, "
                 "decoded by the final norm, the unembedding and the soft-cap (the logit lens between sublayers)")
DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 64
BATCH_TOKENS = 4096  # padded tokens per forward pass of many prompts: states of 31 layers x 4096 x 576 ~ 0.3 GB


# -- checks the cache can answer -------------------------------------------------------------------------------

def check_causal(lens: ModelLens) -> None:
    """Refuse, from the cached metadata, a model without an LM head."""
    m = lens.meta
    if not m.get("causal") or not m.get("has_output", True):
        raise EmbedlensError(f"{lens.name} is an encoder-only model without an LM head, so it has no next-token "
                             "prediction to decode: the logit lens needs a causal language model (e.g. smollm2-135m)")


def context_limit(lens: ModelLens, net: Any = None) -> int | None:
    """The model's context length in tokens, from the cache (meta, or a config.json on disk) when it is there."""
    if net is not None:

        return max_positions(net)
    v = lens.meta.get("max_positions")
    if isinstance(v, int) and v > 0:
        return v
    src = lens.source
    folder = getattr(lens.entry, "folder", None)
    candidates = [src.path / "config.json"] if src.kind == "folder" else []
    if folder is not None:
        candidates.append(folder / "dequantized" / "config.json")
    for path in candidates:
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cfg = cfg.get("text_config", cfg) if isinstance(cfg, dict) else {}
        for key in ("max_position_embeddings", "n_positions"):
            if isinstance(cfg.get(key), int) and cfg[key] > 0:
                return int(cfg[key])
    return None


def parse_positions(spec: str | int | Sequence[int] | None, n_tokens: int) -> np.ndarray:
    """Positions to decode: ``"all"``, ``"last"``, ``"0,3,-1"`` (negatives from the end) or a list of ints."""

    if spec is None:
        return np.arange(n_tokens, dtype=np.int64)
    return np.asarray(parse_index_list(
        spec, n_tokens, noun="position", keywords={"all": range(n_tokens), "last": [n_tokens - 1]},
        example="all, last, or numbers such as 0,3,-1",
        out_of_range=lambda v: (f"position {v} is out of range: the text has {n_tokens} tokens "
                                f"(positions 0..{n_tokens - 1}, or -{n_tokens}..-1 from the end)")), dtype=np.int64)


def check_top_k(top_k: Any, n_vocab: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or not 1 <= int(top_k) <= min(n_vocab, 100):
        raise EmbedlensError(f"top-k must be an integer from 1 to {min(n_vocab, 100)}, got {top_k!r}")
    return int(top_k)


@dataclass
class _Text:
    """One tokenized text, truncated if asked."""

    text: str
    ids: np.ndarray
    notes: list[str] = field(default_factory=list)


def tokenize(lens: ModelLens, texts: Sequence[str], *, max_tokens: int | None = None) -> list[_Text]:
    """Token ids of each text as the model sees them, checked against the context length (truncated to
    ``max_tokens`` with a note when given)."""

    limit = context_limit(lens)
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int | np.integer) or max_tokens < 1:
            raise EmbedlensError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if limit is not None and max_tokens > limit:
            raise EmbedlensError(f"max_tokens {max_tokens} is above the context length of {lens.name} ({limit} tokens)")
    out = []
    for i, (text, enc) in enumerate(zip(texts, encode_batch(lens, list(texts)), strict=True)):
        what = "the text" if len(texts) == 1 else f"text {i + 1}"
        ids = enc.ids
        if len(ids) == 0:
            raise EmbedlensError(f"{what} produced no tokens")
        notes = []
        if max_tokens is not None and len(ids) > max_tokens:
            end = int(enc.offsets[max_tokens - 1, 1])
            notes.append(f"{what} has {len(ids)} tokens: kept the first {max_tokens}")
            ids, text = ids[:max_tokens], text[:end] if end > 0 else text
        elif limit is not None and len(ids) > limit:
            raise EmbedlensError(f"{what} has {len(ids)} tokens; {lens.name} reads at most {limit}: shorten it or "
                                 f"truncate it (`max_tokens={limit}`)")
        out.append(_Text(text, np.ascontiguousarray(ids, dtype=np.int64), notes))
    return out


# -- the forward pass -----------------------------------------------------------------------------------------

SITES = ("resid", "mid")


def check_site(site: Any) -> str:
    if site not in SITES:
        raise EmbedlensError(f"site must be resid (between blocks) or mid (after attention, before the MLP), "
                             f"got {site!r}")
    return str(site)


def residual_states(net: Any, sequences: Sequence[np.ndarray], layers: Sequence[int], *, pad: int = 0,
                    site: str = "resid") -> Any:
    """The residual stream of right-padded ``sequences`` at ``layers`` from ONE forward pass.

    Returns a tensor of shape (len(layers), batch, max_len, d_model) in the model's dtype and device;
    layer ``n_layers`` is the last block's output *before* the final norm. With ``site="mid"``, layer ``l``
    (0 .. n_layers - 1) is inside block ``l``: the residual stream after its attention, before its MLP, and
    layer ``n_layers`` is the last block's output as above (from the same forward pass).
    """
    import torch


    parts = model_parts(net)
    if check_site(site) == "mid":
        if parts.arch.mid_norm is None:
            raise EmbedlensError(f"{parts.arch.family} blocks have no readout between attention and MLP here")
        mids: dict[int, Any] = {}
        inside = sorted(set(layers) - {parts.n_layers})
        hooks = [get_path(parts.blocks[layer], parts.arch.mid_norm).register_forward_pre_hook(
            lambda mod, args, layer=layer: mids.__setitem__(layer, args[0])) for layer in inside]
        try:
            last = residual_states(net, sequences, [parts.n_layers] if len(inside) < len(set(layers)) else [], pad=pad)
        finally:
            for h in hooks:
                h.remove()
        return torch.stack([mids[layer] if layer in mids else last[0] for layer in layers])
    n_layers = parts.n_layers
    dev = execution_device(parts.embed)
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    width = int(lengths.max())
    ids = np.full((len(sequences), width), pad, dtype=np.int64)
    mask = np.arange(width)[None, :] < lengths[:, None]
    ids[mask] = np.concatenate(list(sequences))
    captured: dict[str, Any] = {}
    handle = None
    if parts.final_norm is not None and n_layers in layers:
        handle = parts.final_norm.register_forward_pre_hook(lambda mod, args: captured.__setitem__("x", args[0]))
    try:
        with torch.inference_mode():
            out = parts.base(input_ids=torch.from_numpy(ids).to(dev),
                             attention_mask=torch.from_numpy(mask.astype(np.int64)).to(dev),
                             output_hidden_states=True, use_cache=False, return_dict=True)
    finally:
        if handle is not None:
            handle.remove()
    hs = out.hidden_states
    picked = [captured["x"] if (layer == n_layers and "x" in captured) else hs[layer] for layer in layers]
    return torch.stack(picked) if picked else hs[0][:0]


def _strings(lens: ModelLens, ids: np.ndarray) -> np.ndarray:
    """Readable strings of an id array of any shape (object array of the same shape)."""
    table = lens.__dict__.get("_display_array")
    if table is None:
        table = lens.__dict__["_display_array"] = np.asarray(list(lens.space.display), dtype=object)
    n = len(table)
    out = table[np.clip(ids, 0, n - 1)]
    beyond = ids >= n
    if beyond.any():  # rows of a padded unembedding past the tokenizer's vocabulary

        out[beyond] = token_strings(lens, ids[beyond])[1]
    return out


# -- the lens ---------------------------------------------------------------------------------------------------

@dataclass
class _Plan:
    lens: ModelLens
    layers: list[int]
    top_k: int
    device: str
    dtype: Any
    texts: list[_Text]
    max_tokens: int | None = None
    decoder: Any = None  # a LogitLens or TunedLens (embedlens.tunedlens): what each layer's state goes through
    site: str = "resid"


def _plan(model: Any, texts: list[str], layers: Any, top_k: int, max_tokens: int | None, device: str,
          dtype: Any, decoder: Any = None, site: str = "resid") -> _Plan:
    lens = as_lens(model)
    check_causal(lens)
    if check_site(site) == "mid":
        kept = parse_layers(layers, int(lens.meta["n_layers"]) - 1, model=lens.name)  # one per block: 0 .. n - 1
        if decoder not in (None, "logit"):
            raise EmbedlensError("a tuned lens reads the residual stream between blocks: use site='resid' with it")
    else:
        kept = layers_of(lens, layers)
    k = check_top_k(top_k, int(lens.meta.get("n_vocab") or 1))
    toks = tokenize(lens, texts, max_tokens=max_tokens)
    dev, dt = runtime.choose(lens, device, dtype)
    return _Plan(lens, kept, k, dev, dt, toks, max_tokens, resolve_decoder(decoder, lens), site)


def _network(plan: _Plan) -> tuple[Any, Any]:

    net = runtime.weights(plan.lens, plan.device, plan.dtype)
    runner = runner_for(plan.lens, net)
    limit = context_limit(plan.lens, net)
    for i, t in enumerate(plan.texts):  # the cache had no config to tell: checked now
        if limit is not None and len(t.ids) > limit:
            raise EmbedlensError(f"text {i + 1} has {len(t.ids)} tokens; {plan.lens.name} reads at most {limit}: "
                                 f"shorten it or truncate it (max_tokens={limit})")
    return net, runner


def _pad(net: Any) -> int:
    for v in (getattr(net.config, "pad_token_id", None), getattr(net.config, "eos_token_id", None)):
        if isinstance(v, int) and v >= 0:
            return v
    return 0


def logit_lens(
    model: Any,
    text: str,
    *,
    layers: Any = "all",
    top_k: int = DEFAULT_TOP_K,
    positions: Any = "all",
    max_tokens: int | None = None,
    device: str | None = None,
    dtype: Any = None,
    keep_states: bool = False,
    decoder: Any = None,
    site: str = "resid",
) -> LogitLensResult:
    """The logit lens of one text: every kept layer's top-``k`` next tokens at every kept position.

    Args:
        model: a model spec (``smollm2-135m``, a folder, a ``.gguf``) or a :class:`~embedlens.lens.ModelLens`.
        text: the prompt.
        layers: ``"all"`` (0 .. n_layers), ``"0,5,10"``, ``-1`` (the last block only); negatives from the end.
        top_k: next tokens kept per cell.
        positions: ``"all"``, ``"last"`` or ``"0,3,-1"``.
        max_tokens: truncate the text to this many tokens (with a note) instead of refusing a long one.
        device, dtype: where and in what precision to run: None = as ``lens.model`` is loaded (the process
            defaults, else float32 on the CPU); ``"auto"``, ``"cuda"``, ``"bfloat16"``...: see
            :func:`embedlens.logitlens.runtime.choose`.
        keep_states: keep the decoded residual vectors on the result (``.states``), e.g. for nearest tokens.
        decoder: how each layer is read: ``"logit"`` (default: as it is), ``"tuned"`` (the tuned lens cached for
            the model by :func:`embedlens.tunedlens.train_tuned_lens`), a lens path, or a
            :class:`~embedlens.tunedlens.TunedLens`.
        site: ``"resid"`` (between blocks) or ``"mid"``: inside each block after attention, before the MLP
            (layer ``l`` = block ``l``; the logit lens only).

    Returns:
        A :class:`LogitLensResult`; ``result.top_ids[i, j]`` is layer ``layers[i]`` at ``positions[j]``.
    """
    clock = Timings()
    plan = _plan(model, check_texts(text), layers, top_k, max_tokens, device, dtype, decoder, site)
    positions_ = parse_positions(positions, len(plan.texts[0].ids))
    return _result_of(plan, positions_, keep_states, clock)


def _result_of(plan: _Plan, positions: np.ndarray, keep_states: bool, clock: Timings) -> LogitLensResult:
    """One plan's logit lens; ``clock`` is the caller's, started before the plans were made."""
    lens, t = plan.lens, plan.texts[0]
    timings = Timings(started=clock.started)
    timings["prepare_s"] = timings.since_start()
    with timings.stage("load_s"):
        net, runner = _network(plan)
    with timings.stage("forward_s"):
        states = residual_states(net, [t.ids], plan.layers, pad=_pad(net), site=plan.site)[:, 0][:, positions]  # (L, P, d)
    with timings.stage("decode_s"):
        n_l, n_p = len(plan.layers), len(positions)
        nxt = np.append(t.ids[1:], -1)[positions]
        read = plan.decoder.translate(states, plan.layers)
        ids, probs, ranks = runner.decode_top_k(read.reshape(n_l * n_p, -1), plan.top_k, targets=np.tile(nxt, n_l))

    raw, shown = token_strings(lens, t.ids)
    top_ids = ids.reshape(n_l, n_p, -1)
    kept = read.float().cpu().numpy() if keep_states else None
    timings["total_s"] = timings.since_start()
    settings = {"top_k": plan.top_k, "max_tokens": plan.max_tokens, "device": plan.device,
                "dtype": runtime.dtype_name(plan.dtype), "loaded": loaded_record(net), "decoder": plan.decoder.describe(),
                "site": plan.site, "semantics": SEMANTICS if plan.site == "resid" else SEMANTICS_MID}
    return LogitLensResult(
        model=lens.manifest(), text=t.text, token_ids=t.ids, tokens=raw, display=shown, layers=list(plan.layers),
        positions=positions, n_layers=runner.n_layers, top_ids=top_ids, top_probs=probs.reshape(n_l, n_p, -1),
        top_display=_strings(lens, top_ids), target_rank=ranks.reshape(n_l, n_p), settings=settings,
        notes=list(t.notes), timings={k: round(v, 4) for k, v in timings.items()}, states=kept)


def compare(
    models: Sequence[Any],
    text: str,
    *,
    layers: Any = "all",
    top_k: int = DEFAULT_TOP_K,
    positions: Any = "all",
    max_tokens: int | None = None,
    device: str | None = None,
    dtype: Any = None,
    decoder: Any = None,
    site: str = "resid",
) -> list[LogitLensResult]:
    """:func:`logit_lens` of the same text through several models, every input checked before any weights load."""
    clock = Timings()
    texts = check_texts(text)
    if not models:
        raise EmbedlensError("no model given")
    plans = [_plan(m, texts, layers, top_k, max_tokens, device, dtype, decoder, site) for m in models]
    pos = [parse_positions(positions, len(p.texts[0].ids)) for p in plans]
    return [_result_of(p, ps, False, clock) for p, ps in zip(plans, pos, strict=True)]


def rank_curve(
    model: Any,
    texts: Sequence[str],
    *,
    layers: Any = "all",
    max_tokens: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    dtype: Any = None,
    progress: bool = False,
    decoder: Any = None,
) -> RankCurve:
    """The next token's rank per layer over many prompts (a tuned-lens style summary).

    Every position that has a next token counts once; prompts run in right-padded batches of ``batch_size``
    and each batch's layers x positions are decoded together (ranks only: no top-k is kept).
    """
    return rank_curves([model], texts, layers=layers, max_tokens=max_tokens, batch_size=batch_size, device=device,
                       dtype=dtype, progress=progress, decoder=decoder)[0]


def rank_curves(models: Sequence[Any], texts: Sequence[str], *, layers: Any = "all", max_tokens: int | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE, device: str | None = None, dtype: Any = None,
                progress: bool = False, decoder: Any = None) -> list[RankCurve]:
    """:func:`rank_curve` of the same prompts through several models, every input checked before any weights load."""
    clock = Timings()
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise EmbedlensError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if not models:
        raise EmbedlensError("no model given")
    items = check_texts(texts)
    plans = [_plan(m, items, layers, 1, max_tokens, device, dtype, decoder) for m in models]
    prepared = clock.since_start()
    return [_curve_of(p, batch_size, progress, prepared, max_tokens) for p in plans]


def _curve_of(plan: _Plan, batch_size: int, progress: bool, prepared: float, max_tokens: int | None) -> RankCurve:
    timings = Timings()
    timings["prepare_s"] = prepared
    with timings.stage("load_s"):
        net, runner = _network(plan)
    n_l = len(plan.layers)
    seqs = [t.ids for t in plan.texts]
    with timings.stage("forward_decode_s"):
        per_prompt, all_ranks = _ranks(plan, net, runner, seqs, batch_size, progress)
    ranks = np.concatenate(all_ranks, axis=1) if all_ranks else np.zeros((n_l, 0), dtype=np.int64)
    if ranks.shape[1] == 0:
        raise EmbedlensError("no text has two tokens or more: there is no next token to rank")
    notes = [n for t in plan.texts for n in t.notes]
    short = sum(1 for s in seqs if len(s) < 2)
    if short:
        notes.append(f"{short} text(s) of one token have no next token and count for nothing")
    r = ranks.astype(np.float64)
    settings = {"device": plan.device, "dtype": runtime.dtype_name(plan.dtype), "decoder": plan.decoder.describe(),
                "batch_size": batch_size,
                "max_tokens": max_tokens, "semantics": SEMANTICS}
    timings["total_s"] = prepared + timings.since_start()
    return RankCurve(model=plan.lens.manifest(), layers=list(plan.layers), n_layers=runner.n_layers,
                     mean_rank=r.mean(axis=1).astype(np.float32), median_rank=np.median(r, axis=1).astype(np.float32),
                     mean_log_rank=np.log10(r).mean(axis=1).astype(np.float32),
                     top1=(ranks == 1).mean(axis=1).astype(np.float32), n_prompts=len(seqs),
                     n_positions=int(ranks.shape[1]), prompt_mean_rank=per_prompt.astype(np.float32),
                     settings=settings, notes=notes, timings={k: round(v, 4) for k, v in timings.items()})


def _ranks(plan: _Plan, net: Any, runner: Any, seqs: list[np.ndarray], batch_size: int, progress: bool,
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The next token's rank at every layer and position that has one, in right-padded batches of similar
    lengths: ``(mean rank per prompt and layer (n_prompts, n_layers), ranks (n_layers, n_rows) per batch)``."""
    n_l = len(plan.layers)
    per_prompt = np.zeros((len(seqs), n_l), dtype=np.float64)
    all_ranks: list[np.ndarray] = []
    order = np.argsort([len(s) for s in seqs], kind="stable")
    with bar(len(seqs), "logit lens", enabled=progress) as advance:
        for idx in _batches(order, [len(s) for s in seqs], batch_size):
            batch = [seqs[i] for i in idx]
            states = residual_states(net, batch, plan.layers, pad=_pad(net))  # (L, B, W, d)
            lengths = np.asarray([len(b) for b in batch])
            width = states.shape[2]
            # rows: positions that have a next token (p < n - 1), for every layer
            keep = np.arange(width)[None, :] < (lengths[:, None] - 1)
            flat = np.flatnonzero(keep.reshape(-1))
            if flat.size == 0:
                advance(len(idx))
                continue
            import torch

            rows = states.reshape(n_l, -1, states.shape[-1])[:, torch.as_tensor(flat, device=states.device)]
            rows = plan.decoder.translate(rows, plan.layers)
            padded = np.full((len(batch), width + 1), -1, dtype=np.int64)
            for j, b in enumerate(batch):
                padded[j, : len(b)] = b
            targets = padded[:, 1:].reshape(-1)[flat]
            _, _, ranks = runner.decode_top_k(rows.reshape(n_l * flat.size, -1), 0, targets=np.tile(targets, n_l))
            ranks = ranks.reshape(n_l, flat.size)
            all_ranks.append(ranks)
            owner = np.repeat(np.arange(len(batch)), np.maximum(lengths - 1, 0))
            sums = np.zeros((len(batch), n_l))
            np.add.at(sums, owner, ranks.T.astype(np.float64))
            per_prompt[idx] = sums / np.maximum(lengths - 1, 1)[:, None]
            advance(len(idx))
    return per_prompt, all_ranks


def _batches(order: np.ndarray, lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Consecutive runs of ``order`` (shortest first) of at most ``batch_size`` texts and about
    :data:`BATCH_TOKENS` padded tokens each (a long text goes alone), so memory stays bounded."""
    out, start = [], 0
    while start < len(order):
        stop = start + 1
        while (stop < len(order) and stop - start < batch_size
               and (stop - start + 1) * lengths[order[stop]] <= BATCH_TOKENS):
            stop += 1
        out.append(order[start:stop])
        start = stop
    return out


def read_text_file(path: Any) -> list[str]:
    """Prompts from a text file: one per non-blank line."""
    from pathlib import Path

    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EmbedlensError(f"no such text file: {path}") from None
    except UnicodeDecodeError:
        raise EmbedlensError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise EmbedlensError(f"cannot read {path}: {exc.strerror or exc}") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise EmbedlensError(f"{path} has no text: give one prompt per line")
    return texts
