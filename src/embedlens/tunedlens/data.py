"""Token sequences for training and evaluating tuned lenses, read from a corpus in bounded memory.

The corpus's documents are tokenized in order (no special tokens), joined into one stream and cut into
sequences of ``seq_len`` tokens, as the ``tuned-lens`` package's ``chunk_and_tokenize`` does. Only the
tokens asked for are read; a corpus that is too short is measured to the end to say how many it has.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..corpus import Corpus, open_corpus
from ..errors import EmbedlensError

CHUNK_CHARS = 1 << 17


def as_corpus(corpus: Any) -> Corpus:
    return corpus if isinstance(corpus, Corpus) else open_corpus(corpus)


def corpus_hash(corpus: Corpus) -> str:
    """One SHA-256 over the corpus files' digests (what a manifest records)."""
    import hashlib

    files = corpus.manifest()["files"]
    return hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()


def corpus_tokens(model: Any, corpus: Corpus, n_tokens: int, *, skip: int = 0, what: str = "") -> np.ndarray:
    """Tokens ``skip .. skip + n_tokens`` of the corpus's token stream (int64), or a one-line error saying how
    many tokens the corpus has."""
    need = skip + n_tokens
    parts: list[np.ndarray] = []
    have = 0
    fast = model.fast_tokenizer
    for chunk in corpus.iter_chunks(CHUNK_CHARS):
        ids = fast.encode(chunk, add_special_tokens=False).ids if fast is not None else model.encode(
            chunk, add_special_tokens=False)
        parts.append(np.asarray(ids, dtype=np.int64))
        have += len(ids)
        if have >= need:
            break
    if have < need:
        name = ", ".join(corpus.specs)
        raise EmbedlensError(f"the corpus {name} has {have:,} tokens for {model.name}; {what or 'this'} needs {need:,}"
                             f" (give fewer `tokens` or a larger `corpus`)")
    return np.concatenate(parts)[skip:need]


def sequences(tokens: np.ndarray, seq_len: int) -> np.ndarray:
    """``tokens`` cut into rows of ``seq_len`` (a shorter tail is dropped): int64 (n_seq, seq_len)."""
    n = len(tokens) // seq_len
    return tokens[: n * seq_len].reshape(n, seq_len)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise EmbedlensError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
