"""gguf's own ``GGUFReader``, reading through a plain array view of the file map instead of the map itself.

The stock reader slices its ``np.memmap`` once or twice for every metadata value, and every slice of a
memmap is a new memmap whose ``__array_finalize__`` runs in Python. A GGUF stores its vocabulary as
metadata (tokens, scores, token types), so Gemma 3's 262,144 tokens cost ~30 s on two cores before any
tensor is read, and transformers opens the file once for the config, once for the tokenizer and once for
the weights. Slicing a plain ndarray view of the same map gives the same bytes at a fraction of the cost;
the parse itself stays gguf's. Within one :func:`fast_gguf_reader` block a file is parsed once, however many
loaders open it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_PATCH_LOCK = threading.RLock()
# Readers opened inside the current fast_gguf_reader block (depth > 0), by file identity; cleared when it ends,
# so the millions of small field arrays of a vocabulary are not kept for the life of the process.
_OPEN: dict[tuple[str, int, int], Any] = {}
_DEPTH = [0]
# gguf's tensor-name maps built inside the block, by (architecture, blocks): transformers' weight loader asks for
# one per module it converts (397 times for SmolLM2, ~24 ms each: about half of its dequantization).
_NAME_MAPS: dict[tuple[Any, int], Any] = {}


@lru_cache(maxsize=1)
def reader_class() -> type:
    """``GGUFReader`` with a fast ``_get``: same fields, same tensors, same bytes."""
    # from the defining module: fast_gguf_reader swaps only gguf.GGUFReader
    import numpy as np
    from gguf.gguf_reader import GGUFReader

    itemsizes: dict[Any, int] = {}

    class FastGGUFReader(GGUFReader):
        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            plain = self.__dict__.get("_plain")
            if plain is None:
                plain = self._plain = np.asarray(self.data)  # a base-class view: shares the map, no copy
            size = itemsizes.get(dtype)
            if size is None:
                size = itemsizes[dtype] = int(np.dtype(dtype).itemsize)
            count = int(count)
            arr = plain[offset:offset + size * count].view(dtype=dtype)[:count]
            return arr.view(arr.dtype.newbyteorder(self.byte_order if override_order is None else override_order))

    return FastGGUFReader


def open_reader(path: str, mode: str = "r") -> Any:
    """A reader of the GGUF at ``path`` (raises what gguf raises on a damaged file); inside a
    :func:`fast_gguf_reader` block, the one already opened there."""
    if mode != "r" or not _DEPTH[0]:
        return reader_class()(path, mode)
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    with _PATCH_LOCK:
        reader = _OPEN.get(key)
        if reader is None:
            reader = _OPEN[key] = reader_class()(path)
        return reader


@contextlib.contextmanager
def fast_gguf_reader() -> Iterator[None]:
    """Let transformers' GGUF loaders (config, tokenizer, weights) read through the fast reader, each file
    parsed once for the whole block, and each of gguf's tensor-name maps built once.

    transformers imports ``gguf.GGUFReader`` when it loads, so the module attribute is swapped for the
    duration of the block and restored after; the reentrant lock keeps threads from restoring it under
    each other (a second thread's GGUF load waits for the first).
    """
    import gguf

    with _PATCH_LOCK:
        stock, stock_name_map = gguf.GGUFReader, gguf.get_tensor_name_map

        def name_map(arch: Any, n_blocks: int) -> Any:
            key = (arch, int(n_blocks))
            found = _NAME_MAPS.get(key)
            if found is None:
                found = _NAME_MAPS[key] = stock_name_map(arch, n_blocks)
            return found

        gguf.GGUFReader, gguf.get_tensor_name_map = open_reader, name_map
        _DEPTH[0] += 1
        try:
            yield
        finally:
            _DEPTH[0] -= 1
            if not _DEPTH[0]:
                _OPEN.clear()
                _NAME_MAPS.clear()
            gguf.GGUFReader, gguf.get_tensor_name_map = stock, stock_name_map
