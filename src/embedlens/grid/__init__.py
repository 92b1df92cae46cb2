"""The token grid map: a 2D grid pushed into the hidden space at block L, the rest of the model run,
each cell's most likely next token coloured by its probability.

>>> from embedlens.grid import create_embedding_grid_map
>>> out = create_embedding_grid_map("smollm2-135m", layer_idx=-1, grid_size=50, embedding_method="pca")
>>> out.maps[0].display[:3], out["visualization_path"]

Semantics: a grid point becomes a vector v (see :mod:`embedlens.grid.methods`); v is the input of block
L for a sequence of ONE token at position 0; blocks L .. n-1 run, then the final norm and the LM head
(:mod:`embedlens.models.forward`). ``L = n_layers`` decodes v directly (a logit lens of v).
"""

from __future__ import annotations

from .methods import GRID_PLANES, GridEmbedding, create_2d_grid
from .result import GridMap
from .visualizer import EmbeddingGridVisualizer, GridMapOutput, create_embedding_grid_map

__all__ = ["GRID_PLANES", "EmbeddingGridVisualizer", "GridEmbedding", "GridMap", "GridMapOutput",
           "create_2d_grid", "create_embedding_grid_map"]
