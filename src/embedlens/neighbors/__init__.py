"""Nearest neighbours: one index layer (exact, k-d tree, faiss, HNSW, precomputed graphs), query resolution, variants."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import hardware
from ..errors import EmbedlensError
from .exact import topk_cosine
from .index import (
    EXACT_MAX,
    EXHAUSTIVE_MAX,
    INDEX_KINDS,
    MAX_DUPLICATE_SHARE,
    RECALL_SAMPLE,
    BFloat16Index,
    ExactIndex,
    HNSWIndex,
    NeighborIndex,
    Neighbors,
    PrecomputedIndex,
    duplicate_share,
    faiss_available,
    row_norms,
)
from .kdtree import KDTREE_MAX_DIM, KDTreeIndex

__all__ = ["ExactIndex", "HNSWIndex", "KDTreeIndex", "NeighborIndex", "Neighbors", "PrecomputedIndex", "build_index", "row_norms",
           "topk_cosine"]


def build_index(vectors: Any, *, metric: str = "cosine", kind: str = "auto", exact_max: int = EXACT_MAX,
                exhaustive_max: int = EXHAUSTIVE_MAX, norms: np.ndarray | None = None, n_jobs: int | None = None, seed: int = 0,
                recall_sample: int = RECALL_SAMPLE, **options: Any) -> NeighborIndex:
    """The neighbour index for ``vectors`` (n, d).

    Args:
        kind: ``"auto"``: euclidean rows of at most 3 dimensions (map points) get the exact k-d tree
            (:class:`~embedlens.neighbors.kdtree.KDTreeIndex`) at any size; otherwise exact up to ``exact_max`` rows; above it and up to ``exhaustive_max`` rows
            bfloat16 short lists re-scored exactly where bfloat16 products are fast (else exact); HNSW
            above that unless more than 1% of the rows are duplicates. Or ``"exact"``, ``"hnsw"``, ``"bf16"``
            (falls back to exact, with a note in ``info``, on CPUs without fast bfloat16 products).
        options: passed to the backend (``backend=`` for exact products, which also skips the k-d tree,
            ``m=``/``ef_search=`` for HNSW, ``shortlist=``).
    """
    if kind not in INDEX_KINDS:
        raise EmbedlensError(f"unknown index kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    vectors = vectors.vectors if hasattr(vectors, "vectors") and not isinstance(vectors, np.ndarray) else vectors
    if metric == "euclidean" and kind in ("auto", "exact") and not options.get("backend"):
        if np.ndim(vectors) == 2 and vectors.shape[1] <= KDTREE_MAX_DIM:
            return KDTreeIndex(vectors, n_jobs=n_jobs)
    note = None
    if kind == "bf16":
        if hardware.fast_bfloat16():
            return BFloat16Index(vectors, metric=metric, norms=norms, seed=seed, recall_sample=recall_sample,
                                 shortlist=options.get("shortlist"))
        note = "bfloat16 was asked, but this CPU has no fast bfloat16 products: computed exactly instead"
        kind = "exact"
    if kind == "auto":
        kind = "exact"
        if exact_max < vectors.shape[0] <= exhaustive_max:
            if hardware.fast_bfloat16():
                return BFloat16Index(vectors, metric=metric, norms=norms, seed=seed, recall_sample=recall_sample,
                                     shortlist=options.get("shortlist"))
        elif vectors.shape[0] > exact_max and faiss_available():
            share = duplicate_share(vectors, seed)
            if share <= MAX_DUPLICATE_SHARE:
                kind = "hnsw"
            else:
                note = f"{share:.1%} of the rows repeat others (HNSW loses neighbours among them): exact search"
    if kind == "hnsw":
        index: NeighborIndex = HNSWIndex(vectors, metric=metric, norms=norms, n_jobs=n_jobs, seed=seed,
                                         recall_sample=recall_sample,
                                         **{k: v for k, v in options.items() if k in ("m", "ef_construction", "ef_search")})
    else:
        backend = options.get("backend") or ("faiss" if faiss_available() else "auto")
        index = ExactIndex(vectors, metric=metric, backend=backend, norms=norms, n_jobs=n_jobs)
    if note:
        index.info["note"] = note
    return index
