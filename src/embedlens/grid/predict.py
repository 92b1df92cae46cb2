"""Batched prediction over grid cells, with an up-front memory guard.

Vectors are built per batch from the coordinates, pushed through the blocks, the final norm and the LM
head; only each cell's top-5 ids and probabilities are kept. Peak memory is the model plus one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import hardware  # called through the module: tests stand in for it there
from ..errors import EmbedlensError
from ..progress import bar
from ..timing import Timings

TOP_K = 5
_HEADROOM = 0.85  # use at most this share of MemAvailable
# Per cell of the whole map while it is written: the arrays are ~160 bytes, but the JSON text (~1.7 KB
# measured at 200x200) and the Plotly HTML with its hover text (~3.3 KB) dominate.
_PER_CELL_RESULT_BYTES = 4096


def bytes_per_batch_cell(d_model: int, d_ff: int, n_vocab: int, elem: int) -> int:
    """Working memory of one cell of a batch: block activations plus logits and their float32 softmax temporaries."""
    activations = (10 * d_model + 4 * d_ff) * elem
    logits = n_vocab * elem + (3 * n_vocab * 4)
    return activations + logits


def estimate_peak_bytes(batch_size: int, n_cells: int, per_cell: int) -> int:
    return batch_size * per_cell + n_cells * _PER_CELL_RESULT_BYTES + (64 << 20)


def _fmt(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(batch_size: int, n_cells: int, per_cell: int, *, available: int | None = None) -> int:
    """Refuse, before any work, a batch whose estimated peak exceeds the free memory; returns the estimate."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise EmbedlensError(f"batch size must be an integer >= 1, got {batch_size!r}")
    batch_size = min(int(batch_size), n_cells)
    need = estimate_peak_bytes(batch_size, n_cells, per_cell)

    free = hardware.available_memory() if available is None else available
    if free is None:
        return need
    budget = int(free * _HEADROOM)
    if need > budget:
        fits = (budget - estimate_peak_bytes(0, n_cells, per_cell)) // per_cell
        if fits >= 1:
            advice = f"`batch_size={int(fits)}` would fit"
        else:  # the map's own results are too big: only a smaller grid helps
            side = int(np.sqrt(max(0, budget - estimate_peak_bytes(1, 0, per_cell)) / _PER_CELL_RESULT_BYTES))
            advice = f"the map itself is too large: use `grid_size={side}` or less"
        raise EmbedlensError(
            f"estimated peak memory {_fmt(need)} for batch size {batch_size} ({n_cells} cells) exceeds the "
            f"{_fmt(budget)} that can be used of {_fmt(free)} free: {advice}"
        )
    return need


def predict_top_k(
    runner: Any,
    vectors_for: Callable[[int, int], Any],
    n_cells: int,
    layer: int,
    *,
    batch_size: int = 100,
    k: int = TOP_K,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-k ids (n_cells, k) int64 and probabilities (n_cells, k) float32 of every cell, and the seconds spent.

    Args:
        runner: a :class:`~embedlens.models.forward.BlockRunner`.
        vectors_for: ``vectors_for(start, stop)`` -> residual vectors (stop - start, d_model) of those cells.
        n_cells: how many cells.
        layer: the block the vectors are fed to (0 .. n_layers).
    """
    import torch

    k = min(k, runner.n_vocab)
    ids = np.empty((n_cells, k), dtype=np.int64)
    probs = np.empty((n_cells, k), dtype=np.float32)

    show = n_cells > 20 * batch_size if progress is None else progress
    timings = Timings()
    with timings.stage("predict"), torch.inference_mode(), bar(n_cells, "grid", enabled=bool(show)) as advance:
        for s in range(0, n_cells, batch_size):
            e = min(s + batch_size, n_cells)
            top_ids, top_p = runner.topk(vectors_for(s, e), layer, k)
            ids[s:e] = top_ids.cpu().numpy()
            probs[s:e] = top_p.cpu().numpy()
            advance(e - s)
    return ids, probs, timings["predict"]
