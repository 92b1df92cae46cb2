"""Embedding graphs: tokens as nodes, joined to their nearest tokens (``embedlens graph``).

    >>> import embedlens
    >>> from embedlens.graph import token_graph, write_graph
    >>> g = token_graph(embedlens.load(), words="king,queen,list", k=20, seed=0)
    >>> write_graph(g, "embedlens-graph")  # graph.html, graph.json, graph.graphml, manifest.json

The full-vocabulary k-NN graph lives in :mod:`embedlens.neighbors.knn`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EmbedlensError
from ..lens import as_view
from .build import GraphEdge, GraphNode, GraphStats, TokenGraph, build_graph
from .export import graph_json, write_graph
from .layout import layout_graph, spring_positions
from .seeds import (
    Seed,
    seeds_from_random,
    seeds_from_text,
    seeds_from_variants,
    seeds_from_words,
    whole_word_rows,
)

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

__all__ = [
    "GraphEdge", "GraphNode", "GraphStats", "Seed", "TokenGraph", "build_graph", "check_seed_options", "graph_json", "layout_graph",
    "seeds_from_random", "seeds_from_text", "seeds_from_variants", "seeds_from_words", "spring_positions",
    "token_graph", "whole_word_rows", "write_graph",
]


def check_seed_options(*, text: Any = None, words: Any = None, random: Any = None, corpus: Any = None,
                       variants: Any = None) -> None:
    """Exactly one way of choosing seeds; ``corpus`` only with ``random``."""
    given = [name for name, v in (("`text`", text), ("`words`", words), ("`random`", random), ("`variants`", variants))
             if v is not None]
    if len(given) != 1:
        what = "none was given" if not given else f"got {' and '.join(given)}"
        raise EmbedlensError(f"give exactly one of `text`, `words`, `random` or `variants` ({what})")
    if corpus and random is None:
        raise EmbedlensError("`corpus` only applies to `random`")


def token_graph(
    lens: Lens | SpaceView,
    *,
    text: str | None = None,
    words: str | Sequence[str] | None = None,
    random: int | None = None,
    corpus: str | Sequence[str] | None = None,
    variants: str | None = None,
    which: str | None = None,
    k: int = 20,
    min_score: float | None = None,
    mutual: bool = False,
    seed: int = 0,
    layout: bool = True,
) -> TokenGraph:
    """Seeds from exactly one of ``text``, ``words``, ``random`` (N words, optionally from ``corpus``) or
    ``variants``; their k-nearest-token graph; and a seeded layout.

    ``lens``: a space (``lens.input``, ``lens.output``) or a handle (with ``which``, default input).
    """
    check_seed_options(text=text, words=words, random=random, corpus=corpus, variants=variants)
    view = as_view(lens, which)
    info: dict[str, Any] = {}
    notes: list[str] = []
    if text is not None:
        seeds = seeds_from_text(view, text)
        info = {"mode": "text", "text": text}
    elif words is not None:
        seeds = seeds_from_words(view, words)
        info = {"mode": "words", "words": [s.label for s in seeds]}
    elif random is not None:
        seeds, extra = seeds_from_random(view, random, seed=seed, corpus=corpus)
        info = {"mode": "random", "n": random, **extra}
    else:
        seeds, note = seeds_from_variants(view, variants or "")
        info = {"mode": "variants", "word": variants}
        notes = [note] if note else []
    graph = build_graph(view, seeds, k=k, min_score=min_score, mutual=mutual)
    graph.params["seed"] = seed
    graph.origin = info
    graph.notes = notes + [n for n in graph.notes if n not in notes]
    if layout:
        layout_graph(graph, seed=seed)
    return graph
