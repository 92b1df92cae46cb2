"""Models: specs, the per-architecture table, and offline loading."""

from .architectures import ARCHITECTURES, Architecture, ModelParts, architecture_for, model_parts
from .loading import load_model, load_tokenizer, load_weights
from .specs import DEFAULT_MODEL, PACKAGED, ModelSource, resolve
from .weights import model_entry_dir, model_key

__all__ = [
    "ARCHITECTURES", "Architecture", "DEFAULT_MODEL", "ModelParts", "ModelSource", "PACKAGED",
    "architecture_for", "load_model", "load_tokenizer", "load_weights", "model_entry_dir", "model_key", "model_parts", "resolve",
]
