"""Nearest neighbours: one index layer (exact, faiss, HNSW, precomputed graphs), query resolution, variants."""

from .exact import topk_cosine
from .index import (
    ExactIndex,
    HNSWIndex,
    NeighborIndex,
    Neighbors,
    PrecomputedIndex,
    build_index,
    row_norms,
)

__all__ = ["ExactIndex", "HNSWIndex", "NeighborIndex", "Neighbors", "PrecomputedIndex", "build_index", "row_norms",
           "topk_cosine"]
