"""Variants of a word in a vocabulary: ``list``, `` list``, ``List``, ``_list``, ``lists``, ``listed``.

A token is a variant when its *core* — the readable token with leading word-start markers (space,
``_``, ``▁``, ``##``) removed, lower-cased — equals the word, or is the word plus a common inflection
suffix. Matching runs as one compiled regular expression over the whole vocabulary joined into one
string, not a Python loop per token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "ment", "ments", "ion", "ions")
_PREFIX = r"(?:[ \u2581_\-.]|\u0120|##|␣)*"  # space, ▁, _, -, ., Ġ, ##, the display space marker


def variant_rows(word: str, labels: Sequence[str], *, suffixes: Sequence[str] = SUFFIXES) -> np.ndarray:
    """Rows of ``labels`` (readable token strings) that are variants of ``word``."""
    core = word.strip().lstrip(" _▁-.").lower()
    if not core:
        return np.zeros(0, dtype=np.int64)
    alternatives = "|".join(re.escape(s) for s in sorted(suffixes, key=len, reverse=True))
    return matching_rows(rf"^{_PREFIX}{re.escape(core)}(?:{alternatives})?$", labels, re.IGNORECASE)


def matching_rows(pattern: str, labels: Sequence[str], flags: int = 0) -> np.ndarray:
    """Rows of ``labels`` where ``pattern`` (anchored with ^ and $ per label) matches, in one regex pass.

    The labels are joined one per line (display strings never hold a raw line break), so a whole
    vocabulary is searched by a single ``finditer`` instead of a Python loop of matches.
    """
    text = "\n".join(label.replace("\n", " ") for label in labels)
    starts = np.fromiter((m.start() for m in re.finditer(pattern, text, flags | re.MULTILINE)), dtype=np.int64)
    if starts.size == 0:
        return starts
    line_starts = np.cumsum([0] + [len(label) + 1 for label in labels[:-1]])
    return np.searchsorted(line_starts, starts, side="right") - 1
