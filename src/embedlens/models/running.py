"""What the stages that run a model on texts share: layer specs, the network of a handle, tokenizing with
character offsets, and the raw and readable strings of token ids.

The hidden states of :mod:`embedlens.contextual` and the logit lens of :mod:`embedlens.logitlens` both
build on these, so they live below both stages. A handle (``lens``) here is a
:class:`~embedlens.models.model_handle.ModelHandle`: a :class:`~embedlens.lens.ModelLens` is one.

Layer specs: ``-1`` (the last hidden state), ``"all"`` (embeddings output + every block), or a list
such as ``"0,6,12"``; negative numbers count from the end (``-1`` is ``n_layers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..display import make_visible
from ..errors import EmbedlensError
from ..indices import parse_index_list
from . import loading  # called through the module: tests stand in for it there
from .model_handle import ModelHandle
from .runtime import default_device, dtype_name, resolve_dtype

LayerSpec = int | str | Sequence[int]


def parse_layers(spec: LayerSpec, n_layers: int, *, model: str = "the model") -> list[int]:
    """Hidden-state indices for a layer spec, in the order given, duplicates dropped.

    Args:
        spec: ``-1``, ``"all"``, ``"0,6,12"`` or a sequence of ints; negatives count from the end.
        n_layers: number of blocks; valid indices are ``0 .. n_layers`` (0 = embeddings output).
    """
    n_states = n_layers + 1
    return parse_index_list(
        spec, n_states, noun="layer", keywords={"all": range(n_states)},
        example="-1 (last), all, or numbers such as 0,6,12",
        out_of_range=lambda v: (f"layer {v} is out of range for {model}: it has hidden states 0..{n_layers} "
                                f"(0 = embeddings output, {n_layers} = last block; negatives count from the end, "
                                f"-1 = {n_layers})"))


def network(lens: ModelHandle, upto: int | None = None) -> Any:
    """The loaded transformers model of ``lens`` (eval mode), loaded once and kept on the lens.

    ``lens.model`` loads the weights alone: the lens already has the cached tokenizer. ``upto``: the highest
    hidden-state index a job needs; below the last one only the embeddings and blocks ``0 .. upto-1`` are read
    from the checkpoint (the rest of the network is never built), and
    :func:`~embedlens.contextual.states.forward_batches` stops there.
    """
    n = int(lens.meta.get("n_layers") or 0)
    whole = upto is None or not n or upto >= n
    # a model loaded earlier under other process defaults (--device/--dtype) is not the one asked for now
    device = default_device()
    wanted = (device, dtype_name(resolve_dtype(None, device, model=lens.source)))

    def runs_as_asked(net: Any) -> bool:
        info = getattr(net, "embedlens_loaded", None) or {}
        return (str(info.get("device")), str(info.get("dtype"))) == wanted

    full = lens.__dict__.get("model")
    if full is not None and runs_as_asked(full):
        return full
    if whole and full is None:
        return lens.model
    stop = n if whole else int(upto)
    nets = lens.__dict__.setdefault("_partial_networks", {})
    for have, net in nets.items():
        if have >= stop and runs_as_asked(net):
            return net

    nets.clear()
    if whole:
        nets[stop] = loading.load_weights(lens.source)
    else:  # a causal model keeps its head (the final norm always loads): its context hovers decode these states
        nets[stop] = loading.load_weights(lens.source, blocks=range(0, stop), head=bool(lens.meta.get("causal")))
    return nets[stop]


def layers_of(lens: ModelHandle, layers: LayerSpec) -> list[int]:
    """``layers`` parsed against the model's block count, read from the cache metadata when it is there, so
    a bad spec is refused before the weights load (or a corpus is scanned)."""
    n_layers = lens.meta.get("n_layers") or network(lens).config.num_hidden_layers
    return parse_layers(layers, int(n_layers), model=lens.name)


def max_positions(model: Any) -> int | None:
    cfg = model.config
    for attr in ("max_position_embeddings", "n_positions"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


@dataclass
class Encoded:
    """One tokenized sequence: ids, character offsets into its text, and which tokens are special."""

    ids: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n, 2) int64
    special: np.ndarray  # (n,) bool


def encode_batch(lens: ModelHandle, texts: Sequence[str]) -> list[Encoded]:
    """Tokenize with the model's own (fast) tokenizer, keeping character offsets of every token."""
    fast = lens.fast_tokenizer
    out: list[Encoded] = []
    if fast is not None:
        for enc in fast.encode_batch(list(texts), add_special_tokens=True):
            out.append(Encoded(np.asarray(enc.ids, dtype=np.int64), np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2),
                               np.asarray(enc.special_tokens_mask, dtype=bool)))
        return out
    tok = lens.tokenizer
    if not getattr(tok, "is_fast", False):
        raise EmbedlensError(f"{lens.name} has no fast tokenizer, so token offsets (needed here) are not available")
    batch = tok(list(texts), return_offsets_mapping=True, return_special_tokens_mask=True)
    for ids, offs, spec in zip(batch["input_ids"], batch["offset_mapping"], batch["special_tokens_mask"], strict=True):
        out.append(Encoded(np.asarray(ids, dtype=np.int64), np.asarray(offs, dtype=np.int64).reshape(-1, 2),
                           np.asarray(spec, dtype=bool)))
    return out


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """One text or several as a list, each with some words."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise EmbedlensError("no text given")
    for i, t in enumerate(items):
        if not isinstance(t, str) or not t.strip():
            what = "the text" if len(items) == 1 else f"text {i + 1}"
            raise EmbedlensError(f"{what} is empty: give some words")
    return items


def token_strings(lens: ModelHandle, ids: np.ndarray) -> tuple[list[str], list[str]]:
    """Raw and readable strings of token ids (ids past the cached vocabulary are converted by the tokenizer)."""
    sp = lens.space
    n = len(sp)
    raw, shown = [], []
    for t in ids.tolist():
        if 0 <= t < n:
            raw.append(sp.labels[t])
            shown.append(sp.display[t])
        else:
            r = str(lens.tokenizer.convert_ids_to_tokens(int(t)))
            raw.append(r)
            shown.append(make_visible(r))
    return raw, shown
