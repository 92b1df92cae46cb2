"""Standard word-vector evaluations: WordSim-353, SimLex-999 (Spearman) and the Google analogy set.

The files are the ones gensim ships in its test data (``gensim.test.utils.datapath``); any file in the
same format can be given instead.

Word pairs: the cosine of each pair's vectors against the human score, Spearman's rank correlation
(``scipy.stats.spearmanr``) over the pairs whose two words are in the space; ``coverage`` is the
fraction of pairs used.

Analogies ("Athens Greece Baghdad Iraq": Greece - Athens + Baghdad should be Iraq): 3CosAdd over unit
vectors, the three inputs excluded, top-1 must be the expected word; ``coverage`` is the fraction of
questions whose four words are in the searched vocabulary. As word2vec's ``compute-accuracy`` tool
did, the search (and the words a question may use) is restricted to the ``restrict_vocab`` first
rows, the 30,000 most frequent words by default (gensim 4's ``evaluate_word_analogies`` defaults to
300,000: pass ``restrict_vocab=300_000`` to compare with it). Scores are computed for batches of
questions at once as one matrix product.

Word lookup in a word space is case-insensitive as in gensim: a word matches the most frequent row
whose label has the same upper-case form. In a language model (a :class:`~embedlens.lens.ModelLens`)
a word's vector is its token's embedding when the word is one token, written with a leading space (its
form inside running text) or without; otherwise the mean of its tokens (the shorter of the two
tokenizations, the leading-space form on ties). Every word is then covered for the word pairs, so
``single_token_coverage`` says how many pairs used single tokens only. Analogy answers must be rows,
so a model's analogy questions count as covered only when all four words are single tokens among the
first ``restrict_vocab`` token ids (which in BPE vocabularies roughly follow merge order, not frequency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus.reading import _gensim_test_file
from ..errors import EmbedlensError, require
from ..lens import Lens, SpaceView, as_view
from ..neighbors.exact import normalized_rows
from ..timing import Timings

DATASETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt", "analogies": "questions-words.txt"}
TASKS = tuple(DATASETS)
DEFAULT_RESTRICT = 30_000
_BATCH_ELEMS = 1 << 23  # scores held at once (32 MiB of float32)
_TOP = 5  # candidates looked at per question, as gensim does (topn=5)


def dataset_path(name: str) -> Path:
    """Path of a packaged evaluation file (from gensim's test data)."""
    return _gensim_test_file(DATASETS[name])


# -- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairScore:
    """Spearman correlation between cosine similarities and human scores."""

    file: str
    spearman: float | None
    pvalue: float | None
    coverage: float
    n_pairs: int
    n_used: int
    single_token_coverage: float | None = None  # language models only

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.single_token_coverage is None:
            out.pop("single_token_coverage")
        return out


@dataclass(frozen=True)
class AnalogyScore:
    """Top-1 accuracy of 3CosAdd on analogy questions, overall and per section."""

    file: str
    accuracy: float | None
    coverage: float
    n_questions: int
    n_used: int
    n_correct: int
    restrict_vocab: int
    sections: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """Scores of one space on the word-pair and analogy sets."""

    space: str
    kind: str  # "space" (word vectors) or "model" (a language model's token embeddings)
    wordsim353: PairScore | None = None
    simlex999: PairScore | None = None
    analogies: AnalogyScore | None = None
    word_vectors: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"space": self.space, "kind": self.kind}
        for name in TASKS:
            score = getattr(self, name)
            if score is not None:
                out[name] = score.to_dict()
        out["word_vectors"] = self.word_vectors
        out["timings"] = dict(self.timings)
        return out


# -- reading the files -------------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise EmbedlensError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_pairs(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """``word1 word2 score`` lines (tab- or space-separated, ``#`` comments and a header skipped)."""
    path = Path(path)
    a, b, gold = [], [], []
    for line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 3:
            continue
        try:
            score = float(parts[2])
        except ValueError:
            continue  # a header line such as "word1 word2 score"
        a.append(parts[0].strip())
        b.append(parts[1].strip())
        gold.append(score)
    if not gold:
        raise EmbedlensError(f"{path} has no word pairs (expected lines 'word1<TAB>word2<TAB>score')")
    return a, b, np.asarray(gold, dtype=np.float64)


def read_analogies(path: str | Path) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """Questions ``a b c expected`` and the section of each (``: section`` header lines)."""
    path = Path(path)
    questions, sections, section = [], [], "all"
    for line in _lines(path):
        if line.startswith(":"):
            section = line.lstrip(":").strip() or "all"
            continue
        parts = line.split()
        if len(parts) != 4:
            continue
        questions.append((parts[0], parts[1], parts[2], parts[3]))
        sections.append(section)
    if not questions:
        raise EmbedlensError(f"{path} has no analogy questions (expected lines 'a b c expected', sections as ': name')")
    return questions, sections


# -- words to vectors --------------------------------------------------------------------------------


class _WordLookup:
    """Rows and vectors of words in a lens, following the rules in the module docstring."""

    def __init__(self, lens: Lens | SpaceView, which: str | None = None) -> None:
        self.view = as_view(lens, which)
        self.lens, self.which = self.view.lens, self.view.which
        self.space = self.view.space
        self.is_model = self.view.is_model
        self._upper: dict[int, dict[str, int]] = {}

    def upper_index(self, limit: int) -> dict[str, int]:
        """Upper-case label -> first (most frequent) row among the first ``limit`` rows."""
        if limit not in self._upper:
            labels = self.space.labels
            n = min(limit, len(labels))
            uppers = [labels[i].upper() for i in range(n)]
            self._upper[limit] = dict(zip(reversed(uppers), range(n - 1, -1, -1), strict=True))
        return self._upper[limit]

    def model_rows(self, word: str) -> list[int]:
        """Token rows standing for ``word`` in a model (one row when it is a single token)."""
        sp, forms = self.space, []
        for text in (" " + word, word):
            ids = self.lens.encode(text, add_special_tokens=False)
            rows = [sp.row_of_id[i] for i in ids if i in sp.row_of_id]
            if len(rows) == 1 and len(ids) == 1:
                return rows
            if rows and len(rows) == len(ids):
                forms.append(rows)
        return min(forms, key=len) if forms else []

    def rows(self, words: Sequence[str], limit: int | None = None) -> tuple[list[list[int]], np.ndarray]:
        """For each word its rows ([] when missing) and whether it is one row inside the first ``limit`` rows."""
        limit = len(self.space) if limit is None else limit
        out: list[list[int]] = []
        if self.is_model:
            cache: dict[str, list[int]] = {}
            for w in words:
                if w not in cache:
                    cache[w] = self.model_rows(w)
                out.append(cache[w])
        else:
            index = self.upper_index(limit)
            out = [[index[w.upper()]] if w.upper() in index else [] for w in words]
        single = np.array([len(r) == 1 and r[0] < limit for r in out], dtype=bool)
        return out, single

    def vectors(self, rows: list[list[int]]) -> np.ndarray:
        """Unit vectors, shape (len(rows), dim): the row, or the mean of several rows; zeros when missing."""
        sp = self.space
        out = np.zeros((len(rows), sp.dim), dtype=np.float64)
        flat = sorted({r for rs in rows for r in rs})
        if flat:
            pos = {r: i for i, r in enumerate(flat)}
            mat = np.asarray(sp.vectors[np.asarray(flat)], dtype=np.float64)
            for i, rs in enumerate(rows):  # one entry per distinct word, not per token of the corpus
                if rs:
                    out[i] = mat[[pos[r] for r in rs]].mean(axis=0)
        return normalized_rows(out, dtype=np.float64)


# -- the evaluations ---------------------------------------------------------------------------------


def evaluate_pairs(lens: Lens | SpaceView, path: str | Path, *, space: str | None = None, _lookup: _WordLookup | None = None) -> PairScore:
    """Spearman correlation of cosine similarity with the human scores of a word-pair file."""
    require("scipy", "the word-pair evaluation", extra="classic")
    from scipy.stats import spearmanr

    lookup = _lookup or _WordLookup(lens, space)
    a, b, gold = read_pairs(path)
    words = sorted(set(a) | set(b))
    rows, single = lookup.rows(words)
    unit = lookup.vectors(rows)
    where = {w: i for i, w in enumerate(words)}
    ia = np.array([where[w] for w in a])
    ib = np.array([where[w] for w in b])
    found = np.array([bool(r) for r in rows])
    used = found[ia] & found[ib]
    cosine = np.einsum("ij,ij->i", unit[ia], unit[ib])
    rho, pvalue = (None, None)
    if used.sum() >= 3:
        res = spearmanr(gold[used], cosine[used])
        rho, pvalue = float(res.statistic), float(res.pvalue)
        if np.isnan(rho):
            rho, pvalue = None, None
    single_cov = float((single[ia] & single[ib]).mean()) if lookup.is_model else None
    return PairScore(str(path), rho, pvalue, float(used.mean()), len(gold), int(used.sum()), single_cov)


def evaluate_analogies(
    lens: Lens | SpaceView, path: str | Path, *, space: str | None = None, restrict_vocab: int = DEFAULT_RESTRICT,
    _lookup: _WordLookup | None = None,
) -> AnalogyScore:
    """Top-1 3CosAdd accuracy on an analogy file, searching the first ``restrict_vocab`` rows."""
    if restrict_vocab < 4:
        raise EmbedlensError(f"`restrict_vocab` must be at least 4, got {restrict_vocab}")
    lookup = _lookup or _WordLookup(lens, space)
    sp = lookup.space
    limit = min(int(restrict_vocab), len(sp))
    questions, sections = read_analogies(path)
    words = sorted({w for q in questions for w in q})
    rows, single = lookup.rows(words, limit)
    row_of = {w: (r[0] if s else -1) for w, r, s in zip(words, rows, single, strict=True)}
    q_rows = np.array([[row_of[w] for w in q] for q in questions], dtype=np.int64)  # (n_questions, 4)
    covered = (q_rows >= 0).all(axis=1)
    qr = q_rows[covered]
    correct = np.zeros(len(questions), dtype=bool)
    if len(qr):
        unit = normalized_rows(sp.vectors[:limit])  # (limit, dim)
        if lookup.is_model:
            canon = np.arange(limit)
        else:  # a case variant of an input is excluded too and a case variant of the answer counts, as in gensim
            index = lookup.upper_index(limit)
            canon = np.array([index[sp.labels[r].upper()] for r in range(limit)], dtype=np.int64)
        got = np.zeros(len(qr), dtype=bool)
        batch = max(1, _BATCH_ELEMS // limit)
        arange = np.arange(batch)
        for start in range(0, len(qr), batch):
            a, b, c, expected = qr[start : start + batch].T
            m = len(a)
            target = unit[b] - unit[a] + unit[c]  # "a is to b as c is to ?" -> b - a + c
            scores = target @ unit.T  # (m, limit)
            scores[arange[:m, None], np.stack([a, b, c], axis=1)] = -np.inf
            # First of the top candidates that is no case variant of an input (argmax passes beat a partition).
            predicted = np.full(m, -1, dtype=np.int64)
            todo = np.arange(m)
            for _ in range(_TOP):
                best = np.argmax(scores if todo.size == m else scores[todo], axis=1)
                cand = canon[best]
                ok = (cand != canon[a[todo]]) & (cand != canon[b[todo]]) & (cand != canon[c[todo]])
                predicted[todo[ok]] = cand[ok]
                todo, best = todo[~ok], best[~ok]
                if not todo.size:
                    break
                scores[todo, best] = -np.inf
            got[start : start + m] = predicted == canon[expected]
        correct[covered] = got
    per: dict[str, dict[str, int]] = {}
    sec = np.asarray(sections)
    for name in dict.fromkeys(sections):  # one pass per section, in file order
        mask = sec == name
        per[name] = {"questions": int(mask.sum()), "used": int((mask & covered).sum()), "correct": int((mask & correct).sum())}
    n_used, n_correct = int(covered.sum()), int(correct.sum())
    return AnalogyScore(str(path), n_correct / n_used if n_used else None, n_used / len(questions), len(questions),
                        n_used, n_correct, limit, per)


def evaluate(
    lens: Lens | SpaceView,
    *,
    space: str | None = None,
    tasks: Sequence[str] = TASKS,
    wordsim: str | Path | None = None,
    simlex: str | Path | None = None,
    analogies: str | Path | None = None,
    restrict_vocab: int = DEFAULT_RESTRICT,
) -> Evaluation:
    """Score a space on WordSim-353, SimLex-999 and the Google analogies (see the module docstring).

    Args:
        lens: a space (``lens.input``, ``lens.output``) or a handle (a SpaceLens or ModelLens).
        space: with a handle, ``input`` or ``output`` (default input).
        tasks: which of ``wordsim353``, ``simlex999``, ``analogies`` to run.
        wordsim, simlex, analogies: files to use instead of the packaged ones.
        restrict_vocab: analogies search (and may use) only the first this-many rows.
    """
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise EmbedlensError(f"unknown evaluation task '{unknown[0] if unknown else ''}' (choose from {', '.join(TASKS)})")
    lookup = _WordLookup(lens, space)
    files = {"wordsim353": wordsim, "simlex999": simlex, "analogies": analogies}
    for name, given in files.items():
        if given is not None and not Path(given).is_file():
            raise EmbedlensError(f"no such {name} file: {given}")
    results: dict[str, Any] = {}
    timings = Timings()
    for name in TASKS:
        if name not in tasks:
            continue
        with timings.stage(name):
            path = Path(files[name]) if files[name] is not None else dataset_path(name)
            if name == "analogies":
                results[name] = evaluate_analogies(lens, path, space=space, restrict_vocab=restrict_vocab, _lookup=lookup)
            else:
                results[name] = evaluate_pairs(lens, path, space=space, _lookup=lookup)
    how = ("a word's vector is its token embedding when it is one token (' word' or 'word'), else the mean of its tokens"
           if lookup.is_model else "case-insensitive lookup of whole words (the most frequent matching row)")
    return Evaluation(lookup.space.name, "model" if lookup.is_model else "space", word_vectors=how, timings=dict(timings),
                      **results)
