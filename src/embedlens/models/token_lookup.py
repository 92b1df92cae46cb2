"""Texts the tokenizer encodes as exactly one token, kept beside it so a one-token query needs no tokenizer.

Loading a ``tokenizer.json`` takes about 0.1 s for SmolLM2 and a second for Gemma: more than the rest of
``embedlens neighbors king``. Most queries are one token, so the cache entry keeps, once, every text the
tokenizer itself encodes (without special tokens added) as exactly one id: each id is decoded, the text
encoded again, and the texts that come back as that id alone are stored as xxh3 hashes (sorted), ids, and
UTF-8 bytes. A lookup hashes the query, finds it by binary search and compares the stored bytes, so what it
returns is always the tokenizer's own answer; a text not stored is the tokenizer's to encode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path
from ..errors import EmbedlensError
from ..safetensors_mmap import read_header, read_tensors, write_tensors

log = logging.getLogger("embedlens")

SINGLE_TOKENS_FILE = "single_tokens.safetensors"
_FORMAT = "embedlens single-token texts v1"


def _hash(data: bytes) -> int:
    import xxhash

    h = xxhash.xxh3_64_intdigest(data)
    return h - (1 << 64) if h >= 1 << 63 else h  # stored as int64: the reader maps signed integers


def read_fast_tokenizer(path: Path) -> Any:
    """The ``tokenizers.Tokenizer`` of a ``tokenizer.json``, as queries use it: no padding, no truncation
    (some files, MiniLM's, pad every input to a fixed length: a word would come back with 127 [PAD] ids)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def single_token_texts(tokenizer: Any, ids: Any = None) -> tuple[list[str], np.ndarray]:
    """The texts a ``tokenizers.Tokenizer`` encodes (no special tokens added) as exactly one id, and those ids.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        ids: the token ids to try (default every id of the vocabulary, added tokens included).
    """
    if ids is None:
        ids = range(tokenizer.get_vocab_size(with_added_tokens=True))
    ids = [int(i) for i in ids]
    texts = tokenizer.decode_batch([[i] for i in ids], skip_special_tokens=False)
    encoded = tokenizer.encode_batch(texts, add_special_tokens=False)
    keep = [k for k, (i, text, enc) in enumerate(zip(ids, texts, encoded, strict=True)) if text and enc.ids == [i]]
    return [texts[k] for k in keep], np.asarray([ids[k] for k in keep], dtype=np.int64)


class SingleTokenIndex:
    """The stored one-token texts of a tokenizer; ``lookup(text)`` is its id, or None (ask the tokenizer)."""

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> None:
        self.hashes, self.ids, self.offsets, self.data = hashes, ids, offsets, data

    @classmethod
    def build(cls, tokenizer: Any, ids: Any = None) -> SingleTokenIndex:
        """The index of ``tokenizer`` (over ``ids`` only, when given: see :func:`single_token_texts`)."""
        texts, ids = single_token_texts(tokenizer, ids)
        raw = [t.encode("utf-8") for t in texts]
        hashes = np.fromiter((_hash(b) for b in raw), dtype=np.int64, count=len(raw))
        order = np.argsort(hashes, kind="stable")
        raw = [raw[i] for i in order]
        lengths = np.fromiter((len(b) for b in raw), dtype=np.int64, count=len(raw))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        data = np.frombuffer(b"".join(raw), dtype=np.uint8)
        return cls(hashes[order], ids[order], offsets, data)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def lookup(self, text: str) -> int | None:
        """The one id the tokenizer encodes ``text`` as, or None when the text is not one stored token."""
        raw = text.encode("utf-8", errors="surrogatepass")
        h = _hash(raw)
        lo = int(np.searchsorted(self.hashes, h, side="left"))
        hi = int(np.searchsorted(self.hashes, h, side="right"))
        for i in range(lo, hi):  # more than one only for a 64-bit hash collision
            if self.data[self.offsets[i]:self.offsets[i + 1]].tobytes() == raw:
                return int(self.ids[i])
        return None

    def save(self, path: Path, *, tokenizer_digest: str) -> None:
        tensors = {"hashes": self.hashes, "ids": self.ids, "offsets": self.offsets, "data": self.data}
        with atomic_path(path) as tmp:
            write_tensors(tensors, tmp, metadata={"format": _FORMAT, "tokenizer": tokenizer_digest})

    @classmethod
    def load(cls, path: Path, *, tokenizer_digest: str) -> SingleTokenIndex | None:
        """The index saved at ``path`` (memory-mapped) for the tokenizer file of digest ``tokenizer_digest``;
        None when there is none, it is unreadable, or it was built from another tokenizer."""
        if not path.is_file():
            return None
        try:
            meta = read_header(path)[0].get("__metadata__") or {}
            if meta.get("format") != _FORMAT or meta.get("tokenizer") != tokenizer_digest:
                return None
            t = read_tensors(path)
            index = cls(t["hashes"], t["ids"], t["offsets"], t["data"])
        except (EmbedlensError, KeyError, OSError, ValueError):
            return None
        if index.offsets.shape != (len(index) + 1,) or int(index.offsets[-1]) != index.data.shape[0]:
            return None
        return index


def open_index(folder: Path, tokenizer_digest: str) -> SingleTokenIndex | None:
    """The index kept in ``folder`` for the tokenizer file of digest ``tokenizer_digest``, if it was built."""
    return SingleTokenIndex.load(folder / SINGLE_TOKENS_FILE, tokenizer_digest=tokenizer_digest)


def build_index(folder: Path, tokenizer: Any, tokenizer_digest: str) -> SingleTokenIndex | None:
    """Build the index of ``tokenizer`` and keep it in ``folder``; None where ``folder`` cannot be written (an
    index no later process could read would cost every process a pass over the vocabulary)."""
    if not os.access(folder, os.W_OK):
        return None
    path = folder / SINGLE_TOKENS_FILE
    index = SingleTokenIndex.build(tokenizer)
    try:
        index.save(path, tokenizer_digest=tokenizer_digest)
    except OSError as exc:  # a read-only cache still answers; it only keeps loading the tokenizer
        log.debug("could not save %s: %s", path, exc)
    return index
