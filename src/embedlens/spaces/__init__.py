"""Embedding spaces: the ``EmbeddingSpace`` type and the cached extraction of a model's matrices."""

from .extract import ModelEntry, open_entry
from .space import EmbeddingSpace

__all__ = ["EmbeddingSpace", "ModelEntry", "open_entry"]
