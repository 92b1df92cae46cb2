"""Typed results of neighbour queries, with ``to_dict`` for JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class ResolvedQuery:
    """What a query string became: the rows it names in a space and the vector that stands for it."""

    query: str
    rows: list[int]
    ids: list[int]
    vector: np.ndarray = field(repr=False)
    note: str | None = None  # e.g. "'embedlens' is 3 tokens; using their mean vector"


@dataclass(frozen=True)
class Neighbor:
    id: int
    token: str
    display: str
    score: float


@dataclass(frozen=True)
class NeighborResult:
    query: str
    query_ids: list[int]
    space: str
    neighbors: list[Neighbor]
    note: str | None = None

    def to_dict(self) -> dict:
        out = {"query": self.query, "query_ids": list(self.query_ids), "space": self.space,
               "neighbors": [asdict(n) for n in self.neighbors]}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class TokenRow:
    position: int
    id: int
    token: str
    display: str
    head: list[float]
    tail: list[float]


@dataclass(frozen=True)
class TokenTable:
    """A text as the model's tokenizer splits it, with each token's input-embedding vector."""

    model: str
    text: str
    rows: list[TokenRow]
    vectors: np.ndarray = field(repr=False)  # (n_tokens, d_model), the rows of the input embedding matrix
    embed_scale: float = 1.0  # the model multiplies these rows by this before block 0 (Gemma: sqrt(d_model))

    def to_dict(self) -> dict:
        return {"model": self.model, "text": self.text, "embed_scale": self.embed_scale,
                "tokens": [asdict(r) for r in self.rows]}
