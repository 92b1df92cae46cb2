"""gguf's own ``GGUFReader``, reading through a plain array view of the file map instead of the map itself.

The stock reader slices its ``np.memmap`` once or twice for every metadata value, and every slice of a
memmap is a new memmap whose ``__array_finalize__`` runs in Python. A GGUF stores its vocabulary as
metadata (tokens, scores, token types), so Gemma 3's 262,144 tokens cost ~30 s on two cores before any
tensor is read, and transformers opens the file once for the config, once for the tokenizer and once for
the weights. Slicing a plain ndarray view of the same map gives the same bytes at a fraction of the cost;
the parse itself stays gguf's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

_PATCH_LOCK = threading.RLock()


@lru_cache(maxsize=1)
def reader_class() -> type:
    """``GGUFReader`` with a fast ``_get``: same fields, same tensors, same bytes."""
    import numpy as np
    from gguf import GGUFReader

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


def open_reader(path: str) -> Any:
    """A reader of the GGUF at ``path`` (raises what gguf raises on a damaged file)."""
    return reader_class()(path)


@contextlib.contextmanager
def fast_gguf_reader() -> Iterator[None]:
    """Let transformers' GGUF loaders (config, tokenizer, weights) read through the fast reader.

    transformers imports ``gguf.GGUFReader`` when it loads, so the module attribute is swapped for the
    duration of the load and restored after; the reentrant lock keeps threads from restoring it under
    each other.
    """
    import gguf

    with _PATCH_LOCK:
        stock = gguf.GGUFReader
        gguf.GGUFReader = reader_class()
        try:
            yield
        finally:
            gguf.GGUFReader = stock
