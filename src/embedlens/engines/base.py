"""The engine interface, and the local engine: the same pieces run in this process, block after block.

An engine does three jobs, each given a small picklable object that knows *what* to compute:

* ``count(counter, corpus)``: ``counter.count(texts) -> (counts, n_tokens, n_outside)`` on every block of
  documents, summed (token frequencies);
* ``find(query, corpus)``: ``query.find_rows(sources, positions, texts, docs) -> (found, n)`` on every block,
  and ``query.select(found)``: the seeded sample of at most ``max_occurrences`` (occurrences of a word);
* ``states(job, rows)``: ``job.prepare(batch)`` (tokenize, CPU) then ``job.make_runner()(batch)`` (the model)
  on the selected windows (hidden states of the occurrences).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..progress import bar

ENGINES = ("local", "ray")


@dataclass
class CountResult:
    """Summed counts: ``counts`` (size,) int64, tokens counted, tokens outside the counter, bytes read."""

    counts: np.ndarray
    n_tokens: int
    n_outside: int
    n_bytes: int


class StatesJob(Protocol):
    """What :meth:`Engine.states` runs: tokenize the windows, then run them through the model."""

    batch_size: int

    def prepare(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def make_runner(self, model: Any = None, progress: bool = False) -> Any: ...


class Engine(AbstractContextManager):
    """Runs corpus jobs; a context manager (the Ray engine starts or attaches to a cluster on entry).

    Entering nests: a stage given an engine its caller already entered (``with open_engine("ray") as eng:
    count_tokens(view, corpus, engine=eng)``) enters it again without a second start, and only the outermost
    exit closes it.
    """

    name = ""
    _depth = 0  # how many ``with`` blocks hold the engine now

    def __enter__(self) -> Engine:
        if self._depth == 0:
            self.open()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.close()

    def open(self) -> None:
        """Start or attach to what the engine runs on (on the outermost entry)."""

    def close(self) -> None:
        """Release what the engine started."""

    def info(self) -> dict[str, Any]:
        """Engine, cluster address, workers and resources, for manifests."""
        raise NotImplementedError(type(self))

    def count(self, counter: Any, corpus: Any, *, block_chars: int = 4 << 20, progress: bool = False) -> CountResult:
        raise NotImplementedError(type(self))

    def find(self, query: Any, corpus: Any, *, progress: bool = False) -> tuple[list[Any], int]:
        raise NotImplementedError(type(self))

    def states(self, job: StatesJob, rows: dict[str, np.ndarray], *, out_dir: Any = None,
               progress: bool = False) -> dict[str, np.ndarray]:
        raise NotImplementedError(type(self))


def _block_columns(block: Any) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    n = len(block.texts)
    return np.full(n, block.shard.source, dtype=np.int64), block.positions, block.texts, block.doc_ids()


class LocalEngine(Engine):
    """Everything in this process (the tokenizer's and torch's own threads aside)."""

    name = "local"

    def __init__(self, local_model: Any = None) -> None:
        self.local_model = local_model

    def info(self) -> dict[str, Any]:
        return {"engine": "local", "address": None, "workers": 1, "resources": {"CPU": os.cpu_count() or 1}}

    def count(self, counter: Any, corpus: Any, *, block_chars: int = 4 << 20, progress: bool = False) -> CountResult:
        shards = corpus.shards()
        total = np.zeros(counter.size, dtype=np.int64)
        n_tokens = n_outside = n_bytes = 0
        with bar(sum(s.n_bytes for s in shards), "counting tokens", enabled=progress, unit="bytes",
                 min_total=1 << 20) as advance:
            for shard in shards:
                for block in shard.read(block_chars):
                    counts, n, out = counter.count(block.texts)
                    total += counts
                    n_tokens += n
                    n_outside += out
                n_bytes += shard.n_bytes
                advance(shard.n_bytes)
        return CountResult(total, n_tokens, n_outside, n_bytes)

    def find(self, query: Any, corpus: Any, *, progress: bool = False) -> tuple[list[Any], int]:
        kept: list[Any] = []
        total = 0
        for block in corpus.iter_blocks():
            found, n = query.find_rows(*_block_columns(block))
            total += n
            kept.extend(found)
            if len(kept) > 2 * query.max_occurrences:
                kept = query.select(kept)
        return query.select(kept), total

    def states(self, job: StatesJob, rows: dict[str, np.ndarray], *, out_dir: Any = None,
               progress: bool = False) -> dict[str, np.ndarray]:
        runner = job.make_runner(model=self.local_model, progress=progress)
        return runner(job.prepare(rows))
