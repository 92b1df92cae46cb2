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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..corpus.frequencies import token_frequencies
from ..display import SPACE_MARK, WORD_START_SCHEMES
from ..errors import EmbedlensError
from ..lens import as_view
from ..neighbors.variants import matching_rows

if TYPE_CHECKING:
    from ..lens import SpaceView


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


def _row_seed(sp: Any, row: int) -> Seed:
    return Seed(sp.display[row], (int(row),), np.asarray(sp.vectors[row], dtype=np.float32))


def seeds_from_rows(view: SpaceView, rows: Sequence[int] | np.ndarray) -> list[Seed]:
    """One seed per distinct row of ``view`` (``lens.input``, ``lens.output``...), in first-seen order."""
    sp = as_view(view).space
    rows = np.asarray(rows, dtype=np.int64)
    _, first = np.unique(rows, return_index=True)
    return [_row_seed(sp, int(r)) for r in rows[np.sort(first)]]


def seeds_from_text(view: SpaceView, text: str) -> list[Seed]:
    """The model's tokens of ``text`` (special tokens skipped); a plain word space splits at whitespace."""
    if not text or not text.strip():
        raise EmbedlensError("the text is empty; give `text` a sentence")
    view = as_view(view)
    sp = view.space
    if view.is_model:
        ids = view.encode(text, add_special_tokens=False)
        rows = [sp.row_of_id[i] for i in ids if i in sp.row_of_id]
        rows = [r for r in rows if not sp.special[r]]
        if not rows:
            raise EmbedlensError("the text produced no ordinary tokens")
        return seeds_from_rows(view, rows)
    return seeds_from_words(view, text.split())


def parse_word_list(words: str | Sequence[str]) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; an empty list is an error."""
    items = [w.strip() for w in words.split(",")] if isinstance(words, str) else [str(w).strip() for w in words]
    items = [w for w in items if w]
    if not items:
        raise EmbedlensError("the word list is empty; give `words` a comma-separated list such as king,queen,list")
    return items


def seeds_from_words(view: SpaceView, words: str | Sequence[str]) -> list[Seed]:
    """Each word resolved like ``neighbors``: one seed per word (several tokens -> their mean, said in ``note``)."""
    out: list[Seed] = []
    seen: set[tuple[int, ...]] = set()
    view = as_view(view)
    sp = view.space
    for word in parse_word_list(words):
        rq = view.resolve(word)
        rows = tuple(int(r) for r in rq.rows)
        if rows in seen:
            continue
        seen.add(rows)
        label = sp.display[rows[0]] if len(rows) == 1 else word
        out.append(Seed(label, rows, np.asarray(rq.vector, dtype=np.float32), rq.note))
    return out


def whole_word_rows(view: SpaceView) -> np.ndarray:
    """Rows of whole-word tokens (see the module docstring), found by one regex over the whole vocabulary."""
    view = as_view(view)
    sp = view.space
    scheme = view.token_scheme
    letters = r"[^\W\d_]{3,}"
    pattern = rf"^{SPACE_MARK}{letters}$" if scheme in WORD_START_SCHEMES else rf"^{letters}$"
    rows = matching_rows(pattern, list(sp.display))
    return rows[~np.asarray(sp.special)[rows]]


def seeds_from_random(
    view: SpaceView,
    n: int,
    *,
    seed: int = 0,
    corpus: str | Sequence[str] | None = None,
) -> tuple[list[Seed], dict[str, Any]]:
    """``n`` whole-word tokens drawn without replacement (seeded); with ``corpus``, only tokens found in it.

    Returns:
        ``(seeds, info)`` where ``info`` says how many candidates there were (and the corpus manifest).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise EmbedlensError(f"asked for {n} random words; the number of words must be a positive number")
    view = as_view(view)
    rows = whole_word_rows(view)
    info: dict[str, Any] = {"candidates_in_vocabulary": int(rows.size)}
    if corpus:
        freqs = token_frequencies(view, list(corpus) if not isinstance(corpus, str) else [corpus], progress=False)
        rows = rows[freqs.counts[rows] > 0]
        info.update(corpus=freqs.to_dict(), candidates_in_corpus=int(rows.size))
    if n > rows.size:
        where = "in the corpus" if corpus else "in the vocabulary"
        raise EmbedlensError(f"asked for {n} random words, more than the {rows.size} whole-word tokens {where}; ask for fewer")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(rows, size=int(n), replace=False)
    return seeds_from_rows(view, chosen), info


def seeds_from_variants(view: SpaceView, word: str) -> tuple[list[Seed], str | None]:
    """The variants of ``word`` as seeds (each variant token one seed), and the query's note if any."""
    if not word or not word.strip():
        raise EmbedlensError("the word whose variants to draw is empty; give a word")
    view = as_view(view)
    result = view.variants(word)
    rows = [view.space.row_of_id[nb.id] for nb in result.neighbors]
    return seeds_from_rows(view, rows), result.note
