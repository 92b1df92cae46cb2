"""TF-IDF word vectors: a word is described by how characteristic it is of each of N documents.

This is the primer's first embedding. The corpus's word sequence (lowercase ``\\w+`` matches unless
``keep_case``) is cut into N consecutive chunks of equal word count the way ``numpy.array_split`` cuts
an array (the first ``n_words % N`` chunks hold one word more); the chunks are the documents. With
``count(t, d)`` the occurrences of word t in document d and ``len(d)`` its number of words:

    tf(t, d)  = count(t, d) / len(d)
    idf(t)    = ln(N / number of documents containing t)
    tfidf     = tf * idf

Each word's vector is its TF-IDF in every document: a matrix of shape (n_words, N). A word found in
every document has idf 0 and so a zero vector. ``min_count`` only drops rows: document lengths always
count every word. Rows are ordered by total count, most frequent first (ties alphabetical).

Counting is vectorised: words become integer ids with ``numpy.unique(return_inverse=True)`` one text
chunk at a time (so only the int32 id sequence of the whole corpus is held), and each document's
counts come from one ``numpy.bincount``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.reading import Corpus, open_corpus
from ..errors import EmbedlensError
from ..spaces.space import EmbeddingSpace
from ..timing import Timings
from ..versions import versions

WORD_PATTERN = re.compile(r"\w+")
GROUP_CHARS = 1 << 20  # text handled per numpy.unique call: bounds memory, amortises the per-call cost
_MAX_UNICODE_CELLS = 1 << 26  # beyond this a fixed-width '<U' array would be wasteful: use objects


def words_of(text: str, *, keep_case: bool = False) -> list[str]:
    """The ``\\w+`` words of ``text``, lowercased unless ``keep_case`` (the same words as TF-IDF sees)."""
    words = WORD_PATTERN.findall(text)
    if keep_case or not words:
        return words
    # One C-level lower() over the joined words; no word holds a newline, so the split restores them.
    return "\n".join(words).lower().split("\n")


def _unique_words(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    longest = max(map(len, words))
    arr = np.array(words, dtype=object if longest * len(words) > _MAX_UNICODE_CELLS else f"<U{longest}")
    uniq, inverse = np.unique(arr, return_inverse=True)
    return uniq, inverse.ravel()


def _lower(uniq: np.ndarray) -> np.ndarray:
    if uniq.dtype == object:
        return np.array([w.lower() for w in uniq], dtype=object)  # one call per distinct word
    # Lowercasing can lengthen a word ('İ' becomes 'i' + U+0307) and numpy keeps the input's width: widen first.
    return np.char.lower(uniq.astype(f"<U{2 * max(uniq.dtype.itemsize // 4, 1)}"))


def _grouped(texts: Iterable[str], size: int) -> Iterable[str]:
    """Join small texts into pieces of about ``size`` characters (fewer, larger numpy calls)."""
    buffer: list[str] = []
    held = 0
    for text in texts:
        buffer.append(text)
        held += len(text)
        if held >= size:
            yield "\n".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield "\n".join(buffer)


def word_ids(texts: Iterable[str], *, keep_case: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Map the words of a text stream to integer ids.

    Returns:
        ``(vocab, ids)``: ``vocab`` the sorted distinct words (a numpy string array), ``ids`` an int32
        array with one entry per word occurrence, in corpus order, indexing ``vocab``.
    """
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    for text in _grouped(texts, GROUP_CHARS):
        words = WORD_PATTERN.findall(text)
        if not words:
            continue
        uniq, inverse = _unique_words(words)
        if not keep_case:  # lowercase the distinct words only, then merge the ones that now coincide
            uniq, merge = np.unique(_lower(uniq), return_inverse=True)
            inverse = merge.ravel()[inverse]
        pieces.append((uniq, inverse.astype(np.int32)))
    if not pieces:
        return np.array([], dtype="<U1"), np.zeros(0, dtype=np.int32)
    vocab = np.unique(np.concatenate([u for u, _ in pieces]))
    ids = np.concatenate([np.searchsorted(vocab, u).astype(np.int32)[inv] for u, inv in pieces])
    return vocab, ids


def chunk_bounds(n_words: int, n_chunks: int) -> np.ndarray:
    """Start offsets of ``n_chunks`` consecutive chunks of ``n_words`` as ``numpy.array_split`` makes them, plus the end."""
    base, extra = divmod(n_words, n_chunks)
    sizes = np.full(n_chunks, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


@dataclass(frozen=True)
class TfidfResult:
    """TF-IDF word vectors over N chunk documents.

    Attributes:
        words: the words, row order (most frequent first).
        vectors: array of shape (n_words, n_chunks), float32: the TF-IDF of each word in each chunk.
        counts: array of shape (n_words, n_chunks), int32: occurrences of each word in each chunk.
        chunk_lengths: array of shape (n_chunks,): words per chunk (every word, min_count or not).
        document_frequency: array of shape (n_words,): chunks containing each word.
        idf: array of shape (n_words,): ln(n_chunks / document_frequency).
        params: the parameters (chunks, keep_case, min_count) and corpus description.
        timings: seconds per step.
    """

    words: list[str]
    vectors: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    chunk_lengths: np.ndarray
    document_frequency: np.ndarray = field(repr=False)
    idf: np.ndarray = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_chunks(self) -> int:
        return int(self.chunk_lengths.shape[0])

    def space(self, name: str = "tfidf") -> Any:
        """The result as an :class:`~embedlens.spaces.space.EmbeddingSpace` (rows = words)."""
        return EmbeddingSpace.from_arrays(self.vectors, self.words, name=name, metadata=self.manifest())

    def manifest(self) -> dict[str, Any]:
        return {"kind": "tfidf", "method": "tfidf",
                "formula": "tf(t,d)=count(t,d)/len(d); idf(t)=ln(N/df(t)); tfidf=tf*idf",
                "n_words": len(self.words), "n_chunks": self.n_chunks,
                "chunk_lengths": self.chunk_lengths.tolist(), **self.params, "timings": dict(self.timings)}

    def to_dict(self) -> dict[str, Any]:
        """A summary for JSON (not the matrix: that is in ``space.safetensors``)."""
        top = [{"word": w, "count": int(c)} for w, c in zip(self.words[:10], self.counts[:10].sum(axis=1), strict=False)]
        return {**self.manifest(), "most_frequent": top}

    def save(self, folder: str | Path, *, name: str = "tfidf", extra: dict[str, Any] | None = None) -> Path:
        """Write ``space.safetensors`` + ``words.txt`` + ``manifest.json`` into ``folder``."""
        return self.space(name).save(folder, manifest={"versions": versions(), **(extra or {})})


def tfidf_from_ids(
    ids: np.ndarray, vocab: np.ndarray | list[str], n_chunks: int = 10, *, min_count: int = 1
) -> TfidfResult:
    """TF-IDF of a word-id sequence split into ``n_chunks`` consecutive chunks.

    Args:
        ids: int array of shape (n_occurrences,), each entry indexing ``vocab``, in corpus order.
        vocab: the distinct words.
        n_chunks: how many documents to cut the sequence into (at least 2).
        min_count: keep only words occurring at least this often in the whole sequence.
    """
    clock = Timings()
    ids = np.asarray(ids)
    n, n_vocab = int(ids.shape[0]), len(vocab)
    if not isinstance(n_chunks, int | np.integer) or n_chunks < 2:
        raise EmbedlensError(f"`n_chunks` must be at least 2 (idf is ln(N/df), which is 0 for one document), got {n_chunks}")
    if n < n_chunks:
        raise EmbedlensError(f"the corpus has {n} words, too few for {n_chunks} chunks; use `n_chunks={max(n, 2)}` or less, or a larger corpus"
                             if n >= 2 else f"the corpus has {n} words, too few for {n_chunks} chunks; give a larger corpus")
    if min_count < 1:
        raise EmbedlensError(f"`min_count` must be at least 1, got {min_count}")
    bounds = chunk_bounds(n, n_chunks)
    # (n_chunks, n_vocab): one bincount per document, no Python loop over words
    counts = np.stack([np.bincount(ids[bounds[d] : bounds[d + 1]], minlength=n_vocab) for d in range(n_chunks)]).astype(np.int32)
    lengths = np.diff(bounds)
    total = counts.sum(axis=0, dtype=np.int64)
    keep = np.flatnonzero(total >= min_count)
    if keep.size == 0:
        raise EmbedlensError(f"no word occurs at least {min_count} times (the most frequent occurs {int(total.max())} times); lower `min_count`")
    keep = keep[np.argsort(-total[keep], kind="stable")]  # most frequent first, ties in vocab (alphabetical) order
    counts = np.ascontiguousarray(counts[:, keep].T)  # (n_words, n_chunks)
    df = (counts > 0).sum(axis=1)
    idf = np.log(n_chunks / df)
    tf = counts / lengths[None, :].astype(np.float64)
    vectors = (tf * idf[:, None]).astype(np.float32)
    words = [str(w) for w in np.asarray(vocab)[keep]]
    return TfidfResult(words, vectors, counts, lengths, df, idf,
                       params={"chunks": int(n_chunks), "min_count": int(min_count), "n_occurrences": n},
                       timings={"tfidf": clock.since_start()})


def tfidf(corpus: Any, n_chunks: int = 10, *, keep_case: bool = False, min_count: int = 1) -> TfidfResult:
    """TF-IDF word vectors of a corpus cut into ``n_chunks`` documents (see the module docstring).

    Args:
        corpus: a corpus spec (file, folder, ``lee``, ``enwiki-sample``), a list of them, or a
            :class:`~embedlens.corpus.reading.Corpus`.
        n_chunks: the number of documents N.
        keep_case: keep the words' case instead of lowercasing them.
        min_count: keep only words occurring at least this often.
    """
    timings = Timings()
    with timings.stage("read"):
        if not isinstance(corpus, Corpus):
            corpus = open_corpus(corpus)
        vocab, ids = word_ids(corpus.iter_chunks(), keep_case=keep_case)
    result = tfidf_from_ids(ids, vocab, n_chunks, min_count=min_count)
    params = {**result.params, "keep_case": bool(keep_case), "tokenization": r"\w+ matches" + ("" if keep_case else ", lowercased"),
              "corpus": {**corpus.manifest(), "bytes": corpus.total_bytes}}
    return TfidfResult(result.words, result.vectors, result.counts, result.chunk_lengths, result.document_frequency,
                       result.idf, params=params, timings={**timings, **result.timings})
