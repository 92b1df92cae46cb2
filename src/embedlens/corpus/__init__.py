"""Corpora: text files, folders of ``*.txt`` and packaged demo corpora, read in bounded memory."""

from .reading import PACKAGED_CORPORA, Corpus, CorpusFile, open_corpus

__all__ = ["PACKAGED_CORPORA", "Corpus", "CorpusFile", "open_corpus"]
