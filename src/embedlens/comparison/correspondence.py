"""Which row of space A is which row of space B: the correspondence two spaces are compared on.

Three ways, tried in this order:
  * **identity**: both spaces have the same vocabulary (the same raw labels in the same order, checked by
    a content hash of the labels): row i is row i, every row included (a model's input against its own
    unembedding, a base model against its fine-tune);
  * **pairs**: an explicit list, one pair per line, the two tokens separated by a tab; a token is ``id:N``,
    its raw label (``Ġlist``) or its readable form (``␣list``);
  * **string**: by readable string (:mod:`embedlens.display`: byte-level ``Ġ`` and SentencePiece ``▁`` both
    become a leading ``␣``), one to one, special tokens left out. A word space (GloVe, word2vec, TF-IDF, a
    labels file) marks no word starts: its word ``the`` is matched to a token space's word-start form
    ``␣the`` where there is one, else to the bare ``the``.

Only labels are read here, never a matrix, so a bad correspondence is refused before any vector is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..display import SPACE_MARK
from ..errors import EmbedlensError

if TYPE_CHECKING:
    from ..lens import SpaceView
    from ..spaces.space import EmbeddingSpace

MATCHES = ("identity", "pairs", "string")
MARKED_SCHEMES = ("byte_level", "sentencepiece")  # vocabularies whose tokens mark a leading space


@dataclass(frozen=True)
class Correspondence:
    """Pairs of rows, ``rows_a[i]`` of A with ``rows_b[i]`` of B, in A's row order.

    Attributes:
        rows_a: int64 array of shape (n_shared,), rows of A.
        rows_b: int64 array of shape (n_shared,), rows of B.
        method: ``"identity"``, ``"pairs"`` or ``"string"``.
        n_a: rows of A in all.
        n_b: rows of B in all.
    """

    rows_a: np.ndarray
    rows_b: np.ndarray
    method: str
    n_a: int
    n_b: int

    @property
    def n_shared(self) -> int:
        return int(self.rows_a.size)

    @property
    def only_a(self) -> int:
        """Rows of A with no counterpart in B."""
        return self.n_a - self.n_shared

    @property
    def only_b(self) -> int:
        return self.n_b - self.n_shared

    @property
    def whole_a(self) -> bool:
        """Whether every row of A takes part, in row order (A's cached k-NN graph then applies)."""
        return self.n_shared == self.n_a and bool(np.array_equal(self.rows_a, np.arange(self.n_a)))

    @property
    def whole_b(self) -> bool:
        return self.n_shared == self.n_b and bool(np.array_equal(self.rows_b, np.arange(self.n_b)))

    def counts(self) -> dict[str, Any]:
        return {"match": self.method, "n_shared": self.n_shared, "only_a": self.only_a, "only_b": self.only_b}


def vocabulary_hash(space: EmbeddingSpace) -> str:
    """SHA-256 (16 hex digits) of a space's raw labels in row order: equal hashes, same vocabulary."""
    digest = hashlib.sha256(f"{len(space.labels)}\x00".encode())
    digest.update("\x00".join(space.labels).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def _scheme(view: SpaceView) -> str:
    return str(getattr(view, "token_scheme", "plain"))


def _string_keys(view: SpaceView, strip_mark: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows in order of preference, their matching keys): readable strings, special tokens left out.

    With ``strip_mark`` the leading ``␣`` is dropped from the key and word-start forms come first, so a
    plain word meets the word-start token before the bare one.
    """
    space = view.space
    display = np.asarray(space.display, dtype=object)
    rows = np.flatnonzero(~np.asarray(space.special, dtype=bool))
    keys = display[rows]
    if strip_mark and keys.size:
        marked = np.fromiter((k.startswith(SPACE_MARK) for k in keys), dtype=bool, count=keys.size)
        order = np.argsort(~marked, kind="stable")  # word-start forms first, each group in row order
        rows, keys, marked = rows[order], keys[order], marked[order]
        keys[marked] = np.asarray([k[len(SPACE_MARK):] for k in keys[marked]], dtype=object)
    return rows, keys


def match_strings(view_a: SpaceView, view_b: SpaceView) -> Correspondence:
    """One-to-one pairs by readable string (see the module docstring); the first preferred row of each key."""
    scheme_a, scheme_b = _scheme(view_a), _scheme(view_b)
    marked_a, marked_b = scheme_a in MARKED_SCHEMES, scheme_b in MARKED_SCHEMES
    rows_a, keys_a = _string_keys(view_a, strip_mark=marked_a and not marked_b)
    rows_b, keys_b = _string_keys(view_b, strip_mark=marked_b and not marked_a)
    # np.unique keeps each key's first position: the preferred row (word-start form, then lowest row)
    _, first_a = np.unique(keys_a, return_index=True)
    _, first_b = np.unique(keys_b, return_index=True)
    _, ia, ib = np.intersect1d(keys_a[first_a], keys_b[first_b], assume_unique=True, return_indices=True)
    ra, rb = rows_a[first_a[ia]], rows_b[first_b[ib]]
    order = np.argsort(ra, kind="stable")
    return Correspondence(ra[order].astype(np.int64), rb[order].astype(np.int64), "string",
                          len(view_a.space), len(view_b.space))


def _row_of(token: str, space: EmbeddingSpace, readable: dict[str, int], where: str) -> int:
    if token.startswith("id:"):
        try:
            row = space.row_of_id.get(int(token[3:]))
        except ValueError:
            row = None
    else:
        row = space.row_of_label.get(token, readable.get(token))
    if row is None:
        raise EmbedlensError(f"{where}: '{token}' is not in {space.name} (give id:N, the raw token or its readable form)")
    return int(row)


def read_pairs(path: str | Path, view_a: SpaceView, view_b: SpaceView) -> Correspondence:
    """An explicit correspondence from a file: one ``TOKEN_A<TAB>TOKEN_B`` pair per line (``#`` lines skipped)."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EmbedlensError(f"cannot read the `pairs` file {path} ({getattr(exc, 'strerror', None) or exc})") from None
    sa, sb = view_a.space, view_b.space
    readable_a = {d: i for i, d in reversed(list(enumerate(sa.display)))}
    readable_b = {d: i for i, d in reversed(list(enumerate(sb.display)))}
    ra: list[int] = []
    rb: list[int] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{file.name} line {number}"
        if len(fields) != 2:
            raise EmbedlensError(f"{where} has {len(fields)} tab-separated fields; a pair is TOKEN_A<TAB>TOKEN_B")
        ra.append(_row_of(fields[0], sa, readable_a, where))
        rb.append(_row_of(fields[1], sb, readable_b, where))
    rows_a, rows_b = np.asarray(ra, dtype=np.int64), np.asarray(rb, dtype=np.int64)
    for rows, space in ((rows_a, sa), (rows_b, sb)):
        values, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            twice = int(values[np.argmax(counts > 1)])
            raise EmbedlensError(f"{file.name} pairs '{space.display[twice]}' of {space.name} more than once; "
                                 "pairs must be one to one")
    order = np.argsort(rows_a, kind="stable")
    return Correspondence(rows_a[order], rows_b[order], "pairs", len(sa), len(sb))


def correspond(view_a: SpaceView, view_b: SpaceView, *, pairs: str | Path | None = None) -> Correspondence:
    """The correspondence of two spaces: ``pairs`` when given, else identity for one vocabulary, else by string."""
    if pairs is not None:
        return read_pairs(pairs, view_a, view_b)
    sa, sb = view_a.space, view_b.space
    if len(sa) == len(sb) and vocabulary_hash(sa) == vocabulary_hash(sb):
        rows = np.arange(len(sa), dtype=np.int64)
        return Correspondence(rows, rows.copy(), "identity", len(sa), len(sb))
    return match_strings(view_a, view_b)
