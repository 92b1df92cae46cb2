"""The classic spaces as space specs: ``glove-50d``, ``tfidf:DIR`` and ``word2vec:DIR``.

:func:`embedlens.handles.open_space` imports these openers by name on first use.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ..errors import EmbedlensError
from ..lens import SpaceLens
from ..spaces.space import EmbeddingSpace
from .glove import SPACE_NAME, load_glove


def _no_labels(spec: str, labels: str | None) -> None:
    if labels is not None:
        raise EmbedlensError(f"`labels` applies only to a FILE.npy/.safetensors matrix, not to `space={spec}`")


def open_glove(rest: str, labels: str | None) -> Any:
    if rest:
        raise EmbedlensError(f"'{SPACE_NAME}' takes no ':{rest}' part; use `space={SPACE_NAME}`")
    _no_labels(SPACE_NAME, labels)
    return SpaceLens(load_glove())


def _maker(kind: str) -> str:
    """The Python call that makes a ``kind`` run (its result's ``.save(DIR)`` writes the folder)."""
    return {"tfidf": "embedlens.classic.tfidf", "word2vec": "embedlens.classic.train_word2vec"}.get(kind, kind)


def _run(kind: str, rest: str, labels: str | None) -> Any:
    """``tfidf:DIR`` / ``word2vec:DIR``: a folder written by ``embedlens tfidf`` / ``embedlens word2vec``."""
    if not rest:
        raise EmbedlensError(f"`space={kind}` needs the folder of a run: `space={kind}:DIR` (DIR made by `embedlens {kind}` or by {_maker(kind)}(...).save(DIR))")
    _no_labels(f"{kind}:{rest}", labels)
    folder = Path(rest).expanduser()
    if not folder.is_dir():
        raise EmbedlensError(f"no such {kind} run folder: {rest} (make one with `embedlens {kind}` or {_maker(kind)}(...).save(DIR))")
    space = EmbeddingSpace.load(folder, name=f"{kind}:{folder.resolve().name}")
    method = space.metadata.get("method")
    if method is not None and method != kind:
        raise EmbedlensError(f"{rest} holds a {method} space, not a {kind} run; use `space={method}:{rest}` or `space=path:{rest}`")
    return SpaceLens(space)


open_tfidf = partial(_run, "tfidf")
open_word2vec = partial(_run, "word2vec")
