"""word2vec (CBOW or skip-gram) trained with gensim on a corpus, saved without pickle.

The training text is the corpus's documents (one per line for ``lee``, one per file otherwise), each
tokenised like TF-IDF (``\\w+`` matches, lowercased unless ``keep_case``) and cut into pieces of at
most 10,000 words (gensim silently truncates longer sentences). The documents are re-read from disk on
every epoch, so memory does not grow with the corpus; corpora up to 32 MiB are tokenised once and
kept in memory instead, which saves the re-reading.

Determinism: with ``workers=1`` and a seed, two runs give identical vectors, in any process. gensim 4
draws the initial vectors from ``numpy.random.default_rng(seed)`` and the training noise from a
``RandomState(seed)``; its ``hashfxn`` (Python's ``hash``, which ``PYTHONHASHSEED`` salts per process)
is only used for per-word seeds, and we replace it by a CRC-32 of the word so it could never matter.
With several workers the order in which threads update the shared vectors varies, as gensim documents.

A run folder holds ``vectors.bin`` (``KeyedVectors.save_word2vec_format(binary=True)``, readable by
gensim, fastText tools and the original C code) and the common ``space.safetensors`` + ``words.txt``
+ ``manifest.json`` that every embedlens command reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, ensure_writable_dir
from ..corpus.reading import Corpus, open_corpus
from ..errors import EmbedlensError, require
from ..progress import bar
from ..spaces.space import EmbeddingSpace
from ..timing import Timings
from ..versions import versions
from .tfidf import words_of

MAX_SENTENCE = 10_000  # gensim's MAX_WORDS_IN_BATCH: longer sentences are truncated by gensim
BINARY_NAME = "vectors.bin"
IN_MEMORY_BYTES = 32 << 20  # corpora up to this size are tokenised once and kept as lists (about 10x the text in RAM)


def stable_hash(text: str) -> int:
    """A hash of a word that does not depend on ``PYTHONHASHSEED`` (gensim's ``hashfxn``)."""
    return zlib.crc32(text.encode("utf-8"))


class CorpusSentences:
    """A restartable iterable of word lists over a corpus (gensim iterates it once per epoch)."""

    def __init__(self, corpus: Any, *, keep_case: bool = False) -> None:
        self.corpus, self.keep_case = corpus, keep_case

    def __iter__(self) -> Iterator[list[str]]:
        for _doc_id, text in self.corpus.iter_documents():
            words = words_of(text, keep_case=self.keep_case)
            for start in range(0, len(words), MAX_SENTENCE):
                yield words[start : start + MAX_SENTENCE]


@dataclass(frozen=True)
class Word2VecResult:
    """A trained word2vec model's word vectors.

    Attributes:
        words: the vocabulary, row order (most frequent first, as gensim sorts it).
        vectors: array of shape (n_words, dim), float32.
        counts: array of shape (n_words,): each word's count in the corpus.
        params: every training parameter, the corpus description and the seed.
        timings: seconds per step.
    """

    words: list[str]
    vectors: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    keyed_vectors: Any = field(default=None, repr=False, compare=False)

    def manifest(self) -> dict[str, Any]:
        return {"kind": "word2vec", "method": "word2vec", "n_words": len(self.words), **self.params,
                "timings": dict(self.timings)}

    def to_dict(self) -> dict[str, Any]:
        top = [{"word": w, "count": int(c)} for w, c in zip(self.words[:10], self.counts[:10], strict=False)]
        return {**self.manifest(), "most_frequent": top}

    def space(self, name: str = "word2vec") -> Any:
        return EmbeddingSpace.from_arrays(self.vectors, self.words, name=name, metadata=self.manifest())

    def save(self, folder: str | Path, *, name: str = "word2vec", extra: dict[str, Any] | None = None) -> Path:
        """Write ``vectors.bin`` (word2vec binary format) and ``space.safetensors`` + ``words.txt`` + ``manifest.json``."""
        out = ensure_writable_dir(folder)
        kv = self.keyed_vectors
        if kv is None:
            from gensim.models import KeyedVectors

            kv = KeyedVectors(self.vectors.shape[1])
            kv.add_vectors(self.words, self.vectors)
        with atomic_path(out / BINARY_NAME) as tmp:
            kv.save_word2vec_format(str(tmp), binary=True)
        gensim_version = require("gensim", "word2vec").__version__
        return self.space(name).save(out, manifest={"versions": {**versions(), "gensim": gensim_version},
                                                    "binary": BINARY_NAME, **(extra or {})})


def _epoch_callback(advance: Any) -> Any:
    """A gensim callback that moves a progress bar once per epoch."""
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochProgress(CallbackAny2Vec):
        def on_epoch_end(self, model: Any) -> None:
            advance(1)

    return EpochProgress()


def train_word2vec(
    corpus: Any,
    *,
    sg: int = 0,
    dim: int = 100,
    window: int = 5,
    epochs: int = 5,
    min_count: int = 5,
    seed: int = 0,
    workers: int = 1,
    keep_case: bool = False,
    progress: bool = True,
) -> Word2VecResult:
    """Train word2vec on a corpus with gensim.

    Args:
        corpus: a corpus spec (file, folder, ``lee``, ``enwiki-sample``), a list of them, or a Corpus.
        sg: 0 for CBOW (the default), 1 for skip-gram.
        dim: vector size.
        window: context words on each side.
        epochs: passes over the corpus.
        min_count: ignore words occurring fewer times than this.
        seed: seed of the initial vectors and of the training noise.
        workers: training threads; 1 (the default) makes runs reproducible.
        keep_case: keep the words' case instead of lowercasing them.
        progress: show a progress bar on stderr when it is a terminal.
    """
    for name, value, low in (("`dim`", dim, 1), ("`window`", window, 1), ("`epochs`", epochs, 1),
                             ("`min_count`", min_count, 1), ("`workers`", workers, 1)):
        if value < low:
            raise EmbedlensError(f"{name} must be at least {low}, got {value}")
    if sg not in (0, 1):
        raise EmbedlensError(f"`sg` must be 0 (CBOW) or 1 (skip-gram), got {sg}")
    require("gensim", "word2vec training", extra="classic")
    from gensim.models import Word2Vec

    timings = Timings()
    with timings.stage("vocab"):
        if not isinstance(corpus, Corpus):
            corpus = open_corpus(corpus)
        sentences: Any = CorpusSentences(corpus, keep_case=keep_case)
        if corpus.total_bytes <= IN_MEMORY_BYTES:  # small corpus: tokenise once instead of once per epoch
            sentences = list(sentences)
        model = Word2Vec(vector_size=dim, window=window, min_count=min_count, sg=sg, seed=seed, workers=workers,
                         epochs=epochs, hashfxn=stable_hash)
        model.build_vocab(sentences)
    if len(model.wv) == 0:
        raise EmbedlensError(f"no word occurs at least {min_count} times in the corpus; lower `min_count`")

    with timings.stage("train"), bar(epochs, "word2vec epochs", enabled=progress) as advance:
        model.train(sentences, total_examples=model.corpus_count, epochs=epochs,
                    callbacks=[_epoch_callback(advance)])
    wv = model.wv
    words = list(wv.index_to_key)
    counts = np.asarray(wv.expandos["count"], dtype=np.int64)
    params = {"sg": int(sg), "architecture": "skip-gram" if sg else "CBOW", "dim": int(dim), "window": int(window),
              "epochs": int(epochs), "min_count": int(min_count), "seed": int(seed), "workers": int(workers),
              "keep_case": bool(keep_case), "negative": model.negative, "sample": model.sample, "alpha": model.alpha,
              "tokenization": r"\w+ matches" + ("" if keep_case else ", lowercased"),
              "deterministic": workers == 1, "n_occurrences": int(model.corpus_total_words),
              "corpus": {**corpus.manifest(), "bytes": corpus.total_bytes}}
    return Word2VecResult(words, np.asarray(wv.vectors, dtype=np.float32), counts, params,
                          timings=dict(timings), keyed_vectors=wv)
