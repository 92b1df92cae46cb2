"""Nearest neighbours: one index layer (exact, k-d tree, faiss, HNSW, precomputed graphs), query resolution, variants."""

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
from .kdtree import KDTreeIndex

__all__ = ["ExactIndex", "HNSWIndex", "KDTreeIndex", "NeighborIndex", "Neighbors", "PrecomputedIndex", "build_index", "row_norms",
           "topk_cosine"]
