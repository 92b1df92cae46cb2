"""Classic embedding baselines: TF-IDF word vectors over document chunks, word2vec, GloVe.

Each becomes an :class:`~embedlens.spaces.space.EmbeddingSpace`, so every embedlens command takes them
with ``--space tfidf:DIR | word2vec:DIR | glove-50d``. :func:`analogy` answers A - B + C on any lens;
:func:`evaluate` scores a space on WordSim-353, SimLex-999 and the Google analogy set.

Heavy imports (gensim, scipy, pyarrow) happen inside the functions that need them.
"""

from __future__ import annotations

from .analogy import analogy
from .evaluate import Evaluation, evaluate
from .glove import load_glove
from .tfidf import TfidfResult, tfidf, tfidf_from_ids
from .word2vec import Word2VecResult, train_word2vec

__all__ = [
    "Evaluation",
    "TfidfResult",
    "Word2VecResult",
    "analogy",
    "evaluate",
    "load_glove",
    "tfidf",
    "tfidf_from_ids",
    "train_word2vec",
]
