"""Which rows of a space go on the map: every token (``--all``), or the tokens a corpus uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EmbedlensError


@dataclass(frozen=True)
class Selection:
    """The rows chosen, and how.

    Attributes:
        rows: int64 array of shape (n_points,), rows of the space in ascending order.
        rule: ``"all"`` or ``"corpus"``.
        min_count: the threshold used (1 for ``all``).
        n_candidates: rows in the space.
        n_special_excluded: special tokens left out (corpus selections only).
        n_below_min_count: tokens seen in the corpus but fewer than ``min_count`` times.
    """

    rows: np.ndarray
    rule: str
    min_count: int
    n_candidates: int
    n_special_excluded: int = 0
    n_below_min_count: int = 0

    def to_dict(self) -> dict:
        return {"rule": self.rule, "min_count": self.min_count, "n_points": int(self.rows.size),
                "n_candidates": self.n_candidates, "n_special_excluded": self.n_special_excluded,
                "n_below_min_count": self.n_below_min_count}


def select_rows(n_rows: int, *, counts: np.ndarray | None = None, special: np.ndarray | None = None,
                all_tokens: bool = False, min_count: int = 1) -> Selection:
    """Rows to map.

    Args:
        n_rows: rows in the space.
        counts: int array of shape (n_rows,), corpus count of each row (needed unless ``all_tokens``).
        special: bool array of shape (n_rows,), special tokens (left out unless ``all_tokens``).
        all_tokens: every row, special tokens included, no count threshold.
        min_count: keep rows seen at least this many times in the corpus.
    """
    if min_count < 1:
        raise EmbedlensError(f"`min_count` must be at least 1, got {min_count}")
    if all_tokens:
        if n_rows == 0:
            raise EmbedlensError("the space is empty: no tokens to map")
        return Selection(np.arange(n_rows, dtype=np.int64), "all", 1, n_rows)
    if counts is None:
        raise EmbedlensError("a corpus is needed to choose tokens (or pass `all_tokens=True` for the whole vocabulary)")
    counts = np.asarray(counts)
    keep = counts >= min_count
    seen = counts > 0
    n_special = 0
    if special is not None:
        special = np.asarray(special, dtype=bool)
        n_special = int(np.count_nonzero(keep & special))
        keep &= ~special
    rows = np.flatnonzero(keep).astype(np.int64)
    below = int(np.count_nonzero(seen & ~(counts >= min_count)))
    if rows.size == 0:
        if not seen.any():
            raise EmbedlensError("no tokens of this space occur in the corpus; nothing to map")
        raise EmbedlensError(f"no tokens left after filtering: none occurs at least {min_count} times "
                             f"(the most frequent occurs {int(counts.max())} times); lower `min_count`")
    return Selection(rows, "corpus", int(min_count), int(n_rows), n_special, below)
