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
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .states import (
    LayerSpec,
    as_lens,
    encode_batch,
    forward_batches,
    layers_of,
    max_positions,
    network,
    pad_id,
    token_strings,
)

DEFAULT_WINDOW = 100  # characters each side of the word
DEFAULT_MAX_OCCURRENCES = 1000
OCCURRENCE_BATCH_SIZE = 64
_SPACES = re.compile(r"\s+")


def word_pattern(word: str, *, ignore_case: bool = True) -> re.Pattern[str]:
    """A regex matching ``word`` as a whole word (not inside a longer word)."""
    if not word or not word.strip():
        raise EmbedlensError("the word to look for is empty: give --focus WORD")
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
                "occurrences": [{"doc": d, "span": s.tolist(), "form": f, "snippet": sn, "token_ids": t}
                                for d, s, f, sn, t in zip(self.docs, self.spans, self.forms, self.snippets,
                                                          self.token_ids, strict=True)]}


@dataclass
class _Found:
    doc: str
    start: int
    end: int
    form: str
    model_text: str  # what the model reads
    word_span: tuple[int, int]  # the word inside model_text
    snippet: str
    snippet_span: tuple[int, int]


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


def find_occurrences(corpus: Any, word: str, *, max_occurrences: int = DEFAULT_MAX_OCCURRENCES,
                     window: int = DEFAULT_WINDOW, ignore_case: bool = True,
                     causal: bool = True) -> tuple[list[_Found], int]:
    """Every whole-word match of ``word`` in ``corpus`` (first ``max_occurrences`` kept) and the total count."""
    if max_occurrences < 1:
        raise EmbedlensError(f"--max-occurrences must be at least 1, got {max_occurrences}")
    if window < 0:
        raise EmbedlensError(f"the context window must be 0 or more characters, got {window}")
    pattern = word_pattern(word, ignore_case=ignore_case)
    found: list[_Found] = []
    total = 0
    for doc_id, text in corpus.iter_documents():
        for m in pattern.finditer(text):
            total += 1
            if len(found) >= max_occurrences:
                continue
            s, e = m.span()
            lo, hi = _window(text, s, e, window)
            model_text = text[lo:e] if causal else text[lo:hi]
            left, right = _SPACES.sub(" ", text[lo:s]), _SPACES.sub(" ", text[e:hi])
            snippet = left + m.group(0) + right
            found.append(_Found(doc_id, s, e, m.group(0), model_text, (s - lo, e - lo), snippet,
                                (len(left), len(left) + e - s)))
    return found, total


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
) -> Occurrences:
    """The contextual vector of every occurrence of ``word`` in ``corpus`` at the chosen layers.

    Args:
        model: a model spec or a :class:`~embedlens.lens.ModelLens`.
        corpus: a corpus spec (file, folder, ``lee``, ``enwiki-sample``) or an opened
            :class:`~embedlens.corpus.Corpus`.
        word: matched as a whole word; ``ignore_case`` (default) also matches ``First`` for ``first``.
        layers: ``-1``, ``"all"`` or ``"0,6,12"``.
        max_occurrences: keep the first this many matches (in corpus order); the total is still counted.
        window: characters of context each side of the word (trimmed to whole words).
        batch_size: windows per forward pass.

    Raises:
        EmbedlensError: the word never occurs in the corpus, or a bad layer spec.
    """
    from ..corpus import Corpus, open_corpus

    started = time.perf_counter()
    timings: dict[str, float] = {}
    corp = corpus if isinstance(corpus, Corpus) else open_corpus(_corpus_spec(corpus))
    lens = as_lens(model)
    kept = layers_of(lens, layers)
    causal = bool(lens.meta.get("causal", lens.meta.get("family") in ("gpt2", "llama", "gemma3")))
    t0 = time.perf_counter()
    found, total = find_occurrences(corp, word, max_occurrences=max_occurrences, window=window,
                                    ignore_case=ignore_case, causal=causal)
    timings["find"] = time.perf_counter() - t0
    if not found:
        where = ", ".join(map(str, corp.specs))
        case = "" if ignore_case else " (case-sensitive; drop --case-sensitive to match any case)"
        raise EmbedlensError(f"'{word.strip()}' never occurs as a whole word in the corpus {where}{case}")
    t0 = time.perf_counter()
    net = network(lens)
    timings["load_model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    encoded = encode_batch(lens, [f.model_text for f in found])
    spans: list[np.ndarray] = []
    good: list[int] = []
    limit = max_positions(net)
    trimmed = 0
    for i, (f, enc) in enumerate(zip(found, encoded, strict=True)):
        off = enc.offsets
        ws, we = f.word_span
        hit = np.flatnonzero((off[:, 0] < we) & (off[:, 1] > ws) & (off[:, 1] > off[:, 0]) & ~enc.special)
        if hit.size:
            if limit is not None and len(enc.ids) > limit:
                # Too long for the model: keep a `limit`-token stretch holding the word (ending at it for a causal LM).
                lo = hit[-1] + 1 - limit if causal else (hit[0] + hit[-1] + 1 - limit) // 2
                lo = int(min(max(lo, 0), len(enc.ids) - limit))
                encoded[i] = type(enc)(enc.ids[lo : lo + limit], enc.offsets[lo : lo + limit], enc.special[lo : lo + limit])
                hit = hit - lo
                trimmed += 1
            spans.append(hit)
            good.append(i)
    notes: list[str] = []
    if trimmed:
        notes.append(f"{trimmed} context windows were longer than {lens.name} accepts ({limit} tokens) and were cut")
    if len(good) < len(found):
        notes.append(f"{len(found) - len(good)} occurrences had no token covering the word and were skipped")
    if total > len(found):
        notes.append(f"'{word.strip()}' occurs {total} times; kept the first {len(found)} (--max-occurrences)")
    found = [found[i] for i in good]
    encoded = [encoded[i] for i in good]
    timings["tokenize"] = time.perf_counter() - t0

    import torch

    d_model = int(net.config.hidden_size)
    vectors = np.empty((len(found), len(kept), d_model), dtype=np.float32)
    t0 = time.perf_counter()
    seqs = [e.ids for e in encoded]
    from ..progress import bar

    with bar(len(seqs), f"{lens.name}: '{word.strip()}' in context", enabled=progress) as advance:
        for idx, hs, _lengths in forward_batches(net, seqs, kept, batch_size=batch_size, pad=pad_id(lens, net),
                                                 on_batch=advance):
            rows = np.concatenate([np.full(len(spans[i]), j) for j, i in enumerate(idx.tolist())])
            cols = np.concatenate([spans[i] for i in idx.tolist()])
            picked = hs[:, torch.from_numpy(rows), torch.from_numpy(cols)]  # (L, M, d)
            sums = torch.zeros((hs.shape[0], len(idx), hs.shape[3]), dtype=torch.float32)
            sums.index_add_(1, torch.from_numpy(rows), picked)
            counts = torch.from_numpy(np.bincount(rows, minlength=len(idx)).astype(np.float32))
            vectors[idx] = (sums / counts[None, :, None]).permute(1, 0, 2).numpy()
    timings["forward"] = time.perf_counter() - t0

    token_ids = [encoded[i].ids[spans_i].tolist() for i, spans_i in enumerate(spans)]
    token_raw, token_display = [], []
    for ids in token_ids:
        raw, shown = token_strings(lens, np.asarray(ids, dtype=np.int64))
        token_raw.append("".join(raw))
        token_display.append("·".join(shown))
    timings["total"] = time.perf_counter() - started
    return Occurrences(
        word=word.strip(), model=lens.manifest(), layers=kept, vectors=vectors,
        docs=[f.doc for f in found], spans=np.asarray([(f.start, f.end) for f in found], dtype=np.int64).reshape(-1, 2),
        forms=[f.form for f in found], snippets=[f.snippet for f in found],
        snippet_spans=np.asarray([f.snippet_span for f in found], dtype=np.int64).reshape(-1, 2),
        token_ids=token_ids, token_display=token_display, token_raw=token_raw, n_found=total, window=window,
        ignore_case=ignore_case, corpus=corp.manifest(),
        n_layers=int(net.config.num_hidden_layers), d_model=d_model, timings=timings, notes=notes,
    )
