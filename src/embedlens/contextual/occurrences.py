"""The contextual vector of every occurrence of one word in a corpus: the word's senses, as the model sees them.

Every whole-word match of WORD in the corpus's documents is found with a regular expression, and a
window of text around it is cut (``window`` characters each side, trimmed to whole words). The window is
tokenized with the model's fast tokenizer, the tokens that cover the word are found from their
character offsets, and the window goes through the model in right-padded batches. The word's vector at
each kept layer is the mean of its tokens' hidden states. Only those vectors are kept (never the
windows' full states), so memory stays at n_occurrences x n_layers x d_model floats.

For a causal LM the text after the word cannot change the word's hidden states, so only the left part of
the window (up to the word's end) is run: the result is identical and the work halves. Encoders get the
whole window. The full window is kept as the snippet shown in the hover.

A word with more than ``max_occurrences`` matches is *sampled*, seeded: every match gets a 64-bit key
hashed from ``(seed, source file, document position, character offset)`` and the ``max_occurrences``
smallest keys are kept, then put back in corpus order. The key of a match does not depend on how the
corpus was cut into blocks, so the local and the Ray engine keep exactly the same occurrences.
Both engines run the same pieces: :class:`OccurrenceQuery` (find and sample, per block of documents)
and :class:`OccurrenceStatesJob` (tokenize the windows; run them through the model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..corpus.reading import Corpus, open_corpus
from ..engines import Engine, LocalEngine
from ..errors import EmbedlensError
from ..lens import ModelLens, as_lens
from ..models.loading import load_weights, loaded_record
from ..models.running import Encoded, LayerSpec, layers_of, max_positions, network, token_strings
from ..models.runtime import default_max_memory, process_defaults
from ..progress import bar
from ..timing import Timings
from .states import forward_batches, pad_id

if TYPE_CHECKING:
    from ..models.model_handle import ModelHandle

DEFAULT_WINDOW = 100  # characters each side of the word
DEFAULT_MAX_OCCURRENCES = 1000
OCCURRENCE_BATCH_SIZE = 64
_SPACES = re.compile(r"\s+")


def word_pattern(word: str, *, ignore_case: bool = True) -> re.Pattern[str]:
    """A regex matching ``word`` as a whole word (not inside a longer word)."""
    if not word or not word.strip():
        raise EmbedlensError("the word to look for is empty; give a word")
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)", flags)


@dataclass
class Occurrences:
    """Contextual vectors of the occurrences of one word.

    Attributes:
        word: the word looked for.
        vectors: float32 array of shape (n, n_layers_kept, d_model): mean hidden state of the word's tokens.
        layers: hidden-state indices kept.
        docs: the document id of each occurrence; ``spans``: (n, 2) its character span in the document.
        forms: the word as written there (``First``, ``first``); ``snippets``: the text around it.
        token_ids: the word's token ids in each window; ``token_display``: those tokens, readable, joined by ``·``.
        n_found: every match in the corpus (may exceed n when ``max_occurrences`` cut the list).
        engine: where the states were computed (engine, Ray address, workers, resources; ``loaded``: per
            model worker, the device, dtype and blocks its model ran with).
    """

    word: str
    model: dict[str, Any]
    layers: list[int]
    vectors: np.ndarray
    docs: list[str]
    spans: np.ndarray
    forms: list[str]
    snippets: list[str]
    snippet_spans: np.ndarray  # (n, 2) where the word is inside its snippet
    token_ids: list[list[int]]
    token_display: list[str]
    token_raw: list[str]
    n_found: int
    window: int
    ignore_case: bool
    corpus: dict[str, Any] = field(default_factory=dict)
    n_layers: int = 0
    d_model: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def name(self) -> str:
        return str(self.model.get("name") or self.model.get("spec"))

    def stacked(self) -> np.ndarray:
        """Layer-major float32 matrix of shape (n_layers_kept * n, d_model)."""
        return np.ascontiguousarray(self.vectors.transpose(1, 0, 2).reshape(-1, self.vectors.shape[2]))

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "model": self.model, "layers": list(self.layers), "n": len(self),
                "n_found": self.n_found, "window": self.window, "ignore_case": self.ignore_case,
                "corpus": self.corpus, "notes": list(self.notes), "timings": dict(self.timings),
                "engine": dict(self.engine),
                "occurrences": [{"doc": d, "span": s.tolist(), "form": f, "snippet": sn, "token_ids": t}
                                for d, s, f, sn, t in zip(self.docs, self.spans, self.forms, self.snippets,
                                                          self.token_ids, strict=True)]}


@dataclass
class Found:
    """One match of the word: where it is, the text the model reads, the snippet shown, its sampling key."""

    doc: str
    start: int
    end: int
    form: str
    model_text: str  # what the model reads
    word_span: tuple[int, int]  # the word inside model_text
    snippet: str
    snippet_span: tuple[int, int]
    source: int = 0  # index of the source file in the corpus
    position: int = 0  # the document's position in it (byte offset or row)
    key: int = 0  # seeded sampling key

    # flat columns (spans split) and their Arrow types, for engines that ship occurrences as tables
    COLUMNS: ClassVar[dict[str, str]] = {
        "key": "uint64", "source": "int64", "position": "int64", "doc": "string", "start": "int64", "end": "int64",
        "form": "string", "model_text": "string", "ws": "int64", "we": "int64", "snippet": "string",
        "ss": "int64", "se": "int64"}

    def order(self) -> tuple[int, int, int]:
        return (self.source, self.position, self.start)

    def columns(self) -> tuple[Any, ...]:
        """The values of :attr:`COLUMNS`, in order."""
        return (self.key, self.source, self.position, self.doc, self.start, self.end, self.form, self.model_text,
                *self.word_span, self.snippet, *self.snippet_span)

    @classmethod
    def from_columns(cls, c: dict[str, Any]) -> Found:
        return cls(doc=c["doc"], start=c["start"], end=c["end"], form=c["form"], model_text=c["model_text"],
                   word_span=(c["ws"], c["we"]), snippet=c["snippet"], snippet_span=(c["ss"], c["se"]),
                   source=c["source"], position=c["position"], key=c["key"])


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def sample_keys(seed: int, sources: np.ndarray, positions: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Seeded 64-bit keys of matches, shape (n,) uint64: the same match gets the same key on every engine."""
    with np.errstate(over="ignore"):
        x = _mix(np.full(len(starts), seed, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        for part in (sources, positions, starts):
            x = _mix(x ^ np.asarray(part, dtype=np.int64).astype(np.uint64))
    return x


@dataclass(frozen=True)
class OccurrenceQuery:
    """What to look for and how many to keep; picklable, so Ray workers find exactly what this process finds."""

    word: str
    ignore_case: bool = True
    window: int = DEFAULT_WINDOW
    causal: bool = True
    max_occurrences: int = DEFAULT_MAX_OCCURRENCES
    seed: int = 0
    found_type: ClassVar[type[Found]] = Found

    def find_rows(self, sources: np.ndarray, positions: np.ndarray, texts: list[str],
                  docs: list[str]) -> tuple[list[Found], int]:
        """Every match in these documents (their sample of at most ``max_occurrences``) and the match count."""
        pattern = word_pattern(self.word, ignore_case=self.ignore_case)
        hits = [(j, m) for j, text in enumerate(texts) for m in pattern.finditer(text)]
        if not hits:
            return [], 0
        rows = np.fromiter((j for j, _ in hits), dtype=np.int64, count=len(hits))
        starts = np.fromiter((m.start() for _, m in hits), dtype=np.int64, count=len(hits))
        keys = sample_keys(self.seed, np.asarray(sources)[rows], np.asarray(positions)[rows], starts)
        chosen = np.arange(len(hits))
        if len(hits) > self.max_occurrences:
            chosen = np.sort(np.argpartition(keys, self.max_occurrences - 1)[: self.max_occurrences])
        out = []
        for h in chosen.tolist():
            j, m = hits[h]
            out.append(self._found(texts[j], m, docs[j], int(sources[j]), int(positions[j]), int(keys[h])))
        return out, len(hits)

    def _found(self, text: str, m: re.Match[str], doc: str, source: int, position: int, key: int) -> Found:
        s, e = m.span()
        lo, hi = _window(text, s, e, self.window)
        model_text = text[lo:e] if self.causal else text[lo:hi]
        left, right = _SPACES.sub(" ", text[lo:s]), _SPACES.sub(" ", text[e:hi])
        return Found(doc, s, e, m.group(0), model_text, (s - lo, e - lo), left + m.group(0) + right,
                     (len(left), len(left) + e - s), source, position, key)

    def select(self, found: list[Found]) -> list[Found]:
        """The ``max_occurrences`` matches with the smallest keys, in corpus order."""
        if len(found) > self.max_occurrences:
            found = sorted(found, key=lambda f: (f.key, f.order()))[: self.max_occurrences]
        return sorted(found, key=Found.order)


def _window(text: str, start: int, end: int, window: int) -> tuple[int, int]:
    """Character bounds of the window around ``text[start:end]``, trimmed to whole words."""
    lo = max(0, start - window)
    if lo > 0:
        cut = re.search(r"\s", text[lo:start])
        lo = lo + cut.end() if cut else start
    hi = min(len(text), end + window)
    if hi < len(text):
        tail = text[end:hi]
        cut = max(tail.rfind(" "), tail.rfind("\n"), tail.rfind("\t"))
        hi = end + cut if cut >= 0 else end
    return lo, hi


def check_occurrence_options(max_occurrences: int, window: int) -> None:
    if max_occurrences < 1:
        raise EmbedlensError(f"`max_occurrences` must be at least 1, got {max_occurrences}")
    if window < 0:
        raise EmbedlensError(f"the context window must be 0 or more characters, got {window}")


def find_occurrences(corpus: Any, word: str, *, max_occurrences: int = DEFAULT_MAX_OCCURRENCES,
                     window: int = DEFAULT_WINDOW, ignore_case: bool = True,
                     causal: bool = True, seed: int = 0) -> tuple[list[Found], int]:
    """Every whole-word match of ``word`` in ``corpus`` (a seeded sample of ``max_occurrences``, in corpus
    order, when there are more) and the total count."""
    check_occurrence_options(max_occurrences, window)
    query = OccurrenceQuery(word, ignore_case, window, causal, max_occurrences, seed)
    word_pattern(word)
    return LocalEngine().find(query, corpus)


class OccurrenceStatesJob:
    """Tokenize windows and run them through the model: picklable, for the local and the Ray engine alike.

    ``prepare`` takes columns ``i``, ``text``, ``ws``, ``we`` (the word inside the text) and gives ``i``,
    ``ids`` and ``span`` (the tokens covering the word) for windows where some token covers it.
    ``make_runner()`` loads the model (or takes the given one) and returns a callable on those columns
    that gives ``i``, ``states`` (n, n_layers_kept * d_model), ``token_ids`` and ``trimmed``.

    ``device`` and ``dtype`` (default: this process's, as set by ``--device``/``--dtype``) and the
    ``--max-memory`` budget travel with the job, so a Ray worker loads the model where and in the precision
    the user asked for, resolving ``auto`` on its own hardware; only the blocks up to the deepest layer asked
    for are read there.
    """

    def __init__(self, lens: ModelHandle, layers: list[int], *, batch_size: int, causal: bool, device: str | None = None,
                 dtype: str | None = None) -> None:
        fast = lens.fast_tokenizer
        self.tokenizer_json = fast.to_str() if fast is not None else None
        self.tokenizer = None if fast is not None else lens.tokenizer
        self.source, self.layers, self.batch_size, self.causal = lens.source, list(layers), int(batch_size), causal
        self.n_layers = int(lens.meta.get("n_layers") or 0)
        self.label = f"{lens.name}: in context"
        default_device, default_dtype = process_defaults()
        self.device = device if device is not None else default_device
        self.dtype = dtype if dtype is not None else default_dtype
        self.max_memory = default_max_memory()

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        encoded = _encode_windows(self, texts)
        keep_i, ids, spans = [], [], []
        for i, enc, ws, we in zip(np.asarray(batch["i"]).tolist(), encoded, np.asarray(batch["ws"]).tolist(),
                                  np.asarray(batch["we"]).tolist(), strict=True):
            off = enc.offsets
            hit = np.flatnonzero((off[:, 0] < we) & (off[:, 1] > ws) & (off[:, 1] > off[:, 0]) & ~enc.special)
            if hit.size:
                keep_i.append(i)
                ids.append(enc.ids)
                spans.append(hit.astype(np.int64))
        return {"i": np.asarray(keep_i, dtype=np.int64), "ids": ids, "span": spans}

    def make_runner(self, model: Any = None, progress: bool = False) -> _StatesRunner:
        net = model if model is not None else load_states_model(self.source, max(self.layers), self.n_layers,
                                                                device=self.device, dtype=self.dtype,
                                                                max_memory=self.max_memory)
        return _StatesRunner(net, self, progress)


def _encode_windows(job: OccurrenceStatesJob, texts: list[str]) -> list[Any]:
    if job.tokenizer_json is not None:
        fast = getattr(job, "_fast", None)
        if fast is None:
            from tokenizers import Tokenizer

            fast = Tokenizer.from_str(job.tokenizer_json)
            fast.no_padding()
            job._fast = fast
        return [Encoded(np.asarray(e.ids, dtype=np.int64), np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2),
                        np.asarray(e.special_tokens_mask, dtype=bool))
                for e in fast.encode_batch(texts, add_special_tokens=True)]
    tok = job.tokenizer
    if not getattr(tok, "is_fast", False):
        raise EmbedlensError("the model has no fast tokenizer, so token offsets (needed here) are not available")
    b = tok(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
    return [Encoded(np.asarray(i, dtype=np.int64), np.asarray(o, dtype=np.int64).reshape(-1, 2), np.asarray(m, dtype=bool))
            for i, o, m in zip(b["input_ids"], b["offset_mapping"], b["special_tokens_mask"], strict=True)]


def load_states_model(source: Any, upto: int | None = None, n_layers: int = 0, *, device: str | None = None,
                      dtype: str | None = None, max_memory: int | None = None) -> Any:
    """The model for hidden states in a worker: on ``device`` in ``dtype`` (see
    :func:`~embedlens.models.loading.load_weights`; device None = the best one here, a GPU when this
    worker has one).

    ``upto``: the deepest hidden-state index needed; below the last (of ``n_layers``) only blocks
    ``0 .. upto-1`` are read, without the head.
    """
    device = device or "auto"
    if upto is None or not n_layers or upto >= n_layers:
        return load_weights(source, device=device, dtype=dtype, max_memory=max_memory)
    return load_weights(source, device=device, dtype=dtype, blocks=range(0, upto), head=False, max_memory=max_memory)



class _StatesRunner:
    def __init__(self, net: Any, job: OccurrenceStatesJob, progress: bool) -> None:
        self.net, self.job, self.progress = net, job, progress
        self.limit = max_positions(net)
        self.pad = pad_id(None, net)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import torch

        ids, spans = list(batch["ids"]), list(batch["span"])
        trimmed = np.zeros(len(ids), dtype=bool)
        for j, (seq, hit) in enumerate(zip(ids, spans, strict=True)):
            if self.limit is not None and len(seq) > self.limit:
                # Too long for the model: keep a `limit`-token stretch holding the word (ending at it for a causal LM).
                lo = hit[-1] + 1 - self.limit if self.job.causal else (hit[0] + hit[-1] + 1 - self.limit) // 2
                lo = int(min(max(lo, 0), len(seq) - self.limit))
                ids[j], spans[j], trimmed[j] = seq[lo : lo + self.limit], hit - lo, True
        d = int(self.net.config.hidden_size)
        n_l = len(self.job.layers)
        vectors = np.empty((len(ids), n_l, d), dtype=np.float32)
        with bar(len(ids), self.job.label, enabled=self.progress) as advance:
            for idx, hs, _lengths in forward_batches(self.net, ids, self.job.layers, batch_size=self.job.batch_size,
                                                     pad=self.pad, on_batch=advance):
                rows = torch.from_numpy(np.concatenate([np.full(len(spans[i]), j) for j, i in enumerate(idx.tolist())]))
                cols = torch.from_numpy(np.concatenate([spans[i] for i in idx.tolist()]))
                picked = hs[:, rows.to(hs.device), cols.to(hs.device)].float().cpu()  # (L, M, d)
                sums = torch.zeros((hs.shape[0], len(idx), hs.shape[3]), dtype=torch.float32)
                sums.index_add_(1, rows, picked)
                counts = torch.from_numpy(np.bincount(rows.numpy(), minlength=len(idx)).astype(np.float32))
                vectors[idx] = (sums / counts[None, :, None]).permute(1, 0, 2).numpy()
        return {"i": np.asarray(batch["i"], dtype=np.int64), "states": vectors.reshape(len(ids), n_l * d),
                "token_ids": [np.asarray(seq[hit], dtype=np.int64) for seq, hit in zip(ids, spans, strict=True)],
                "trimmed": trimmed}


def _corpus_spec(corpus: Any) -> Any:
    import os

    if isinstance(corpus, os.PathLike):
        return os.fspath(corpus)
    if isinstance(corpus, list | tuple):
        return [os.fspath(c) if isinstance(c, os.PathLike) else c for c in corpus]
    return corpus


def occurrences(
    model: Any,
    corpus: Any,
    word: str,
    *,
    layers: LayerSpec = -1,
    max_occurrences: int = DEFAULT_MAX_OCCURRENCES,
    window: int = DEFAULT_WINDOW,
    ignore_case: bool = True,
    batch_size: int = OCCURRENCE_BATCH_SIZE,
    progress: bool = True,
    seed: int = 0,
    engine: Engine | None = None,
    states_dir: Any = None,
) -> Occurrences:
    """The contextual vector of every occurrence of ``word`` in ``corpus`` at the chosen layers.

    Args:
        model: a model spec or a :class:`~embedlens.lens.ModelLens`.
        corpus: an opened :class:`~embedlens.corpus.Corpus` (:func:`~embedlens.corpus.reading.open_corpus`, which
            also takes the text column of JSONL / Parquet / dataset sources) or a corpus spec (file, folder, JSONL,
            Parquet, ``hf:NAME``, ``lee``, ``enwiki-sample``).
        word: matched as a whole word; ``ignore_case`` (default) also matches ``First`` for ``first``.
        layers: ``-1``, ``"all"`` or ``"0,6,12"``.
        max_occurrences: keep at most this many matches, a sample seeded by ``seed`` (in corpus order); the
            total is still counted.
        window: characters of context each side of the word (trimmed to whole words).
        batch_size: windows per forward pass.
        engine: where the search and the model run (:func:`~embedlens.engines.open_engine`; default this process;
            Ray finds the same occurrences, with states equal within float noise). Entered for the run.
        states_dir: with a Ray engine, where the Parquet shards of states go (default: a temporary folder).

    Raises:
        EmbedlensError: the word never occurs in the corpus, or a bad layer spec.
    """
    timings = Timings()
    check_occurrence_options(max_occurrences, window)
    word_pattern(word)
    corp = corpus if isinstance(corpus, Corpus) else open_corpus(_corpus_spec(corpus))
    lens = as_lens(model)
    kept = layers_of(lens, layers)
    causal = bool(lens.meta.get("causal", lens.meta.get("family") in ("gpt2", "llama", "gemma3")))
    query = OccurrenceQuery(word.strip(), ignore_case, window, causal, max_occurrences, seed)
    with engine or LocalEngine() as eng:
        with timings.stage("find"):
            found, total = eng.find(query, corp, progress=progress)
        if not found:
            where = ", ".join(map(str, corp.specs))
            case = "" if ignore_case else " (matched with its exact case; a match in any case may find it)"
            raise EmbedlensError(f"'{word.strip()}' never occurs as a whole word in the corpus {where}{case}")
        out, engine_info = _run_states(eng, lens, kept, found, timings, batch_size=batch_size, causal=causal,
                                       states_dir=states_dir, progress=progress)
    d_model = int(lens.meta.get("d_model") or out["states"].shape[1] // max(len(kept), 1))
    good = np.asarray(out["i"], dtype=np.int64)
    vectors = np.asarray(out["states"], dtype=np.float32).reshape(len(good), len(kept), -1)
    notes: list[str] = []
    trimmed = int(np.count_nonzero(out["trimmed"]))
    if trimmed:
        notes.append(f"{trimmed} context windows were longer than {lens.name} accepts and were cut")
    if len(good) < len(found):
        notes.append(f"{len(found) - len(good)} occurrences had no token covering the word and were skipped")
    if total > len(found):
        notes.append(f"'{word.strip()}' occurs {total} times; kept a sample of {len(found)} "
                     f"(`max_occurrences`, seed {seed})")
    found = [found[i] for i in good.tolist()]
    token_ids = [np.asarray(t, dtype=np.int64).tolist() for t in out["token_ids"]]
    token_raw, token_display = _word_tokens(lens, token_ids)
    timings["total"] = timings.since_start()
    return Occurrences(
        word=word.strip(), model=lens.manifest(), layers=kept, vectors=vectors,
        docs=[f.doc for f in found], spans=np.asarray([(f.start, f.end) for f in found], dtype=np.int64).reshape(-1, 2),
        forms=[f.form for f in found], snippets=[f.snippet for f in found],
        snippet_spans=np.asarray([f.snippet_span for f in found], dtype=np.int64).reshape(-1, 2),
        token_ids=token_ids, token_display=token_display, token_raw=token_raw, n_found=total, window=window,
        ignore_case=ignore_case, corpus=corp.manifest(), n_layers=int(lens.meta.get("n_layers") or 0),
        d_model=d_model, timings=dict(timings), notes=notes, engine=engine_info,
    )


def _run_states(eng: Engine, lens: ModelLens, kept: list[int], found: list[Any], timings: Timings, *, batch_size: int,
                causal: bool, states_dir: Any, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The states of the ``found`` occurrences on ``eng`` (the local engine loads the model for this run only):
    ``(the engine's output, the engine's info with the models each worker loaded)``."""
    loaded: list[dict[str, Any]] = []
    given_model = getattr(eng, "local_model", None)
    if isinstance(eng, LocalEngine):
        with timings.stage("load_model"):
            eng.local_model = network(lens, upto=max(kept))  # blocks above the deepest layer asked are never read
        loaded.append({"worker": "local", **loaded_record(eng.local_model)})
    job = OccurrenceStatesJob(lens, kept, batch_size=batch_size, causal=causal)
    rows = {"i": np.arange(len(found), dtype=np.int64), "text": [f.model_text for f in found],
            "ws": np.asarray([f.word_span[0] for f in found], dtype=np.int64),
            "we": np.asarray([f.word_span[1] for f in found], dtype=np.int64)}
    with timings.stage("states"):
        out = eng.states(job, rows, out_dir=states_dir, progress=progress)
    engine_info = {**eng.info(), "loaded": loaded + list(out.get("workers", []))}
    if isinstance(eng, LocalEngine):
        eng.local_model = given_model  # a caller's engine does not keep this model alive after the run
    return out, engine_info


def _word_tokens(lens: ModelLens, token_ids: list[list[int]]) -> tuple[list[str], list[str]]:
    """Per occurrence, its word's tokens joined: raw (``""``) and readable (``"·"``)."""
    token_raw, token_display = [], []
    for ids in token_ids:
        raw, shown = token_strings(lens, np.asarray(ids, dtype=np.int64))
        token_raw.append("".join(raw))
        token_display.append("·".join(shown))
    return token_raw, token_display
