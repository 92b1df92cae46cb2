"""Batched prediction over grid cells, with an up-front memory guard.

Vectors are built per batch from the coordinates and pushed through the blocks; on a CPU the final norm,
the LM head and the top-5 then run on several whole batches at once (:func:`decode_rows`): the head's
matrix product costs less per row on hundreds of rows than on a hundred. Each row's numbers stay those of
its batch alone: BLAS rounds a row of a product the same way whatever the number of rows once there are a
dozen or more (measured on x86 MKL for 12 to 2,500 rows; 1 to 11 rows round differently), so batches under
:data:`MERGE_MIN` rows and the last, partial batch are decoded alone, as they always were, and other BLAS
libraries (not measured) decode every batch alone. Only each cell's top-5 ids and probabilities are
kept. Peak memory is the model plus one batch of block activations and one decode block of logits.
"""

from __future__ import annotations

import functools
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
# Logits decoded at once (float32): SmolLM2's 2,500-cell map in decodes of 600 rows instead of 100 took 8%
# less CPU on one thread and 40% less on two threads of a busy machine (its 113 MB head is streamed once per
# product); a vocabulary of 262,144 stays at one 100-cell batch.
DECODE_BYTES = 128 << 20
# Smaller batches are decoded alone: MKL's kernels for 1-11 rows round some products differently.
MERGE_MIN = 16


def logits_bytes_per_row(n_vocab: int, elem: int) -> int:
    """Memory of one decoded row: its logits and their float32 softmax temporaries."""
    return n_vocab * elem + 3 * n_vocab * 4


def bytes_per_batch_cell(d_model: int, d_ff: int, n_vocab: int, elem: int) -> int:
    """Working memory of one cell of a batch: block activations plus its decoded row (:func:`logits_bytes_per_row`)."""
    return (10 * d_model + 4 * d_ff) * elem + logits_bytes_per_row(n_vocab, elem)


@functools.cache
def _merging_is_exact() -> bool:
    """Whether this CPU's matrix products are the measured kind (x86 with MKL), where merging is bit-exact."""
    import platform

    import torch

    return platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkl.is_available()


def decode_rows(batch_size: int, n_vocab: int, *, device: str = "cpu", budget: int | None = None) -> int:
    """Rows decoded at once on ``device``: on an x86 CPU with MKL the most whole batches whose float32 logits fit
    ``budget`` bytes (default :data:`DECODE_BYTES`); one batch on other devices and BLAS libraries and for
    batches under :data:`MERGE_MIN`."""
    budget = DECODE_BYTES if budget is None else budget
    if device != "cpu" or batch_size < MERGE_MIN or not _merging_is_exact():
        return batch_size
    return batch_size * max(1, budget // (4 * n_vocab * batch_size))


def decode_extra_bytes(batch_size: int, n_cells: int, n_vocab: int, elem: int, *, device: str = "cpu") -> int:
    """Memory that decoding :func:`decode_rows` rows at once adds to one batch's decoded rows, for a map of
    ``n_cells`` (only whole batches merge: the rows past one batch, at :func:`logits_bytes_per_row` each)."""
    b = max(1, min(int(batch_size), n_cells))
    merged = min(decode_rows(b, n_vocab, device=device), n_cells - n_cells % b)
    return max(0, merged - b) * logits_bytes_per_row(n_vocab, elem)


def decode_spans(n_cells: int, batch_size: int, rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each decode: ``rows`` cells (whole batches) at a time, the last partial batch alone."""
    full = n_cells - n_cells % batch_size
    spans = [(s, min(s + rows, full)) for s in range(0, full, rows)]
    return spans + ([(full, n_cells)] if full < n_cells else [])


def estimate_peak_bytes(batch_size: int, n_cells: int, per_cell: int) -> int:
    return batch_size * per_cell + n_cells * _PER_CELL_RESULT_BYTES + (64 << 20)


def _fmt(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(batch_size: int, n_cells: int, per_cell: int, *, available: int | None = None,
                 extra: Callable[[int], int] | None = None) -> int:
    """Refuse, before any work, a batch whose estimated peak exceeds the free memory; returns the estimate.

    ``extra(batch_size)``: bytes needed besides the batch and the results at that batch size (the decode
    block's rows past one batch's, :func:`decode_extra_bytes`); the advice names the largest batch whose
    own need fits.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise EmbedlensError(f"batch size must be an integer >= 1, got {batch_size!r}")
    batch_size = min(int(batch_size), n_cells)
    extra_of = extra or (lambda _b: 0)

    def need_of(b: int) -> int:
        return estimate_peak_bytes(b, n_cells, per_cell) + extra_of(b)

    need = need_of(batch_size)

    free = hardware.available_memory() if available is None else available
    if free is None:
        return need
    budget = int(free * _HEADROOM)
    if need > budget:
        # The decode block's extra is not monotone in the batch (small batches decode alone): search down.
        fits = next((b for b in range(batch_size - 1, 0, -1) if need_of(b) <= budget), 0)
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
        batch_size: cells per pass through the blocks (the decode takes :func:`decode_rows` cells at once).
    """
    import torch

    k = min(k, runner.n_vocab)
    ids = np.empty((n_cells, k), dtype=np.int64)
    probs = np.empty((n_cells, k), dtype=np.float32)

    show = n_cells > 20 * batch_size if progress is None else progress
    rows = decode_rows(batch_size, runner.n_vocab, device=runner.device.type)
    timings = Timings()
    with timings.stage("predict"), torch.inference_mode(), bar(n_cells, "grid", enabled=bool(show)) as advance:
        for s, e in decode_spans(n_cells, batch_size, rows):
            hidden = [runner.final_hidden(vectors_for(b, min(b + batch_size, e)), layer)
                      for b in range(s, e, batch_size)]
            ids[s:e], probs[s:e], _ = runner.decode_top_k(torch.cat(hidden) if len(hidden) > 1 else hidden[0], k,
                                                          chunk_rows=e - s)
            advance(e - s)
    return ids, probs, timings["predict"]
