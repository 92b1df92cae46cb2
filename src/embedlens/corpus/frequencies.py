"""Token frequencies of a corpus, counted the way the model sees the text.

For a language model the corpus is tokenized with the model's own tokenizer (the fast ``tokenizers``
object from the cache, no special tokens added) and the ids are counted with ``np.bincount``; for a
plain word space (GloVe, TF-IDF, ...) words are ``\\w+`` runs, lowercased, counted and mapped to rows.

The corpus is streamed: each file is read in chunks (:meth:`Corpus.iter_chunks`), every chunk is cut
into pieces at whitespace and the pieces are encoded in parallel with ``encode_batch``, so memory stays
bounded whatever the corpus size. A run of whitespace at the end of a chunk is carried over to the start
of the next one: a cut then always falls where a byte-level BPE or WordPiece pre-tokenizer splits anyway,
so the counts equal those of tokenizing each file whole. (Tokenizers that do not split at whitespace,
such as SentencePiece models without a pre-tokenizer, can differ at the few chunk boundaries.)
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .reading import CHUNK_CHARS, Corpus

PIECE_CHARS = 1 << 13  # what one encode_batch item holds: big enough to amortise, small enough to parallelise
WORD_RE = re.compile(r"\w+")
_TRAILING_SPACE = re.compile(r"\s+\Z")
_WORD_END = re.compile(r"\S\s")


@dataclass
class TokenFrequencies:
    """How often each row of a space occurs in a corpus.

    Attributes:
        counts: int64 array of shape (n_rows,), the count of each row of the space (row order, not id order).
        n_tokens: tokens (or words) counted in all, including those outside the space.
        n_outside: tokens whose id is outside the matrix, or words that are not in the word space.
        n_bytes: bytes of text read.
        method: ``"tokenizer"`` (the model's tokenizer) or ``"words"`` (``\\w+``, lowercased).
        corpus: the corpus manifest (specs, files with their SHA-256, skipped files).
        seconds: time spent counting.
    """

    counts: np.ndarray
    n_tokens: int
    n_outside: int
    n_bytes: int
    method: str
    corpus: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_distinct(self) -> int:
        return int(np.count_nonzero(self.counts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_tokens": int(self.n_tokens),
            "n_distinct": self.n_distinct,
            "n_outside": int(self.n_outside),
            "n_bytes": int(self.n_bytes),
            "seconds": round(self.seconds, 3),
            "corpus": self.corpus,
        }


def split_at_whitespace(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Cut ``text`` into pieces of about ``size`` characters, each cut at the start of a whitespace run.

    Joining the pieces gives ``text`` back; a piece only ends where a whitespace run begins, so a
    whitespace-splitting pre-tokenizer sees the same pre-tokens as in the whole text.
    """
    if len(text) <= size:
        return [text]
    pieces: list[str] = []
    start, n = 0, len(text)
    while n - start > size:
        target = start + size
        cut = max(text.rfind(" ", start + 1, target), text.rfind("\n", start + 1, target),
                  text.rfind("\t", start + 1, target))
        while cut > start + 1 and text[cut - 1].isspace():  # back to the first character of the run
            cut -= 1
        if cut <= start or text[cut - 1].isspace():  # no usable cut before the target: take the next one
            m = _WORD_END.search(text, target)
            if m is None:
                break
            cut = m.start() + 1
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _file_texts(corpus: Corpus, chunk_chars: int) -> Iterator[tuple[str, int]]:
    """``(text, n_bytes)`` per chunk, each file on its own, trailing whitespace carried to the next chunk."""
    for f in corpus.files:
        carry = ""
        for chunk in Corpus(corpus.specs, [f]).iter_chunks(chunk_chars):
            n_bytes = len(chunk.encode("utf-8", errors="replace"))
            text = carry + chunk
            m = _TRAILING_SPACE.search(text)
            if m is not None and m.start() > 0 and len(text) - m.start() <= chunk_chars:
                carry, text = text[m.start():], text[: m.start()]
            else:
                carry = ""
            yield text, n_bytes
        if carry:
            yield carry, 0


def _tokenizer_encoder(lens: Any):
    """A function list[str] -> list[list[int]] using the model's own tokenizer, no special tokens added."""
    fast = lens.fast_tokenizer
    if fast is not None:
        # encode_batch_fast skips character offsets (about twice as fast); older tokenizers lack it.
        batch_encode = getattr(fast, "encode_batch_fast", fast.encode_batch)

        def encode(batch: list[str]) -> Iterator[list[int]]:
            return (e.ids for e in batch_encode(batch, add_special_tokens=False))
        return encode
    tok = lens.tokenizer

    def encode_slow(batch: list[str]) -> Iterator[list[int]]:
        return iter(tok(batch, add_special_tokens=False)["input_ids"])
    return encode_slow


def count_tokens(lens: Any, corpus: Corpus, *, which: str = "input", chunk_chars: int = CHUNK_CHARS,
                 progress: bool = True) -> TokenFrequencies:
    """Count how often each row of ``lens``'s space occurs in ``corpus``.

    Args:
        lens: a :class:`~embedlens.lens.ModelLens` (counted with its tokenizer) or a
            :class:`~embedlens.lens.SpaceLens` word space (``\\w+`` words, lowercased).
        corpus: an opened :class:`~embedlens.corpus.Corpus`.
        which: the model space the rows refer to (``input`` or ``output``).
        chunk_chars: characters read per chunk (memory stays about a few times this).
        progress: show a progress bar by bytes on stderr (only on a terminal, for corpora over 1 MB).

    Returns:
        :class:`TokenFrequencies` with ``counts`` of shape (n_rows,) in the space's row order.
    """
    started = time.perf_counter()
    space = lens.get_space(which)
    n_rows = len(space)
    has_tokenizer = hasattr(lens, "fast_tokenizer")
    total = corpus.total_bytes
    read = 0
    n_tokens = 0
    if has_tokenizer:
        encode = _tokenizer_encoder(lens)
        ids_max = int(np.max(space.ids)) + 1 if n_rows else 0
        by_id = np.zeros(ids_max, dtype=np.int64)
        n_outside = 0
    else:
        row_of_label = space.row_of_label
        by_row = np.zeros(n_rows, dtype=np.int64)
        n_outside = 0
    from ..progress import bar

    with bar(total, "counting tokens", enabled=progress, unit="bytes", min_total=1 << 20) as advance:
        for text, n_bytes in _file_texts(corpus, chunk_chars):
            if has_tokenizer:
                batch = split_at_whitespace(text)
                ids = np.fromiter(itertools.chain.from_iterable(encode(batch)), dtype=np.int64)
                n_tokens += ids.size
                inside = ids[(ids >= 0) & (ids < ids_max)]
                n_outside += ids.size - inside.size
                by_id += np.bincount(inside, minlength=ids_max)
            else:
                # Count the chunk, keep only words of the space: memory is bounded by one chunk's words.
                chunk_words = Counter(WORD_RE.findall(text.lower()))
                known = list(chunk_words.keys() & row_of_label.keys())
                n_chunk = sum(chunk_words.values())
                n_tokens += n_chunk
                if known:
                    rows = np.fromiter((row_of_label[w] for w in known), dtype=np.int64, count=len(known))
                    values = np.fromiter((chunk_words[w] for w in known), dtype=np.int64, count=len(known))
                    np.add.at(by_row, rows, values)
                    n_chunk -= int(values.sum())
                n_outside += n_chunk
            read += n_bytes
            advance(n_bytes)
    if has_tokenizer:
        counts = by_id[np.asarray(space.ids, dtype=np.int64)]
        method = "tokenizer"
    else:
        counts = by_row
        method = "words"
    return TokenFrequencies(counts=counts, n_tokens=int(n_tokens), n_outside=int(n_outside), n_bytes=read,
                            method=method, corpus=corpus.manifest(), seconds=time.perf_counter() - started)


def token_frequencies(lens: Any, corpus: str | list[str] | Corpus, *, which: str = "input",
                      progress: bool = True) -> TokenFrequencies:
    """:func:`count_tokens` for corpus specs (files, folders, ``lee``, ``enwiki-sample``) or an opened corpus."""
    from .reading import open_corpus

    if not isinstance(corpus, Corpus):
        corpus = open_corpus(corpus)
    freqs = count_tokens(lens, corpus, which=which, progress=progress)
    if freqs.n_tokens == 0:
        raise EmbedlensError(f"the corpus {', '.join(corpus.specs)} produced no tokens")
    return freqs
