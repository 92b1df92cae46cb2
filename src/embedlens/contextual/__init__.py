"""Contextual embeddings: per-layer hidden states of texts and of every occurrence of a word in a corpus.

>>> from embedlens.contextual import hidden_states, context_map, write_context
>>> hs = hidden_states("smollm2-135m", ["the river bank", "the bank robbery"], layers="all")
>>> hs.texts[0].states.shape                     # (31 layers kept, tokens, 576)
>>> cmap = context_map("smollm2-135m", corpus="enwiki-sample", focus="first", method="pca")
>>> write_context(cmap, "out")                   # context.html/png, points.parquet, states.safetensors, manifest

Heavy libraries (torch, transformers, plotly, matplotlib) are imported only when used.
"""

from .mapping import ContextMap, ContextPanel, context_map
from .occurrences import Occurrences, find_occurrences, occurrences, word_pattern
from .output import points_table, state_tensors, write_context
from .projection import ContextProjection, auto_perplexity, procrustes, project, stability_score
from .states import HiddenStates, TextStates, hidden_states

__all__ = [
    "ContextMap", "ContextPanel", "ContextProjection", "HiddenStates", "Occurrences", "TextStates", "auto_perplexity",
    "context_map", "find_occurrences", "hidden_states", "occurrences", "points_table", "procrustes",
    "project", "stability_score", "state_tensors", "word_pattern", "write_context",
]
