"""Per-layer hidden states of every token of a few texts.

A transformer turns each token's static embedding into a sequence of vectors, one per layer: the
residual stream after the embedding layer (hidden state 0) and after each block (1 .. n_layers).
``transformers`` returns them all with ``output_hidden_states=True``; the last one is the one the model
hands to its LM head (for GPT-2 and Llama it already has the final norm applied).

Texts are run in batches, right-padded, with an attention mask, and only the real positions are kept,
so a batched text gets the same states as the same text run alone. Causal LMs and encoders go through
the same path (the *base* model, so no LM head logits are computed). Special tokens the tokenizer adds
(BOS, CLS, SEP) are fed to the model as usual but, unless ``keep_special=True``, not kept in the result.

Layer specs: ``-1`` (the last hidden state), ``"all"`` (embeddings output + every block), or a list
such as ``"0,6,12"``; negative numbers count from the end (``-1`` is ``n_layers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbedlensError
from ..lens import as_lens
from ..models.architectures import execution_device, model_parts
from ..models.running import (
    LayerSpec,
    check_texts,
    encode_batch,
    layers_of,
    max_positions,
    network,
    token_strings,
)
from ..timing import Timings

if TYPE_CHECKING:
    from ..models.model_handle import ModelHandle

DEFAULT_BATCH_SIZE = 16


def loaded_blocks(model: Any) -> int | None:
    """How many leading blocks a partly loaded model has (None when every block is loaded)."""
    loaded = getattr(model, "embedlens_loaded", None) or {}
    blocks = loaded.get("blocks")
    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    if not blocks or blocks[0] != 0 or blocks[1] >= n:
        return None
    return int(blocks[1])


class _Stop(Exception):
    pass


def truncated_states(model: Any, stop: int, **inputs: Any) -> list[Any]:
    """Hidden states ``0 .. stop`` as ``output_hidden_states`` gives them, running only blocks ``0 .. stop-1``.

    State 0 is the input of block 0 (the embeddings output), state i the output of block i-1; the run is cut
    right after block ``stop-1`` (blocks past it may be unloaded), so no final norm is applied.
    """
    blocks = model_parts(model).blocks
    base = getattr(model, "base_model", model)
    captured: list[Any] = []

    def before_first(module: Any, args: Any, kwargs: Any) -> None:
        captured.append(args[0] if args else kwargs["hidden_states"])
        if stop == 0:
            raise _Stop

    def after(i: int) -> Any:
        def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)
            if i == stop - 1:
                raise _Stop
        return hook

    handles = [blocks[0].register_forward_pre_hook(before_first, with_kwargs=True)]
    handles += [blocks[i].register_forward_hook(after(i), with_kwargs=True) for i in range(stop)]
    try:
        base(**inputs, use_cache=False, return_dict=True)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return captured


def pad_id(lens: ModelHandle, model: Any) -> int:
    for v in (getattr(model.config, "pad_token_id", None), getattr(model.config, "eos_token_id", None)):
        if isinstance(v, int) and v >= 0:
            return v
    return 0


def forward_batches(
    model: Any,
    sequences: Sequence[np.ndarray],
    layers: Sequence[int],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pad: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[np.ndarray, Any, np.ndarray]]:
    """Run ``sequences`` (token id arrays) through ``model`` in right-padded batches, shortest first.

    Yields ``(indices, states, lengths)`` per batch: which sequences (indices into ``sequences``), a
    float32 torch tensor of shape (len(layers), batch, max_len, d_model) holding the chosen hidden
    states (positions past a sequence's length are padding: ignore them), and the lengths.
    """
    import torch

    if batch_size < 1:
        raise EmbedlensError(f"batch size must be at least 1, got {batch_size}")
    base = getattr(model, "base_model", model)
    lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    layer_index = torch.as_tensor(list(layers), dtype=torch.long)
    stop = loaded_blocks(model)
    if stop is not None and max(layers) > stop:
        raise EmbedlensError(f"hidden state {max(layers)} needs blocks the model was loaded without (it has 0..{stop - 1})")
    device = execution_device(model_parts(model).embed)  # inputs go where the model is (a GPU worker's cuda)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch_lengths = lengths[idx]
            width = int(batch_lengths.max())
            ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.arange(width)[None, :] < batch_lengths[:, None]
            ids[mask] = np.concatenate([sequences[i] for i in idx])
            inputs = {"input_ids": torch.from_numpy(ids).to(device),
                      "attention_mask": torch.from_numpy(mask.astype(np.int64)).to(device)}
            if stop is not None:  # a partly loaded model: run blocks 0..stop-1 only
                hs = truncated_states(model, stop, **inputs)
            else:
                hs = base(**inputs, output_hidden_states=True, use_cache=False, return_dict=True).hidden_states
            states = torch.stack([hs[i] for i in layer_index.tolist()]).to(device="cpu", dtype=torch.float32)
            yield idx, states, batch_lengths
            if on_batch is not None:
                on_batch(len(idx))


@dataclass
class TextStates:
    """The kept tokens of one text and their hidden states.

    Attributes:
        text: the text as given.
        ids: array of shape (n_kept,), token ids.
        positions: array of shape (n_kept,), each token's position in the full tokenization.
        offsets: array of shape (n_kept, 2), each token's character span in ``text``.
        tokens: raw token strings; ``display``: readable ones (see :func:`embedlens.display.display_token`).
        special: bool array of shape (n_kept,).
        states: float32 array of shape (n_layers_kept, n_kept, d_model).
        n_tokens: length of the full tokenization (special tokens included).
    """

    text: str
    ids: np.ndarray
    positions: np.ndarray
    offsets: np.ndarray
    tokens: list[str]
    display: list[str]
    special: np.ndarray
    states: np.ndarray
    n_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "n_tokens": self.n_tokens, "ids": self.ids.tolist(), "positions": self.positions.tolist(),
                "offsets": self.offsets.tolist(), "tokens": list(self.tokens), "display": list(self.display),
                "states_shape": list(self.states.shape)}


@dataclass
class HiddenStates:
    """Hidden states of several texts through one model.

    Attributes:
        model: the model's manifest (spec, name, content hash, shapes).
        layers: hidden-state indices kept (0 = embeddings output, n_layers = last block).
        texts: one :class:`TextStates` per text, in input order.
        keep_special: whether special tokens were kept.
    """

    model: dict[str, Any]
    layers: list[int]
    texts: list[TextStates]
    keep_special: bool
    n_layers: int
    d_model: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.model.get("name") or self.model.get("spec"))

    @property
    def n_points(self) -> int:
        return sum(len(t.ids) for t in self.texts)

    def stacked(self) -> np.ndarray:
        """All kept states as one float32 matrix of shape (n_layers_kept * n_points, d_model), layer-major."""
        per_layer = [np.concatenate([t.states[li] for t in self.texts], axis=0) for li in range(len(self.layers))]
        return np.concatenate(per_layer, axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layers": list(self.layers), "keep_special": self.keep_special,
                "n_layers": self.n_layers, "d_model": self.d_model, "texts": [t.to_dict() for t in self.texts],
                "timings": dict(self.timings)}


def hidden_states(
    model: Any,
    texts: Sequence[str] | str,
    *,
    layers: LayerSpec = -1,
    keep_special: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> HiddenStates:
    """Hidden states of every token of ``texts`` at the chosen layers.

    Args:
        model: a model spec (``smollm2-135m``, a folder, a ``.gguf``) or a :class:`~embedlens.lens.ModelLens`.
        texts: one text or several.
        layers: ``-1`` (last), ``"all"`` (embeddings output + every block) or ``"0,6,12"``.
        keep_special: keep the states of BOS/CLS/SEP tokens too.
        batch_size: texts per forward pass (right-padded; results equal one text at a time).

    Returns:
        A :class:`HiddenStates`; ``texts[i].states`` has shape (n_layers_kept, n_kept_tokens, d_model).
    """
    texts = check_texts(texts)
    lens = as_lens(model)
    kept = layers_of(lens, layers)
    timings = Timings()
    with timings.stage("load_model"):
        net = network(lens, max(kept))
    with timings.stage("tokenize"):
        encoded = encode_batch(lens, texts)
        limit = max_positions(net)
        for i, enc in enumerate(encoded):
            if len(enc.ids) == 0:
                raise EmbedlensError(f"text {i + 1} produced no tokens")
            if limit is not None and len(enc.ids) > limit:
                raise EmbedlensError(f"text {i + 1} has {len(enc.ids)} tokens; {lens.name} takes at most {limit}: shorten it")
            if not keep_special and not (~enc.special).any():
                raise EmbedlensError(f"text {i + 1} has only special tokens; use `keep_special=True` or give words")
    with timings.stage("forward"):
        states: list[np.ndarray | None] = [None] * len(texts)
        for idx, hs, lengths in forward_batches(net, [e.ids for e in encoded], kept, batch_size=batch_size,
                                                pad=pad_id(lens, net)):
            arr = hs.numpy()
            for j, (i, n) in enumerate(zip(idx.tolist(), lengths.tolist(), strict=True)):
                keep = np.ones(n, dtype=bool) if keep_special else ~encoded[i].special
                states[i] = np.ascontiguousarray(arr[:, j, :n][:, keep])
    out = []
    for text, enc, st in zip(texts, encoded, states, strict=True):
        keep = np.ones(len(enc.ids), dtype=bool) if keep_special else ~enc.special
        ids = enc.ids[keep]
        positions = np.flatnonzero(keep).astype(np.int64)
        raw, shown = token_strings(lens, ids)
        assert st is not None
        out.append(TextStates(text, ids, positions, enc.offsets[keep], raw, shown, enc.special[keep], st, len(enc.ids)))
    timings["total"] = timings.since_start()
    runtime = {k: v for k, v in (getattr(net, "embedlens_loaded", None) or {}).items() if k != "device_map"}
    return HiddenStates(model={**lens.manifest(), "runtime": runtime}, layers=kept, texts=out, keep_special=keep_special,
                        n_layers=int(net.config.num_hidden_layers), d_model=int(net.config.hidden_size), timings=dict(timings))


