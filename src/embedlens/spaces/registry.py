"""Named and file-backed spaces: what ``--space`` accepts besides a model's ``input``/``output``.

  * ``path:DIR`` or a folder: a saved space (``space.safetensors`` + ``words.txt``).
  * ``FILE.npy`` / ``FILE.safetensors`` with ``labels=FILE.txt``: bring your own matrix.
Further kinds (packaged word vectors, TF-IDF and word2vec runs) register themselves in ``RESOLVERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .space import read_labels

# prefix (e.g. "tfidf") or exact name (e.g. "glove-50d") -> function(rest_of_spec, labels) -> SpaceLens
RESOLVERS: dict[str, Callable[[str, str | None], Any]] = {}


def _load_saved(folder: str, labels: str | None) -> Any:
    from ..lens import SpaceLens
    from .space import EmbeddingSpace

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise EmbedlensError(f"no such space folder: {folder}")
    return SpaceLens(EmbeddingSpace.load(path))


def _load_matrix(file: str, labels: str | None) -> Any:
    from ..lens import SpaceLens
    from .safetensors_mmap import read_tensors
    from .space import EmbeddingSpace

    path = Path(file).expanduser()
    if not path.is_file():
        raise EmbedlensError(f"no such file: {file}")
    if labels is None:
        raise EmbedlensError(f"{path.name} needs a labels file: pass --labels FILE.txt (one label per line)")
    if path.suffix == ".npy":
        try:
            vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise EmbedlensError(f"{file} is not a plain .npy matrix ({exc})") from None
    else:
        tensors = read_tensors(path)
        if len(tensors) != 1 and "vectors" not in tensors:
            raise EmbedlensError(f"{file} holds {len(tensors)} tensors; name the matrix 'vectors'")
        vectors = tensors.get("vectors", next(iter(tensors.values())))
    if vectors.ndim != 2:
        raise EmbedlensError(f"{file} holds an array of shape {vectors.shape}; a (n_items, dim) matrix is needed")
    label_path = Path(labels).expanduser()
    if not label_path.is_file():
        raise EmbedlensError(f"no such labels file: {labels}")
    words = read_labels(label_path)
    if len(words) != vectors.shape[0]:
        raise EmbedlensError(f"{label_path.name} has {len(words)} labels but {path.name} has {vectors.shape[0]} rows")
    return SpaceLens(EmbeddingSpace.from_arrays(np.asarray(vectors, dtype=np.float32), words, name=path.stem,
                                                metadata={"kind": "matrix", "file": str(path)}))


MATRIX_SUFFIXES = (".npy", ".safetensors")


def is_matrix_spec(spec: str) -> bool:
    """Whether a space spec names a bare matrix file (which needs a labels file beside it)."""
    return Path(spec).suffix in MATRIX_SUFFIXES


def open_space(spec: str, *, labels: str | None = None) -> Any:
    """A :class:`~embedlens.lens.SpaceLens` for a ``--space`` spec."""
    _register_builtin()
    if spec in RESOLVERS:
        return RESOLVERS[spec]("", labels)
    prefix, sep, rest = spec.partition(":")
    if sep and prefix in RESOLVERS:
        return RESOLVERS[prefix](rest, labels)
    path = Path(spec).expanduser()
    if is_matrix_spec(spec):
        return _load_matrix(spec, labels)
    if path.is_dir():
        return _load_saved(spec, labels)
    # Run-backed kinds (tfidf, word2vec) need the folder a `classic` run wrote.
    names = ", ".join(sorted(k if k in _NAMED else f"{k}:DIR" for k in RESOLVERS if k != "path"))
    raise EmbedlensError(f"unknown space '{spec}'", hint=f"use input, output, {names}, path:DIR or FILE.npy with --labels")


def open_handle(model: str | None, space: str = "input", labels: str | None = None) -> tuple[Any, str]:
    """The handle to work on and which of its spaces to use: a model's ``input``/``output``, or any space spec."""
    if space in ("input", "output"):
        from ..lens import load

        return load(model), space
    return open_space(space, labels=labels), "input"


_NAMED = ("glove-50d", "input", "output")


def _register_builtin() -> None:
    RESOLVERS.setdefault("path", _load_saved)
    try:  # classic spaces register themselves when that stage is present
        import importlib

        importlib.import_module("embedlens.classic.spaces")
    except ModuleNotFoundError as exc:
        if exc.name not in ("embedlens.classic", "embedlens.classic.spaces"):
            raise
