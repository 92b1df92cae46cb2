"""The writing system of each token, for ``--color script`` on multilingual vocabularies.

Classes (in this order, the first that applies): ``special`` (a special token, shown ``⟪...⟫``); a letter
script when the token holds letters (the script with most letters: ``Latin``, ``Cyrillic``, ``Greek``,
``CJK`` (Han, kana, Hangul, bopomofo), ``Arabic``, else ``other letters``); ``bytes`` (a piece of a
character, shown ``⟨0xNN⟩``); ``digits``; ``punctuation`` (punctuation and symbols, emoji included);
``whitespace`` (spaces, newlines and invisible characters, shown ``␣ ↵ ⇥ ␍ ⟨U+XXXX⟩``).

Vectorised over the vocabulary: all readable tokens are joined and read as one UTF-32 array of code
points; only the distinct code points (a few thousand even for Gemma's 262,144 tokens) are looked up in
``unicodedata``; per-token counts come from one ``bincount``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

SCRIPTS = ("Latin", "Cyrillic", "Greek", "CJK", "Arabic", "other letters", "digits", "punctuation",
           "whitespace", "bytes", "special")
# colours: distinct, colour-blind-friendly where possible (Okabe-Ito first, then greys for the non-letters)
SCRIPT_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#7f7f7f",
                 "#c7c7c7", "#8c564b", "#000000")
_LETTERS = 6  # the first six classes are letter scripts
_DIGIT, _PUNCT, _SPACE, _BYTES, _SPECIAL = 6, 7, 8, 9, 10
_MARK_SPACE = {"␣", "↵", "⇥", "␍"}
_CJK_NAMES = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO", "IDEOGRAPHIC", "HALFWIDTH KATAKANA",
              "HALFWIDTH HANGUL")


def _class_of(ch: str) -> int:
    """Class index of one code point (letters: their script; markers of the readable form: whitespace)."""
    if ch in _MARK_SPACE:
        return _SPACE
    cat = unicodedata.category(ch)
    if cat.startswith("L"):
        name = unicodedata.name(ch, "")
        if name.startswith("LATIN"):
            return 0
        if name.startswith("CYRILLIC"):
            return 1
        if name.startswith(("GREEK", "COPTIC")):
            return 2
        if name.startswith(_CJK_NAMES):
            return 3
        if name.startswith("ARABIC"):
            return 4
        return 5
    if cat == "Nd" or cat.startswith("N"):
        return _DIGIT
    if cat.startswith("Z") or cat.startswith("C"):
        return _SPACE
    if cat.startswith("M"):  # a combining mark alone: counts with punctuation (it has no letter)
        return _PUNCT
    return _PUNCT


def classify_scripts(display: Sequence[str]) -> np.ndarray:
    """Class index into :data:`SCRIPTS` of each readable token (int8 array of shape (n,))."""
    n = len(display)
    out = np.full(n, _SPACE, dtype=np.int8)
    if n == 0:
        return out
    lengths = np.fromiter(map(len, display), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(display).encode("utf-32-le"), dtype=np.uint32)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # special tokens: ⟪...⟫
    ends = starts + lengths - 1
    nonempty = lengths >= 2
    special = np.zeros(n, dtype=bool)
    special[nonempty] = (cps[starts[nonempty]] == ord("⟪")) & (cps[ends[nonempty]] == ord("⟫"))
    # ⟨0xNN⟩ (bytes) and ⟨U+XXXX⟩ (invisible characters): everything between ⟨ and ⟩ is a marker
    opens, closes = cps == ord("⟨"), cps == ord("⟩")
    inside = (np.cumsum(opens) - np.cumsum(closes) + closes) > 0
    nxt = np.append(cps[1:], 0)
    byte_start = opens & (nxt == ord("0"))
    has_bytes = np.bincount(owner[byte_start], minlength=n) > 0
    uniq, inverse = np.unique(cps, return_inverse=True)
    table = np.fromiter((_class_of(chr(c)) for c in uniq.tolist()), dtype=np.int64, count=uniq.size)
    cls = table[inverse]
    cls[inside] = _SPACE
    counts = np.bincount(owner * len(SCRIPTS) + cls, minlength=n * len(SCRIPTS)).reshape(n, len(SCRIPTS))
    letters = counts[:, :_LETTERS]
    has_letters = letters.sum(axis=1) > 0
    out[counts[:, _PUNCT] > 0] = _PUNCT
    out[counts[:, _DIGIT] > 0] = _DIGIT
    out[has_bytes] = _BYTES
    out[has_letters] = np.argmax(letters[has_letters], axis=1).astype(np.int8)
    out[special] = _SPECIAL
    return out


def script_names(classes: np.ndarray) -> list[str]:
    return np.asarray(SCRIPTS, dtype=object)[np.asarray(classes, dtype=np.int64)].tolist()
