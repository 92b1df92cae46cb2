"""Nearest neighbours: exact cosine top-k, query resolution, and word variants."""

from .exact import Neighbors, row_norms, topk_cosine

__all__ = ["Neighbors", "row_norms", "topk_cosine"]
