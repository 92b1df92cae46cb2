"""``EmbeddingSpace``: vectors with ids and labels — the one shape every embedlens stage consumes.

A model's static input embeddings, its unembedding matrix, contextual hidden states, TF-IDF word
vectors, word2vec and GloVe all become an ``EmbeddingSpace``: a float32 matrix of shape
(n_items, dim), one raw label and one readable label per row, the token id of each row (rows and ids
differ once a space is a subset of a vocabulary), a mask of special tokens, and free-form metadata.

Saved spaces are two files any tool can read: ``space.safetensors`` (``vectors``, and ``ids``) and
``words.txt`` (one label per line, row order; labels holding a line break are written with
``\\n``/``\\r``/``\\\\`` escapes and ``manifest.json`` says so), plus ``manifest.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path, ensure_writable_dir, write_json_atomic, write_text_atomic
from ..display import make_visible
from ..errors import EmbedlensError
from ..neighbors.exact import row_norms
from ..safetensors_mmap import read_tensors


@dataclass(frozen=True, eq=False)
class EmbeddingSpace:
    """Vectors and their labels.

    Attributes:
        vectors: array of shape (n_items, dim), float32 (may be a read-only memory map).
        labels: raw label of each row (the token as the vocabulary stores it, or the word).
        display: readable label of each row (see :func:`embedlens.display.display_token`).
        ids: array of shape (n_items,), the token id (or word index) of each row.
        special: bool array of shape (n_items,), True for special tokens.
        name: short name for titles (``smollm2-135m:input``, ``glove-50d``).
        metadata: anything describing where the vectors come from (model, hash, kind, ...).
    """

    vectors: np.ndarray
    labels: Sequence[str]
    display: Sequence[str]
    ids: np.ndarray
    special: np.ndarray
    name: str = "space"
    metadata: dict[str, Any] = field(default_factory=dict)
    norms_hint: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        if self.vectors.ndim != 2:
            raise EmbedlensError(f"vectors must be a 2-D matrix, got shape {self.vectors.shape}")
        for what, seq in (("labels", self.labels), ("display", self.display), ("ids", self.ids), ("special", self.special)):
            if len(seq) != n:
                raise EmbedlensError(f"{self.name}: {len(seq)} {what} for {n} vectors; they must match one to one")

    @classmethod
    def from_arrays(
        cls,
        vectors: np.ndarray,
        labels: Sequence[str],
        *,
        display: Sequence[str] | None = None,
        ids: np.ndarray | None = None,
        special: np.ndarray | None = None,
        name: str = "space",
        metadata: dict[str, Any] | None = None,
    ) -> EmbeddingSpace:
        vectors = np.asarray(vectors)
        if vectors.dtype != np.float32:
            vectors = vectors.astype(np.float32)
        n = vectors.shape[0] if vectors.ndim == 2 else -1
        labels = list(labels)
        return cls(
            vectors=vectors,
            labels=labels,
            display=list(display) if display is not None else [make_visible(w) for w in labels],
            ids=np.asarray(ids, dtype=np.int64) if ids is not None else np.arange(max(n, 0), dtype=np.int64),
            special=np.asarray(special, dtype=bool) if special is not None else np.zeros(max(n, 0), dtype=bool),
            name=name,
            metadata=dict(metadata or {}),
        )

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def norms(self) -> np.ndarray:
        """L2 norm of each row, shape (n_items,)."""
        if self.norms_hint is not None:
            return self.norms_hint

        return row_norms(self.vectors)

    @cached_property
    def row_of_id(self) -> dict[int, int]:
        return {int(t): i for i, t in enumerate(self.ids)}

    @cached_property
    def _id_order(self) -> np.ndarray | None:
        """Rows in increasing id order (None when the ids already increase, as a vocabulary's do)."""
        ids = np.asarray(self.ids)
        return None if bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids, kind="stable")

    def rows_of_ids(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The row of each id, -1 where the space has no such id: int64 array of the shape of ``ids``.

        The same rows as :attr:`row_of_id` without building a dict over the whole vocabulary (a one-word
        query on a 49,152-token space pays 20 ms for the dict); the last row wins where an id repeats, as there.
        """
        try:
            want = np.asarray(ids, dtype=np.int64)
        except OverflowError:  # an id past int64 (``id:99999999999999999999``) is in no space
            wide = np.asarray(ids, dtype=object)
            fits = np.asarray([-(2**63) <= int(i) < 2**63 for i in wide.reshape(-1)], dtype=bool).reshape(wide.shape)
            rows = self.rows_of_ids(np.where(fits, wide, 0).astype(np.int64))
            return np.where(fits, rows, -1).astype(np.int64)
        have = np.asarray(self.ids, dtype=np.int64)
        if have.size == 0:
            return np.full(want.shape, -1, dtype=np.int64)
        order = self._id_order
        pos = (np.searchsorted(have, want, side="right", sorter=order) - 1).clip(0, have.size - 1)
        rows = pos if order is None else order[pos]
        return np.where(have[rows] == want, rows, -1).astype(np.int64)

    @cached_property
    def row_of_label(self) -> dict[str, int]:
        """First row of each raw label."""
        out: dict[str, int] = {}
        for i, w in enumerate(self.labels):
            out.setdefault(w, i)
        return out

    def subset(self, rows: np.ndarray | Sequence[int], *, name: str | None = None) -> EmbeddingSpace:
        rows = np.asarray(rows, dtype=np.int64)
        return EmbeddingSpace(
            vectors=np.ascontiguousarray(self.vectors[rows]),
            labels=[self.labels[i] for i in rows],
            display=[self.display[i] for i in rows],
            ids=self.ids[rows],
            special=self.special[rows],
            name=name or self.name,
            metadata={**self.metadata, "subset_of": self.name, "n_subset": int(len(rows))},
            norms_hint=self.norms[rows] if "norms" in self.__dict__ or self.norms_hint is not None else None,
        )

    # -- persistence -------------------------------------------------------------------------------

    def save(self, folder: str | Path, *, manifest: dict[str, Any] | None = None) -> Path:
        """Write ``space.safetensors`` + ``words.txt`` + ``manifest.json`` into ``folder`` atomically."""
        from safetensors.numpy import save_file

        out = ensure_writable_dir(folder)
        escaped = any(("\n" in w or "\r" in w or "\\" in w) for w in self.labels)
        lines = [_escape(w) for w in self.labels] if escaped else list(self.labels)
        with atomic_path(out / "space.safetensors") as tmp:
            save_file(
                {"vectors": np.ascontiguousarray(self.vectors, dtype=np.float32), "ids": np.asarray(self.ids, dtype=np.int64)},
                str(tmp),
            )
        write_text_atomic(out / "words.txt", "\n".join(lines) + "\n")
        meta = {**self.metadata, **(manifest or {})}
        meta.update({"name": self.name, "shape": list(self.vectors.shape), "labels_escaped": escaped,
                     "special_rows": np.flatnonzero(self.special).tolist()})
        write_json_atomic(out / "manifest.json", meta)
        return out

    @classmethod
    def load(cls, folder: str | Path, *, name: str | None = None) -> EmbeddingSpace:
        """Read a folder written by :meth:`save` (or any folder with ``space.safetensors`` + ``words.txt``)."""
        folder = Path(folder)
        tensors_file, words_file = folder / "space.safetensors", folder / "words.txt"
        for f in (tensors_file, words_file):
            if not f.is_file():
                raise EmbedlensError(f"{folder} is not a saved space: {f.name} is missing")
        meta: dict[str, Any] = {}
        if (folder / "manifest.json").is_file():
            try:
                meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            except ValueError:
                raise EmbedlensError(f"{folder / 'manifest.json'} is not valid JSON") from None
        tensors = read_tensors(tensors_file)
        if "vectors" not in tensors:
            raise EmbedlensError(f"{tensors_file} has no 'vectors' tensor")
        vectors = tensors["vectors"]
        labels = read_labels(words_file, escaped=bool(meta.get("labels_escaped")))
        if len(labels) != vectors.shape[0]:
            raise EmbedlensError(f"{folder}: words.txt has {len(labels)} lines but vectors has {vectors.shape[0]} rows")
        special = np.zeros(len(labels), dtype=bool)
        special[np.asarray(meta.get("special_rows", []), dtype=np.int64)] = True
        return cls.from_arrays(
            vectors, labels, ids=tensors.get("ids"), special=special, name=name or meta.get("name", folder.name), metadata=meta
        )


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def read_labels(path: Path, *, escaped: bool = False) -> list[str]:
    """One label per line of a UTF-8 file (LF or CRLF; a final newline is not an empty label)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise EmbedlensError(f"{path} is not UTF-8 text: save the labels as UTF-8, one per line") from None
    except OSError as exc:
        raise EmbedlensError(f"cannot read {path}: {exc.strerror or exc}") from None
    if lines and lines[-1] == "":
        lines.pop()
    if lines and all(w.endswith("\r") for w in lines):  # a CRLF (Windows) file
        lines = [w[:-1] for w in lines]
    return [_unescape(w) for w in lines] if escaped else lines


def _unescape(word: str) -> str:
    out, i = [], 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and i + 1 < len(word):
            nxt = word[i + 1]
            out.append({"n": "\n", "r": "\r", "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)
