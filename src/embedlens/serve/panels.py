"""What the server shows of one space: a :class:`Panel` wraps a lens and the space it serves.

Everything a panel answers is computed by the public API (``lens.nearest``, ``lens.variants``,
``lens.tokens``, :func:`embedlens.graph.seeds.whole_word_rows`, :func:`embedlens.neighbors.knn.space_index`);
the panel only adds what a server needs on top: per-token arrays prepared once for the page, search
by text or regular expression with a time limit, and a small result cache.

Regular expressions come from the network, so they are matched with the ``regex`` package and its
``timeout=`` argument: a catastrophic pattern such as ``(x+x+)+y`` is stopped at the deadline and
reported as a 400, and the worker thread is free again. (Python's ``re`` cannot be interrupted.)
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..graph.seeds import whole_word_rows
from ..lens import Lens, SpaceView, as_view
from ..neighbors.index import ExactIndex, NeighborIndex
from ..neighbors.knn import KnnGraph, space_index
from ..neighbors.results import Neighbor, NeighborResult, ResolvedQuery
from ..parts_of_speech import cached_parts_of_speech
from ..spaces.space import EmbeddingSpace
from ..timing import Timings
from ..writing_systems import classify_scripts, script_names

MAX_K = 200
MAX_QUERY_CHARS = 200
MAX_REGEX_CHARS = 200
MAX_TEXT_CHARS = 2000
REGEX_SECONDS = 1.0
_REGEX_SECONDS_PER_TOKEN = 8e-6  # the per-token path costs ~5 us a token: big vocabularies get more time
_CACHE_SIZE = 2048
# Constructs whose meaning changes when tokens are joined into one text (string anchors, look-around,
# inline flags): such patterns are matched token by token only.
_CONTEXT_SENSITIVE = re.compile(r"\\[AZzG]|\(\?[<=!a-zA-Z^-]")


class BadRequest(EmbedlensError):
    """A request the server refuses (answered with a 4xx and ``{"error": ...}``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SearchResult:
    """Rows of a space whose readable token matches a query; ``rows`` are capped at ``limit``."""

    query: str
    mode: str
    rows: np.ndarray
    total: int
    seconds: float

    def to_dict(self, display: Any) -> dict[str, Any]:
        rows = self.rows.tolist()
        return {"query": self.query, "mode": self.mode, "total": self.total, "truncated": self.total > len(rows),
                "rows": rows, "display": [display[r] for r in rows[:200]], "seconds": round(self.seconds, 4)}


class Panel:
    """One space on the page and what the page needs of it.

    Args:
        view: the space (``lens.input``, ``lens.output``; a handle means its input space).
        index: the panel's number on the page (0 or 1).
        regex_seconds: time limit for one regular-expression search over the whole vocabulary.
    """

    def __init__(self, view: Lens | SpaceView, *, index: int = 0, regex_seconds: float = REGEX_SECONDS) -> None:
        self.view = as_view(view)
        self.index = index
        self.regex_seconds = float(regex_seconds)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._knn: KnnGraph | None = None
        self._knn_checked = False
        self._pending: list[_PendingScan] = []
        self._queue_lock = threading.Lock()
        self._scan_lock = threading.Lock()

    # -- description -----------------------------------------------------------------------------------

    @property
    def lens(self) -> Lens:
        return self.view.lens

    @property
    def which(self) -> str:
        return self.view.which

    @property
    def space(self) -> EmbeddingSpace:
        return self.view.space

    @property
    def is_model(self) -> bool:
        return self.view.is_model

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.view.meta or {})

    @property
    def causal(self) -> bool:
        return self.is_model and bool(self.meta.get("causal"))

    @property
    def title(self) -> str:
        return self.space.name if not self.is_model else f"{self.lens.name}:{self.which}"

    @property
    def content_key(self) -> str:
        """Identifies the vectors on disk (:attr:`embedlens.lens.SpaceView.content_hash`)."""
        return self.view.content_hash

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {
            "index": self.index,
            "title": self.title,
            "name": self.lens.name,
            "which": self.which,
            "kind": "model" if self.is_model else "space",
            "n": len(self.space),
            "dim": self.space.dim,
            "causal": self.causal,
            "has_tokenizer": self.is_model,
            "n_layers": int(m["n_layers"]) if self.is_model and m.get("n_layers") is not None else None,
            "content_key": self.content_key,
        }

    # -- per-token arrays ------------------------------------------------------------------------------

    @cached_property
    def display(self) -> list[str]:
        return list(self.space.display)

    @cached_property
    def _lower(self) -> np.ndarray:
        return np.array([s.lower() for s in self.display], dtype=np.str_)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Characters of each readable token (word-start markers not counted)."""
        return np.char.str_len(np.char.lstrip(np.array(self.display, dtype=np.str_), "␣▁")).astype(np.int32)

    @cached_property
    def whole_word(self) -> np.ndarray:
        """True for whole-word tokens, see :func:`embedlens.graph.seeds.whole_word_rows`."""
        out = np.zeros(len(self.space), dtype=bool)
        out[whole_word_rows(self.view)] = True
        return out

    def points(self) -> dict[str, Any]:
        """What the page draws before any projection arrives: labels and the cheap colourings (length,
        whole word, special, writing system; part of speech when the vocabulary's tags are cached)."""
        sp = self.space
        return {
            "index": self.index,
            "n": len(sp),
            "ids": np.asarray(sp.ids).tolist(),
            "display": self.display,
            "length": self.lengths.tolist(),
            "whole_word": self.whole_word.astype(np.int8).tolist(),
            "special": np.asarray(sp.special).astype(np.int8).tolist(),
            "script": self.scripts,
            "pos": self.parts_of_speech(),
        }

    def parts_of_speech(self) -> list[str] | None:
        """Each token's part of speech when the space's tags are cached
        (:func:`embedlens.parts_of_speech.cached_parts_of_speech`), else None: the explorer never tags."""
        return cached_parts_of_speech(self.view)

    @cached_property
    def scripts(self) -> list[str]:
        """Writing system of each readable token (:func:`embedlens.writing_systems.classify_scripts`)."""
        return script_names(classify_scripts(self.display))

    def rows_of_ids(self, ids: list[int]) -> list[int]:
        row_of_id = self.space.row_of_id
        return [row_of_id.get(int(i), -1) for i in ids]

    # -- search ----------------------------------------------------------------------------------------

    def search(self, query: str, *, mode: str = "text", limit: int = 50_000) -> SearchResult:
        """Rows whose readable token contains ``query`` (case-insensitive) or matches a regular expression."""
        clock = Timings()
        if mode == "text":
            hits = np.flatnonzero(np.char.find(self._lower, query.lower()) >= 0)
        elif mode == "regex":
            hits = self._regex_rows(query)
        else:
            raise BadRequest(f"unknown search mode '{mode}' (choose text or regex)")
        return SearchResult(query, mode, hits[:limit], int(hits.size), clock.since_start())

    @cached_property
    def _joined(self) -> tuple[str, np.ndarray]:
        """The readable tokens joined by newlines (they never hold one) and where each line starts."""
        text = "\n".join(self.display)
        starts = np.zeros(len(self.display), dtype=np.int64)
        if len(self.display) > 1:
            starts[1:] = np.cumsum(np.fromiter((len(s) + 1 for s in self.display[:-1]), dtype=np.int64))
        return text, starts

    def _regex_joined(self, pattern: str, left: Any) -> np.ndarray | None:
        """Rows holding a match, from one pass over the joined vocabulary; None if a match spans two tokens.

        With ``MULTILINE`` the anchors ``^``/``$`` mean a token's start/end and a match that stays on its line
        is a match of that token alone. Matches do not overlap, so a token's match can only be hidden by
        an earlier match that runs into it across a newline: then (a pattern that can match a newline)
        the caller matches token by token instead.
        """
        import regex

        text, starts = self._joined
        compiled = regex.compile(pattern, regex.IGNORECASE | regex.MULTILINE | regex.V0)
        spans = np.array([m.span() for m in compiled.finditer(text, timeout=left())], dtype=np.int64).reshape(-1, 2)
        if spans.size == 0:
            return np.zeros(0, dtype=np.int64)
        rows = np.searchsorted(starts, spans[:, 0], side="right") - 1
        line_end = starts[rows] + self._line_lengths[rows]
        if (spans[:, 1] > line_end).any():
            return None
        return np.unique(rows)

    @cached_property
    def _line_lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.display), dtype=np.int64, count=len(self.display))

    def _regex_rows(self, pattern: str) -> np.ndarray:
        import regex

        try:
            compiled = regex.compile(pattern, regex.IGNORECASE | regex.V0)
        except (regex.error, RecursionError, OverflowError, ValueError) as exc:
            raise BadRequest(f"not a valid regular expression: {exc}") from None
        limit = max(self.regex_seconds, _REGEX_SECONDS_PER_TOKEN * len(self.display))
        deadline = time.monotonic() + limit

        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return remaining

        try:
            rows = None if _CONTEXT_SENSITIVE.search(pattern) else self._regex_joined(pattern, left)
            if rows is None:  # one bounded call per token
                search, display = compiled.search, self.display
                rows = np.asarray([r for r in range(len(display)) if search(display[r], timeout=left()) is not None],
                                  dtype=np.int64)
        except TimeoutError:
            raise BadRequest(f"the regular expression took longer than {limit:.2g} s over "
                             f"{len(self.display):,} tokens: simplify it (nested repeats such as (a+)+ are slow)",
                             status=422) from None
        return rows

    # -- neighbours ------------------------------------------------------------------------------------

    def _cached(self, key: tuple, compute: Any) -> Any:
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    def knn_index(self) -> KnnGraph | None:
        """The cached exact k-NN graph this panel answers from (:func:`embedlens.neighbors.knn.space_index`), or None."""
        if not self._knn_checked:
            self._knn_checked = True
            found = space_index(self.view)  # the widest exact graph on disk, or a scan
            graph = getattr(found, "graph", None)
            self._knn = graph if graph is not None and graph.k >= 1 else None
            if self._knn is not None and self._knn.k > MAX_K:
                self._knn = self._knn.truncate(MAX_K)
        return self._knn

    def use_knn(self, graph: KnnGraph | None) -> None:
        self._knn, self._knn_checked = graph, True

    @cached_property
    def scan_index(self) -> ExactIndex:
        """The exact scan over this space (:class:`embedlens.neighbors.index.ExactIndex`), built once."""
        return ExactIndex(self.space.vectors, norms=self.space.norms)

    def neighbor_index(self) -> NeighborIndex:
        """The one index this panel asks: its k-NN graph in front of the exact scan, or the scan alone."""
        graph = self.knn_index()
        return self.scan_index if graph is None else graph.index(self.scan_index)

    def neighbors(self, query: str, k: int) -> dict[str, Any]:
        """``lens.nearest(query, k)`` as JSON, plus the map rows of the query and of each neighbour."""
        return self._cached(("nearest", query, k), lambda: self._neighbors(query, k))

    def neighbors_fast(self, query: str, k: int) -> dict[str, Any] | None:
        """The answer when it needs no scan (cached, or a single token the k-NN graph holds); else None."""
        key = ("nearest", query, k)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        graph = self.knn_index() if self._knn_checked else None
        if graph is None or graph.k < k:
            return None
        rq = self.view.resolve(query)
        if len(rq.rows) != 1:
            return None
        return self._cached(key, lambda: self._neighbors(query, k, rq))

    def _neighbors(self, query: str, k: int, rq: ResolvedQuery | None = None) -> dict[str, Any]:
        graph = self.knn_index()
        rq = self.view.resolve(query) if rq is None else rq
        if graph is not None and graph.k >= k and len(rq.rows) == 1:
            # Read from the graph (a table look-up, no scan): the same exact top-k as a scan, in the same order.
            nb = self.neighbor_index().query(np.asarray(rq.rows, dtype=np.int64), k, exclude_self=True)
            result = self.lens._result(query, rq, self.space, nb.indices[0], nb.scores[0])
        else:
            result = self._scan(query, k, rq)
        return self._as_dict(result)

    def _as_dict(self, result: NeighborResult) -> dict[str, Any]:
        out = result.to_dict()
        out["query_rows"] = self.rows_of_ids(result.query_ids)
        out["rows"] = self.rows_of_ids([n.id for n in result.neighbors])
        out["query_display"] = [self.display[r] for r in out["query_rows"] if r >= 0]
        return out

    def _scan(self, query: str, k: int, rq: ResolvedQuery | None = None) -> NeighborResult:
        """``lens.nearest(query, k)``, with concurrent requests scanning the matrix together.

        One request alone asks the exact index what ``lens.nearest`` asks it (same numbers). Requests
        that arrive while a scan runs wait, and the next scan serves all of them with one
        :meth:`~embedlens.neighbors.index.NeighborIndex.query` of several vectors: the matrix is read once
        per batch instead of once per query, and threads never fight over the cores.
        """
        sp = self.space
        rq = self.view.resolve(query) if rq is None else rq
        item = _PendingScan(np.asarray(rq.vector, dtype=np.float32), list(rq.rows), k)
        with self._queue_lock:
            self._pending.append(item)
        while not item.done.is_set():
            with self._scan_lock:
                if item.done.is_set():
                    break
                with self._queue_lock:
                    batch, self._pending = self._pending, []
                _run_scans(self.scan_index, batch)
        if item.error is not None:
            raise item.error
        rows, scores = item.result
        return NeighborResult(query=query, query_ids=rq.ids, space=sp.name, note=rq.note, neighbors=[
            Neighbor(int(sp.ids[r]), sp.labels[r], sp.display[r], float(s)) for r, s in zip(rows, scores, strict=True)])

    def variants(self, word: str) -> dict[str, Any]:
        def compute() -> dict[str, Any]:
            result = self.view.variants(word)
            out = result.to_dict()
            out["rows"] = self.rows_of_ids([n.id for n in result.neighbors])
            return out

        return self._cached(("variants", word), compute)

    def tokens(self, text: str) -> dict[str, Any]:
        """``lens.tokens(text).to_dict()`` (each token's position, id, raw and readable form), plus ``rows``:
        each token's map row."""
        if not self.is_model:
            raise BadRequest(f"{self.title} is not a language model and has no tokenizer")
        table = self.lens.tokens(text)
        return {**table.to_dict(), "rows": self.rows_of_ids([r.id for r in table.rows])}


@dataclass
class _PendingScan:
    vector: np.ndarray
    exclude: list[int]
    k: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def _run_scans(index: NeighborIndex, batch: list[_PendingScan]) -> None:
    """Answer a batch of queued scans, one index query per distinct k."""
    for k in sorted({item.k for item in batch}):
        group = [item for item in batch if item.k == k]
        try:
            queries = np.stack([item.vector for item in group])
            nb = index.query(queries, k, exclude=[item.exclude for item in group])
            for i, item in enumerate(group):
                item.result = (nb.indices[i], nb.scores[i])
        except BaseException as exc:  # handed to each waiting request (an EmbedlensError becomes a 400)
            for item in group:
                item.error = exc
        finally:
            for item in group:
                item.done.set()
