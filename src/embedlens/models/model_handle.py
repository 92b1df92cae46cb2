"""``ModelHandle``: what the model-running helpers read of a handle.

A :class:`~embedlens.lens.ModelLens` is one; the helpers under ``models/`` sit below ``lens.py`` and so name the
attributes they use (a ``typing.Protocol``) instead of importing the class.
"""

from __future__ import annotations

from typing import Any, Protocol

from .specs import ModelSource


class ModelHandle(Protocol):
    """A language model's handle: its name, cache metadata, source, tokenizers, static space and network.

    Helpers may keep per-handle state in its ``__dict__`` (networks and runners loaded for it).
    """

    name: str
    meta: dict[str, Any]
    source: ModelSource

    @property
    def space(self) -> Any: ...  # an EmbeddingSpace (spaces/ sits above models/)

    @property
    def tokenizer(self) -> Any: ...

    @property
    def fast_tokenizer(self) -> Any: ...

    @property
    def model(self) -> Any: ...
