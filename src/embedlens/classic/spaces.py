"""Registers the classic spaces with ``--space``: ``glove-50d``, ``tfidf:DIR`` and ``word2vec:DIR``.

Imported by :func:`embedlens.spaces.registry.open_space` on first use; importing it only fills
``RESOLVERS`` (nothing heavy is imported until a space is opened).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ..errors import EmbedlensError
from ..spaces.registry import RESOLVERS


def _no_labels(spec: str, labels: str | None) -> None:
    if labels is not None:
        raise EmbedlensError(f"--labels applies only to a FILE.npy/.safetensors matrix, not to --space {spec}")


def _glove(rest: str, labels: str | None) -> Any:
    from ..lens import SpaceLens
    from .glove import SPACE_NAME, load_glove

    if rest:
        raise EmbedlensError(f"'{SPACE_NAME}' takes no ':{rest}' part; use --space {SPACE_NAME}")
    _no_labels(SPACE_NAME, labels)
    return SpaceLens(load_glove())


def _run(kind: str, rest: str, labels: str | None) -> Any:
    """``tfidf:DIR`` / ``word2vec:DIR``: a folder written by ``embedlens tfidf`` / ``embedlens word2vec``."""
    from ..lens import SpaceLens
    from ..spaces.space import EmbeddingSpace

    if not rest:
        raise EmbedlensError(f"--space {kind} needs the run's folder: --space {kind}:DIR (written by `embedlens {kind} CORPUS --out DIR`)")
    _no_labels(f"{kind}:{rest}", labels)
    folder = Path(rest).expanduser()
    if not folder.is_dir():
        raise EmbedlensError(f"no such {kind} run folder: {rest} (write one with `embedlens {kind} CORPUS --out {rest}`)")
    space = EmbeddingSpace.load(folder, name=f"{kind}:{folder.resolve().name}")
    method = space.metadata.get("method")
    if method is not None and method != kind:
        raise EmbedlensError(f"{rest} holds a {method} space, not a {kind} run; use --space {method}:{rest} or path:{rest}")
    return SpaceLens(space)


RESOLVERS["glove-50d"] = _glove
RESOLVERS["tfidf"] = partial(_run, "tfidf")
RESOLVERS["word2vec"] = partial(_run, "word2vec")
