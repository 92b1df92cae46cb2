"""The decoded top-3 of every point of a context map (logit lens or tuned lens), for its hover text.

A point of a causal LM's context map at layer ``l`` is the residual stream after ``l`` blocks; decoded by
the model's own head (:meth:`embedlens.models.forward.BlockRunner.decode`, the one decode the logit lens
and the grid use), it says what the model would predict from there. The decoder is the logit lens (the
state as it is) or a tuned lens (:class:`~embedlens.logitlens.translators.TunedLens`: the layer's affine
translator first). transformers hands back the last layer already normed, so rows of layer ``n_layers``
(which no translator moves) skip the norm. Above :data:`MAX_ROWS` points x layers (each row is a product
with the whole unembedding) the hovers go without it, and a note says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..logitlens.translators import LogitLens, TunedLens
from ..models.forward import runner_for
from ..models.running import network

if TYPE_CHECKING:
    from ..lens import ModelLens

K = 3
MAX_ROWS = 4096


def add_decoded_top(table: dict[str, Any], lens: ModelLens, states: np.ndarray, *, k: int = K,
                    max_rows: int = MAX_ROWS, decoder: LogitLens | TunedLens | None = None) -> str | None:
    """Add ``decoded_ids``, ``decoded_probs``, ``decoded_display`` (rows, k) and ``decoded_tuned`` (rows,) to a context-map table.

    Args:
        table: a panel's table (layer-major rows, with a ``layer`` column).
        lens: the panel's :class:`~embedlens.lens.ModelLens`.
        states: array of shape (rows, d_model): the points' hidden states, in the table's row order.
        decoder: the logit lens (None) or a tuned lens already checked against ``lens``
            (:func:`~embedlens.logitlens.tuned_files.resolve_decoder`, before any weight is read).

    Returns:
        A note when the top-3 was not computed (too many rows), else None. Encoders get nothing, silently.
    """
    meta = getattr(lens, "meta", {}) or {}
    if not meta.get("causal") or not meta.get("has_output", True):
        return None
    n = int(states.shape[0])
    if n > max_rows:
        return (f"{getattr(decoder, 'kind', 'logit')}-lens hovers left out: {n:,} points x layers is above {max_rows:,} "
                "(each is a product with the whole unembedding); map fewer occurrences or layers to get them")

    layer = np.asarray(table["layer"])
    # the network the states came from (blocks up to the deepest layer shown, final norm and head)
    runner = runner_for(lens, network(lens, int(layer.max())))
    normed = layer == runner.n_layers
    ids = np.zeros((n, k), dtype=np.int64)
    probs = np.zeros((n, k), dtype=np.float32)
    if isinstance(decoder, TunedLens) and (~normed).any():
        states = translated(decoder, states, layer, ~normed)
    for mask, is_normed in ((~normed, False), (normed, True)):
        if mask.any():
            ids[mask], probs[mask], _ = runner.decode_top_k(states[mask], k, normed=is_normed)
    display = np.asarray(list(lens.space.display) + ["⟪unused⟫"], dtype=object)
    table["decoded_ids"] = ids
    table["decoded_probs"] = probs
    table["decoded_display"] = display[np.minimum(ids, len(display) - 1)]
    table["decoded_tuned"] = np.full(n, isinstance(decoder, TunedLens))   # which decoder the hovers name
    return None


def translated(decoder: TunedLens, states: np.ndarray, layer: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``states`` (float32) with the rows in ``rows`` moved by the translator of their layer (one product per layer)."""
    import torch

    out = np.array(states, dtype=np.float32, copy=True)
    for v in np.unique(layer[rows]):
        pick = rows & (layer == v)
        x = torch.from_numpy(out[pick])
        out[pick] = decoder.translate(x[None], [int(v)])[0].numpy()
    return out
