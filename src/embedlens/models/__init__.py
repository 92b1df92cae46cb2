"""Models: specs, the per-architecture table, and offline loading.

The public names are imported on first use, so ``embedlens.models.specs`` (what a command's ``--help`` reads)
does not pull in the loaders and numpy with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "ARCHITECTURES": "embedlens.models.architectures",
    "Architecture": "embedlens.models.architectures",
    "ModelParts": "embedlens.models.architectures",
    "architecture_for": "embedlens.models.architectures",
    "model_parts": "embedlens.models.architectures",
    "load_model": "embedlens.models.loading",
    "load_tokenizer": "embedlens.models.loading",
    "load_weights": "embedlens.models.loading",
    "DEFAULT_MODEL": "embedlens.models.specs",
    "PACKAGED": "embedlens.models.specs",
    "ModelSource": "embedlens.models.specs",
    "resolve": "embedlens.models.specs",
    "model_entry_dir": "embedlens.models.weights",
    "model_key": "embedlens.models.weights",
}

__all__ = [
    "ARCHITECTURES", "Architecture", "DEFAULT_MODEL", "ModelParts", "ModelSource", "PACKAGED",
    "architecture_for", "load_model", "load_tokenizer", "load_weights", "model_entry_dir", "model_key", "model_parts", "resolve",
]

if TYPE_CHECKING:  # pragma: no cover
    from .architectures import ARCHITECTURES, Architecture, ModelParts, architecture_for, model_parts
    from .loading import load_model, load_tokenizer, load_weights
    from .specs import DEFAULT_MODEL, PACKAGED, ModelSource, resolve
    from .weights import model_entry_dir, model_key


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedlens.models' has no attribute {name!r}")
