"""Word axes: place every token on axes defined by pairs of tokens (man -> woman, king -> queen).

For an axis from token A (vector ``a``) to token B (vector ``b``), a token ``u`` sits at

    x = (u - a) · (b - a) / |b - a|^2

so A is at 0 and B at 1, and x is the share of the way from A to B along that direction. With the
``cosine`` metric (the default) every row, ``a`` and ``b`` included, is L2-normalised first; with
``euclidean`` the raw rows are used. An axis not given by words (y without ``y_axis``, z on a 3-D map
without ``z_axis``) is the first principal direction of what is left of the centred rows once the word
directions are removed: y = (u - mean) · w, w the top eigenvector of (I - QQ^T) C (I - QQ^T), with C
the covariance of the rows and Q an orthonormal basis of the word directions (sign: largest loading
positive).

The TensorFlow projector's "custom projection" and whatlies' ``Embedding.project`` do the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import EmbedlensError
from .base import _BLOCK_ROWS, Reducer, prepared_rows

if TYPE_CHECKING:
    from ..lens import SpaceView

AXIS_NAMES = ("x", "y", "z")
FORMULA = ("x = (u - a)·(b - a) / |b - a|^2 for an axis from token A (a) to token B (b): A at 0, B at 1; "
           "{rows}; an axis without words is the first principal direction of the centred rows once the "
           "word directions are removed")


def formula(metric: str) -> str:
    rows = "u, a and b L2-normalised (cosine)" if metric == "cosine" else "raw rows u, a and b (euclidean)"
    return FORMULA.format(rows=rows)


def _pair(value: Any, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    if value is None:
        return None
    try:
        a, b = (np.asarray(v, dtype=np.float64).reshape(-1) for v in value)
    except (TypeError, ValueError):
        raise EmbedlensError(f"{name} must be a pair of vectors (a, b)") from None
    return a, b


class AxesReducer(Reducer):
    """A map whose axes are pairs of tokens.

    Args:
        x_axis: ``(a, b)``, the vectors of the tokens at x = 0 and x = 1 (each of shape (d,)).
        y_axis: ``(c, d)`` for y, or None: y is then the first principal direction left after removing x.
        z_axis: ``(e, f)`` for z (needs ``y_axis``), or None.
        n_components: 2 or 3; default 3 with ``z_axis``, else 2 (a 3-D map without ``z_axis`` takes z from
            the principal directions too).
        metric: ``"cosine"`` (every vector L2-normalised first) or ``"euclidean"`` (raw vectors).
        seed: unused (the map is exact); kept for the common reducer shape.

    Fitted attributes: ``embedding_`` (n, k) float32, ``directions_`` (k, d) the unit direction of each
    axis, ``word_axes_`` (which axes come from words), ``params_``, ``notes_``, ``timings_``.
    """

    method = "axes"

    def __init__(self, *, x_axis: Sequence[Any], y_axis: Sequence[Any] | None = None,
                 z_axis: Sequence[Any] | None = None, n_components: int | None = None, metric: str = "cosine",
                 seed: int = 0) -> None:
        super().__init__(n_components=n_components if n_components is not None else (3 if z_axis is not None else 2),
                         metric=metric, seed=seed)
        self.x_axis = x_axis
        self.y_axis = y_axis
        self.z_axis = z_axis

    def _pairs(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        return [_pair(self.x_axis, "x_axis"), _pair(self.y_axis, "y_axis"), _pair(self.z_axis, "z_axis")]

    def _check_params(self) -> None:
        super()._check_params()
        pairs = self._pairs()
        if pairs[0] is None:
            raise EmbedlensError("an axes map needs an x axis: two tokens A and B")
        if pairs[2] is not None and pairs[1] is None:
            raise EmbedlensError("a z axis needs a y axis too")
        if pairs[2] is not None and self.n_components != 3:
            raise EmbedlensError("a z axis makes a 3-D map: n_components must be 3")
        dims = {v.shape[0] for p in pairs if p is not None for v in p}
        if len(dims) > 1:
            raise EmbedlensError(f"the axis vectors have different lengths ({sorted(dims)})")

    def _anchor(self, v: np.ndarray) -> np.ndarray:
        if self.metric != "cosine":
            return v
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v

    def _fit(self, X: np.ndarray, neighbors: Any = None) -> None:  # the axes need no neighbours
        pairs = self._pairs()
        n, d = X.shape
        with self._timed("prepare"):
            U = prepared_rows(X, self.metric)  # float32 copy, L2-normalised rows for cosine
        k = int(self.n_components)
        out = np.empty((n, k), dtype=np.float32)
        directions = np.zeros((k, d), dtype=np.float64)
        word = [p is not None for p in pairs[:k]]
        with self._timed("word_axes"):
            for j, pair in enumerate(pairs[:k]):
                if pair is None:
                    continue
                a, b = (self._anchor(v) for v in pair)
                if a.shape[0] != d:
                    raise EmbedlensError(f"the {AXIS_NAMES[j]} axis vectors have {a.shape[0]} dimensions, the rows {d}")
                v = b - a
                vv = float(v @ v)
                if not vv > 1e-24:
                    raise EmbedlensError(f"the two ends of the {AXIS_NAMES[j]} axis are the same vector: "
                                         "give two different tokens")
                # x = (u - a)·v / |v|^2 = (u·v - a·v) / |v|^2, one matrix-vector product
                out[:, j] = ((U @ v.astype(np.float32)).astype(np.float64) - float(a @ v)) / vv
                directions[j] = v / np.sqrt(vv)
        if not all(word):
            with self._timed("principal_axes"):
                self._principal_axes(U, directions, word, out)
        self.embedding_ = out
        self.directions_ = directions
        self.word_axes_ = word
        self.params_ = {"method": "axes", "n_components": k, "metric": self.metric,
                        "formula": formula(self.metric),
                        "axes": [("words" if w else "principal direction of the rest") for w in word],
                        "n_samples": int(n), "n_features": int(d)}

    def _principal_axes(self, U: np.ndarray, directions: np.ndarray, word: list[bool], out: np.ndarray) -> None:
        """Fill the axes that have no words with the top principal directions orthogonal to the word ones."""
        n, d = U.shape
        mean = U.mean(axis=0, dtype=np.float64)
        cov = np.zeros((d, d), dtype=np.float64)
        mean32 = mean.astype(np.float32)
        for start in range(0, n, _BLOCK_ROWS):
            block = U[start: start + _BLOCK_ROWS] - mean32
            cov += (block.T @ block).astype(np.float64)
        cov /= max(n - 1, 1)
        given = directions[np.asarray(word, dtype=bool)]
        if given.shape[0]:
            q, _ = np.linalg.qr(given.T)  # (d, m) orthonormal basis of the word directions
            proj = np.eye(d) - q @ q.T
            cov = proj @ cov @ proj
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(values)[::-1]
        missing = [j for j, w in enumerate(word) if not w]
        for rank, j in enumerate(missing):
            w = vectors[:, order[rank]]
            w = w if w[np.argmax(np.abs(w))] >= 0 else -w
            directions[j] = w
            w32 = w.astype(np.float32)
            for start in range(0, n, _BLOCK_ROWS):
                out[start: start + _BLOCK_ROWS, j] = (U[start: start + _BLOCK_ROWS] - mean32) @ w32
            share = float(values[order[rank]] / max(float(np.trace(cov)), 1e-30))
            self.notes_.append(f"the {AXIS_NAMES[j]} axis is the first principal direction left after removing the "
                               f"word axes ({share:.1%} of the remaining variance)" if rank == 0 else
                               f"the {AXIS_NAMES[j]} axis is the next principal direction ({share:.1%})")


def resolve_axes(view: SpaceView, axes: Sequence[Sequence[str] | None]) -> list[dict[str, Any] | None]:
    """Resolve each axis' two queries (word, ``id:N`` or ``tok:RAW``) in a space (``lens.input``...) to one token each.

    Returns, per axis, ``{"queries": [A, B], "rows": [ra, rb], "ids": [...], "display": [...], "vectors": (a, b)}``.
    A query that is several tokens, an axis from a token to itself: one-line errors.
    """
    space = view.space
    out: list[dict[str, Any] | None] = []
    for j, pair in enumerate(axes):
        if pair is None:
            out.append(None)
            continue
        if len(pair) != 2:
            raise EmbedlensError(f"the {AXIS_NAMES[j]} axis needs exactly two tokens A and B, got {len(pair)}")
        rows = []
        for query in pair:
            resolved = view.resolve(str(query))
            if len(resolved.rows) != 1:
                shown = ", ".join(space.display[r] for r in resolved.rows)
                raise EmbedlensError(f"'{query}' is {len(resolved.rows)} tokens ({shown}); an axis end must be one "
                                     f"token: name one with tok:RAW (e.g. tok:{_suggestion(view, str(query))}) "
                                     "or id:N")
            rows.append(int(resolved.rows[0]))
        if rows[0] == rows[1]:
            raise EmbedlensError(f"the {AXIS_NAMES[j]} axis goes from '{pair[0]}' to the same token "
                                 f"({space.display[rows[0]]}): give two different tokens")
        out.append({"queries": [str(q) for q in pair], "rows": rows, "ids": [int(space.ids[r]) for r in rows],
                    "display": [space.display[r] for r in rows],
                    "vectors": tuple(np.asarray(space.vectors[r], dtype=np.float64) for r in rows)})
    return out


def _suggestion(view: SpaceView, query: str) -> str:
    """The raw form of a one-token spelling of ``query`` (with a leading space, as inside a sentence), or of
    its first token."""
    space = view.space
    if not query.startswith(("id:", "tok:", " ")):
        try:
            spaced = view.resolve(" " + query)
        except EmbedlensError:
            spaced = None
        if spaced is not None and len(spaced.rows) == 1:
            return space.labels[spaced.rows[0]]
    try:
        return space.labels[view.resolve(query).rows[0]]
    except EmbedlensError:
        return "RAW"


def check_axis_options(method: str, dims: int, x_axis: Any, y_axis: Any, z_axis: Any) -> None:
    """Refuse inconsistent axis options before any work (queries are resolved later, with the lens)."""
    if method != "axes":
        raise EmbedlensError(f"word axes make their own map: use the axes method, not {method}")
    if x_axis is None:
        raise EmbedlensError("an axes map needs an x axis: two tokens A and B")
    if z_axis is not None and y_axis is None:
        raise EmbedlensError("a z axis needs a y axis too")
    if dims not in (2, 3):
        raise EmbedlensError(f"dims must be 2 or 3, got {dims}")
    for name, pair in zip(AXIS_NAMES, (x_axis, y_axis, z_axis), strict=True):
        if pair is None:
            continue
        if isinstance(pair, str) or len(pair) != 2:
            raise EmbedlensError(f"the {name} axis needs exactly two tokens A and B")
        if any(not str(q) for q in pair):
            raise EmbedlensError(f"the {name} axis has an empty query")
        if str(pair[0]) == str(pair[1]):
            raise EmbedlensError(f"the {name} axis goes from '{pair[0]}' to itself: give two different tokens")
