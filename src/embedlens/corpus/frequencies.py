"""Token frequencies of a corpus, counted the way the model sees the text.

Every document (a line of a text file, a row of a JSONL / Parquet file or dataset: see
:mod:`embedlens.corpus.sources`) is tokenized **alone**, with the model's own tokenizer and **without
special tokens**, and the ids are counted with ``np.bincount``. So the count is the same whoever cuts the
corpus into blocks, and the same on every engine: ``engine="local"`` reads the blocks in this process,
``engine="ray"`` reads them in Ray Data tasks and sums their counts (see :mod:`embedlens.engines`).
Newlines separate documents and are not tokens of any document. For a plain word space (GloVe, TF-IDF,
...) words are ``\\w+`` runs, lowercased, counted and mapped to rows.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engines import Engine, LocalEngine
from ..errors import EmbedlensError
from ..lens import as_view
from ..timing import Timings
from .reading import CHUNK_CHARS, Corpus, open_corpus

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

WORD_RE = re.compile(r"\w+")


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
        engine: where it was counted: engine, Ray address, workers, resources.
    """

    counts: np.ndarray
    n_tokens: int
    n_outside: int
    n_bytes: int
    method: str
    corpus: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    engine: dict[str, Any] = field(default_factory=dict)

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
            "documents": "each tokenized alone, without special tokens",
            "engine": dict(self.engine),
            "corpus": self.corpus,
        }


class TokenCounter:
    """Counts the tokens of documents: a small picklable object, so Ray workers count exactly like this process.

    ``count(texts)`` returns ``(counts, n_tokens, n_outside)``: ``counts`` has shape (size,), indexed by
    token id (``kind="tokenizer"``) or by row of a word space (``kind="words"``).
    """

    def __init__(self, kind: str, size: int, *, tokenizer_json: str | None = None, tokenizer: Any = None,
                 words: dict[str, int] | None = None) -> None:
        self.kind, self.size = kind, int(size)
        self.tokenizer_json, self.tokenizer, self.words = tokenizer_json, tokenizer, words
        self._fast: Any = None

    @classmethod
    def for_view(cls, view: SpaceView) -> TokenCounter:
        """The counter of a space (``lens.input``...): the model's tokenizer, or the words of a word space."""
        space = view.space
        if not view.is_model:
            return cls("words", len(space), words=dict(space.row_of_label))
        size = int(np.max(space.ids)) + 1 if len(space) else 0
        fast = view.lens.fast_tokenizer
        if fast is not None:
            return cls("tokenizer", size, tokenizer_json=fast.to_str())
        return cls("tokenizer", size, tokenizer=view.lens.tokenizer)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fast": None}

    def _encode(self, texts: list[str]) -> Iterator[list[int]]:
        if self.tokenizer_json is not None:
            if self._fast is None:
                from tokenizers import Tokenizer

                self._fast = Tokenizer.from_str(self.tokenizer_json)
            # encode_batch_fast skips character offsets (about twice as fast); older tokenizers lack it.
            batch_encode = getattr(self._fast, "encode_batch_fast", self._fast.encode_batch)
            return (e.ids for e in batch_encode(texts, add_special_tokens=False))
        return iter(self.tokenizer(texts, add_special_tokens=False)["input_ids"])

    def count(self, texts: list[str]) -> tuple[np.ndarray, int, int]:
        """Counts of the tokens of ``texts``, each document tokenized alone, no special tokens."""
        if self.kind == "tokenizer":
            ids = np.fromiter(itertools.chain.from_iterable(self._encode(list(texts))), dtype=np.int64)
            inside = ids[(ids >= 0) & (ids < self.size)]
            return np.bincount(inside, minlength=self.size), int(ids.size), int(ids.size - inside.size)
        # Newlines end words, so counting the joined documents equals counting each one.
        chunk_words = Counter(WORD_RE.findall("\n".join(texts).lower()))
        counts = np.zeros(self.size, dtype=np.int64)
        known = list(chunk_words.keys() & self.words.keys())
        n_all = sum(chunk_words.values())
        if known:
            rows = np.fromiter((self.words[w] for w in known), dtype=np.int64, count=len(known))
            values = np.fromiter((chunk_words[w] for w in known), dtype=np.int64, count=len(known))
            np.add.at(counts, rows, values)
            return counts, n_all, n_all - int(values.sum())
        return counts, n_all, n_all


def count_tokens(view: SpaceView, corpus: Corpus, *, chunk_chars: int = CHUNK_CHARS,
                 progress: bool = True, engine: Engine | None = None) -> TokenFrequencies:
    """Count how often each row of a space occurs in ``corpus``.

    Args:
        view: a space of a handle (:class:`~embedlens.lens.SpaceView`: ``lens.input``, ``lens.output``; a
            handle means its input space): a model's is counted with its tokenizer, each document alone, no special tokens; a word space's
            by ``\\w+`` words, lowercased.
        corpus: an opened :class:`~embedlens.corpus.Corpus`.
        chunk_chars: characters of documents read per block (memory stays about a few times this).
        progress: show a progress bar by bytes on stderr (only on a terminal, for corpora over 1 MB).
        engine: where the counting runs (:func:`~embedlens.engines.open_engine`: ``open_engine("ray", workers=4)``
            counts in Ray Data tasks, with the same counts); default this process. It is entered for the count
            (a Ray it starts stops after).

    Returns:
        :class:`TokenFrequencies` with ``counts`` of shape (n_rows,) in the space's row order.
    """
    timings = Timings()
    view = as_view(view)
    space = view.space
    counter = TokenCounter.for_view(view)
    with engine or LocalEngine() as eng:
        counted = eng.count(counter, corpus, block_chars=chunk_chars, progress=progress)
        info = eng.info()
    if counter.kind == "tokenizer":
        counts = counted.counts[np.asarray(space.ids, dtype=np.int64)]
    else:
        counts = counted.counts
    return TokenFrequencies(counts=counts, n_tokens=counted.n_tokens, n_outside=counted.n_outside,
                            n_bytes=counted.n_bytes, method="tokenizer" if counter.kind == "tokenizer" else "words",
                            corpus=corpus.manifest(), seconds=timings.since_start(), engine=info)


def token_frequencies(lens: Lens | SpaceView, corpus: str | list[str] | Corpus, *, which: str | None = None,
                      progress: bool = True, text_column: str = "text", engine: Engine | None = None) -> TokenFrequencies:
    """:func:`count_tokens` for corpus specs (files, folders, ``hf:NAME``, ``lee``, ``enwiki-sample``) or an
    opened corpus; ``lens`` is a space (``lens.input``...) or a handle (with ``which``, default input)."""
    if not isinstance(corpus, Corpus):
        corpus = open_corpus(corpus, text_column=text_column)
    freqs = count_tokens(as_view(lens, which), corpus, progress=progress, engine=engine)
    if freqs.n_tokens == 0:
        raise EmbedlensError(f"the corpus {', '.join(corpus.specs)} produced no tokens")
    return freqs
