"""Seeds of an embedding graph: the tokens a graph starts from.

Four ways to choose them, as the command line offers them:
  * a text: the model's tokens of it (special tokens skipped, each distinct token once);
  * a word list: each word resolved like ``neighbors`` does (a word, ``id:N`` or ``tok:RAW``); a word that
    splits into several tokens becomes one seed, the mean of its tokens' vectors, labelled with the word;
  * N random whole words: a seeded draw from the vocabulary's whole-word tokens (for byte-level BPE and
    SentencePiece a token that starts a word — shown as ``␣`` — followed by at least three letters; for
    other vocabularies a run of at least three letters), never fragments or special tokens, optionally
    only tokens that occur in a corpus;
  * the variants of a word (``list``, ``␣list``, ``List``, ``lists``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..display import SPACE_MARK
from ..errors import EmbedlensError
from ..neighbors.variants import matching_rows

_START_SCHEMES = ("byte_level", "sentencepiece")


@dataclass(frozen=True)
class Seed:
    """One seed: the rows it stands for in the space, and its vector (the mean when several rows)."""

    label: str
    rows: tuple[int, ...]
    vector: np.ndarray = field(repr=False)
    note: str | None = None

    @property
    def single(self) -> bool:
        return len(self.rows) == 1


def _space(lens: Any, which: str) -> Any:
    return lens.get_space(which)


def _row_seed(sp: Any, row: int) -> Seed:
    return Seed(sp.display[row], (int(row),), np.asarray(sp.vectors[row], dtype=np.float32))


def seeds_from_rows(lens: Any, rows: Sequence[int] | np.ndarray, which: str = "input") -> list[Seed]:
    """One seed per distinct row, in first-seen order."""
    sp = _space(lens, which)
    rows = np.asarray(rows, dtype=np.int64)
    _, first = np.unique(rows, return_index=True)
    return [_row_seed(sp, int(r)) for r in rows[np.sort(first)]]


def seeds_from_text(lens: Any, text: str, which: str = "input") -> list[Seed]:
    """The model's tokens of ``text`` (special tokens skipped); a plain word space splits at whitespace."""
    if not text or not text.strip():
        raise EmbedlensError("the text is empty; give --text a sentence")
    sp = _space(lens, which)
    if hasattr(lens, "encode"):
        ids = lens.encode(text, add_special_tokens=False)
        rows = [sp.row_of_id[i] for i in ids if i in sp.row_of_id]
        rows = [r for r in rows if not sp.special[r]]
        if not rows:
            raise EmbedlensError("the text produced no ordinary tokens")
        return seeds_from_rows(lens, rows, which)
    return seeds_from_words(lens, text.split(), which)


def parse_word_list(words: str | Sequence[str]) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; an empty list is an error."""
    items = [w.strip() for w in words.split(",")] if isinstance(words, str) else [str(w).strip() for w in words]
    items = [w for w in items if w]
    if not items:
        raise EmbedlensError("the word list is empty; give --words a comma-separated list such as king,queen,list")
    return items


def seeds_from_words(lens: Any, words: str | Sequence[str], which: str = "input") -> list[Seed]:
    """Each word resolved like ``neighbors``: one seed per word (several tokens -> their mean, said in ``note``)."""
    out: list[Seed] = []
    seen: set[tuple[int, ...]] = set()
    sp = _space(lens, which)
    for word in parse_word_list(words):
        rq = lens.resolve(word, which)
        rows = tuple(int(r) for r in rq.rows)
        if rows in seen:
            continue
        seen.add(rows)
        label = sp.display[rows[0]] if len(rows) == 1 else word
        out.append(Seed(label, rows, np.asarray(rq.vector, dtype=np.float32), rq.note))
    return out


def whole_word_rows(lens: Any, which: str = "input") -> np.ndarray:
    """Rows of whole-word tokens (see the module docstring), found by one regex over the whole vocabulary."""
    sp = _space(lens, which)
    scheme = (getattr(lens, "meta", None) or {}).get("token_scheme", "plain") if hasattr(lens, "entry") else "plain"
    letters = r"[^\W\d_]{3,}"
    pattern = rf"^{SPACE_MARK}{letters}$" if scheme in _START_SCHEMES else rf"^{letters}$"
    rows = matching_rows(pattern, list(sp.display))
    return rows[~np.asarray(sp.special)[rows]]


def seeds_from_random(
    lens: Any,
    n: int,
    *,
    seed: int = 0,
    corpus: str | Sequence[str] | None = None,
    which: str = "input",
) -> tuple[list[Seed], dict[str, Any]]:
    """``n`` whole-word tokens drawn without replacement (seeded); with ``corpus``, only tokens found in it.

    Returns:
        ``(seeds, info)`` where ``info`` says how many candidates there were (and the corpus manifest).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise EmbedlensError(f"--random needs a positive number of words, got {n}")
    rows = whole_word_rows(lens, which)
    info: dict[str, Any] = {"candidates_in_vocabulary": int(rows.size)}
    if corpus:
        from ..corpus.frequencies import token_frequencies

        freqs = token_frequencies(lens, list(corpus) if not isinstance(corpus, str) else [corpus], which=which,
                                  progress=False)
        rows = rows[freqs.counts[rows] > 0]
        info.update(corpus=freqs.to_dict(), candidates_in_corpus=int(rows.size))
    if n > rows.size:
        where = "in the corpus" if corpus else "in the vocabulary"
        raise EmbedlensError(f"--random {n} is more than the {rows.size} whole-word tokens {where}; ask for fewer")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(rows, size=int(n), replace=False)
    return seeds_from_rows(lens, chosen, which), info


def seeds_from_variants(lens: Any, word: str, which: str = "input") -> tuple[list[Seed], str | None]:
    """The variants of ``word`` as seeds (each variant token one seed), and the query's note if any."""
    if not word or not word.strip():
        raise EmbedlensError("the word for --variants is empty")
    result = lens.variants(word, space=which)
    sp = _space(lens, which)
    rows = [sp.row_of_id[nb.id] for nb in result.neighbors]
    return seeds_from_rows(lens, rows, which), result.note
