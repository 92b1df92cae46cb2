"""The names of the methods, one list per concept, importable without numpy: the CLI builds its choices
from them at import time, so ``embedlens map --help`` stays light."""

REDUCERS = ("pca", "tsne", "umap")  # reducers fitted on the vectors alone
MAP_METHODS = (*REDUCERS, "axes")  # what a map can use: word axes also need the lens to resolve their words
GRID_PLANES = ("random_projection", "direct", "replicated", "pca", "tokens")  # the grid's embedding methods
