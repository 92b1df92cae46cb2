"""embedlens: see inside the embedding space of a language model, offline.

>>> import embedlens
>>> lens = embedlens.load("smollm2-135m")        # extracted once, memory-mapped afterwards
>>> lens.tokens("The capital of France is").rows[1].display
>>> [n.display for n in lens.nearest(" list", k=5).neighbors]

Public names are imported lazily so ``import embedlens`` (and ``embedlens --help``) stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("embedlens.lens", "load"),
    "ModelLens": ("embedlens.lens", "ModelLens"),
    "SpaceLens": ("embedlens.lens", "SpaceLens"),
    "SpaceView": ("embedlens.lens", "SpaceView"),
    "EmbeddingSpace": ("embedlens.spaces.space", "EmbeddingSpace"),
    "Neighbors": ("embedlens.neighbors.exact", "Neighbors"),
    "topk_cosine": ("embedlens.neighbors.exact", "topk_cosine"),
    "display_token": ("embedlens.display", "display_token"),
    "load_model": ("embedlens.models.loading", "load_model"),
    "EmbedlensError": ("embedlens.errors", "EmbedlensError"),
    "open_space": ("embedlens.handles", "open_space"),
    "make_reducer": ("embedlens.reduce", "make_reducer"),
    "ReduceOptions": ("embedlens.reduce.options", "ReduceOptions"),
    "projection_quality": ("embedlens.reduce.quality", "projection_quality"),
    "write_atlas": ("embedlens.atlas", "write_atlas"),
    "build_atlas": ("embedlens.atlas", "build_atlas"),
    "token_graph": ("embedlens.graph", "token_graph"),
    "create_embedding_grid_map": ("embedlens.grid", "create_embedding_grid_map"),
    "hidden_states": ("embedlens.contextual", "hidden_states"),
    "HiddenStates": ("embedlens.contextual", "HiddenStates"),
    "context_map": ("embedlens.contextual", "context_map"),
    "logit_lens": ("embedlens.logitlens", "logit_lens"),
    "LogitLensResult": ("embedlens.logitlens", "LogitLensResult"),
    "widget": ("embedlens.atlas.widget", "widget"),
    "compare": ("embedlens.comparison", "compare"),
    "Comparison": ("embedlens.comparison", "Comparison"),
}

__all__ = [
    "EmbedlensError", "EmbeddingSpace", "HiddenStates", "LogitLensResult", "ModelLens", "Neighbors", "SpaceLens",
    "SpaceView", "build_atlas", "context_map", "create_embedding_grid_map", "display_token", "hidden_states", "load", "load_model", "logit_lens",
    "make_reducer", "open_space", "projection_quality", "token_graph", "topk_cosine", "widget", "write_atlas",
]
__all__ += ["Comparison", "compare"]
__all__ += ["ReduceOptions"]

if TYPE_CHECKING:  # pragma: no cover
    from .atlas import build_atlas, write_atlas
    from .atlas.widget import widget
    from .comparison import Comparison, compare
    from .contextual import HiddenStates, context_map, hidden_states
    from .display import display_token
    from .errors import EmbedlensError
    from .graph import token_graph
    from .grid import create_embedding_grid_map
    from .handles import open_space
    from .lens import ModelLens, SpaceLens, SpaceView, load
    from .logitlens import LogitLensResult, logit_lens
    from .models.loading import load_model
    from .neighbors.exact import Neighbors, topk_cosine
    from .reduce import make_reducer
    from .reduce.options import ReduceOptions
    from .reduce.quality import projection_quality
    from .spaces.space import EmbeddingSpace


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedlens' has no attribute {name!r}")
