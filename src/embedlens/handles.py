"""What a space spec opens: a model's ``input``/``output``, or any other space.

  * ``path:DIR`` or a folder: a saved space (``space.safetensors`` + ``words.txt``).
  * ``FILE.npy`` / ``FILE.safetensors`` with ``labels=FILE.txt``: bring your own matrix.
  * ``glove-50d``, ``tfidf:DIR``, ``word2vec:DIR``: the classic spaces (:mod:`embedlens.classic.spaces`).
Other kinds can be added to ``RESOLVERS``.

This module sits above :mod:`embedlens.lens` and the stages whose spaces it opens; nothing below it
imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmbedlensError
from .lens import SpaceLens, load
from .safetensors_mmap import read_tensors
from .spaces.space import EmbeddingSpace, read_labels

# prefix (e.g. "tfidf") or exact name (e.g. "glove-50d") -> function(rest_of_spec, labels) -> SpaceLens
RESOLVERS: dict[str, Callable[[str, str | None], Any]] = {}
# the same for the spaces of other stages, imported when first opened: name -> "module:function"
BUILTIN: dict[str, str] = {
    "glove-50d": "embedlens.classic.spaces:open_glove",
    "tfidf": "embedlens.classic.spaces:open_tfidf",
    "word2vec": "embedlens.classic.spaces:open_word2vec",
}


def _load_saved(folder: str, labels: str | None) -> Any:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise EmbedlensError(f"no such space folder: {folder}")
    return SpaceLens(EmbeddingSpace.load(path))


def _load_matrix(file: str, labels: str | None) -> Any:
    path = Path(file).expanduser()
    if not path.is_file():
        raise EmbedlensError(f"no such file: {file}")
    if labels is None:
        raise EmbedlensError(f"{path.name} needs a labels file: pass `labels=FILE.txt` (one label per line)")
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


def _resolver(name: str) -> Callable[[str, str | None], Any] | None:
    if name in RESOLVERS:
        return RESOLVERS[name]
    if name in BUILTIN:
        import importlib

        module, _, attr = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    return None


def open_space(spec: str, *, labels: str | None = None) -> Any:
    """A :class:`~embedlens.lens.SpaceLens` for a space spec."""
    found = _resolver(spec)
    if found is not None:
        return found("", labels)
    prefix, sep, rest = spec.partition(":")
    found = _resolver(prefix) if sep else None
    if found is not None:
        return found(rest, labels)
    path = Path(spec).expanduser()
    if is_matrix_spec(spec):
        return _load_matrix(spec, labels)
    if path.is_dir():
        return _load_saved(spec, labels)
    # Run-backed kinds (tfidf, word2vec) need the folder a `classic` run wrote.
    names = ", ".join(sorted(k if k in _NAMED else f"{k}:DIR" for k in {*RESOLVERS, *BUILTIN} if k != "path"))
    raise EmbedlensError(f"unknown space '{spec}'", hint=f"use input, output, {names}, path:DIR or FILE.npy with `labels`")


def open_handle(model: str | None, space: str = "input", labels: str | None = None) -> Any:
    """The space to work on (a :class:`~embedlens.lens.SpaceView`): a model's ``input``/``output``, or any space spec."""
    if space in ("input", "output"):
        return load(model).view(space)
    return open_space(space, labels=labels).input


_NAMED = ("glove-50d", "input", "output")
RESOLVERS["path"] = _load_saved


def is_space_spec(spec: str) -> bool:
    """Whether ``spec`` names a space of its own (``glove-50d``, ``tfidf:DIR``, a matrix file, a saved space
    folder) rather than a model."""
    prefix, sep, _ = spec.partition(":")
    if _resolver(spec) is not None or (sep and _resolver(prefix) is not None) or is_matrix_spec(spec):
        return True
    path = Path(spec).expanduser()
    return path.is_dir() and (path / "space.safetensors").is_file()


def open_view(spec: str, *, labels: str | None = None) -> Any:
    """One space written the way ``--model`` or ``--space`` take it (a :class:`~embedlens.lens.SpaceView`).

    A model (alias, folder, ``.gguf``, cached hub name) means its input space; ``MODEL:output`` its
    unembedding (``MODEL:input`` the input again); any other spec (``glove-50d``, ``tfidf:DIR``,
    ``word2vec:DIR``, ``path:DIR``, a saved space folder, ``FILE.npy`` with ``labels``) opens as
    :func:`open_handle` opens it.
    """
    model, sep, which = spec.rpartition(":")
    if sep and model and which in ("input", "output") and not is_space_spec(model):
        if labels is not None:
            raise EmbedlensError(f"`labels` applies only to a FILE.npy/.safetensors matrix, not to model '{spec}'")
        return open_handle(model, which)
    if is_space_spec(spec):
        return open_handle(None, spec, labels)
    if labels is not None:
        raise EmbedlensError(f"`labels` applies only to a FILE.npy/.safetensors matrix, not to model '{spec}'")
    return open_handle(spec, "input")
