"""The pieces of the Ray pipelines that run on workers: a corpus datasource and the per-block functions.

Imported on the workers by name, so they live in a module of their own (no Ray import at module level).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..models.loading import loaded_record


def _one_thread() -> None:
    """A task holds one CPU: the tokenizer must not spread over every core (Ray sets OMP_NUM_THREADS=1 alike)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _documents_table(block: Any) -> Any:
    import pyarrow as pa

    n = len(block.texts)
    prefix = block.shard.doc_id(0)[:-1]  # PATH@ or PATH#
    return pa.table({
        "source": pa.array(np.full(n, block.shard.source, dtype=np.int64)),
        "position": pa.array(block.positions),
        "text": pa.array(block.texts, type=pa.large_string()),
        "doc_prefix": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([prefix])),
    })


def _read_fn(shards: list[Any], block_chars: int):
    def read() -> Iterator[Any]:
        for shard in shards:
            for block in shard.read(block_chars):
                yield _documents_table(block)
    return read


def group_shards(shards: list[Any], task_bytes: int) -> list[list[Any]]:
    """Consecutive shards packed into read tasks of about ``task_bytes`` (many small files: few tasks)."""
    groups: list[list[Any]] = []
    size = task_bytes
    for shard in shards:
        if size >= task_bytes:
            groups.append([])
            size = 0
        groups[-1].append(shard)
        size += shard.n_bytes
    return groups


def CorpusDatasource(shards: list[Any], block_chars: int, task_bytes: int) -> Any:  # noqa: N802 - a Ray Datasource
    """A Ray Data datasource: read tasks of about ``task_bytes`` each, yielding blocks of documents
    (columns ``source``, ``position``, ``text``, ``doc_prefix``)."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    groups = group_shards(shards, task_bytes)

    class _Corpus(Datasource):
        def get_name(self) -> str:
            return "EmbedlensCorpus"

        def estimate_inmemory_data_size(self) -> int:
            return sum(s.n_bytes for s in shards)

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            return [ReadTask(_read_fn(g, block_chars),
                             BlockMetadata(num_rows=None, size_bytes=sum(s.n_bytes for s in g),
                                           input_files=sorted({s.path for s in g}), exec_stats=None))
                    for g in groups]

    return _Corpus()


class CountBlock:
    """``map_batches`` function: a block of documents -> one row of sparse token counts."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        _one_thread()
        counts, n, out = self.counter.count(batch.column("text").to_pylist())
        ids = np.flatnonzero(counts)
        return pa.table({"ids": pa.array([ids], type=pa.list_(pa.int64())),
                         "counts": pa.array([counts[ids]], type=pa.list_(pa.int64())),
                         "n_tokens": pa.array([n], type=pa.int64()), "n_outside": pa.array([out], type=pa.int64())})


class FindBlock:
    """``map_batches`` function: a block of documents -> the block's sample of occurrences (and its count)."""

    def __init__(self, query: Any) -> None:
        self.query = query

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        prefixes = batch.column("doc_prefix").to_pylist()
        positions = batch.column("position").to_numpy()
        docs = [f"{p}{q}" for p, q in zip(prefixes, positions.tolist(), strict=True)]
        found, n = self.query.find_rows(batch.column("source").to_numpy(), positions,
                                        batch.column("text").to_pylist(), docs)
        found = self.query.select(found)
        fields = self.query.found_type.COLUMNS
        values = list(zip(*(f.columns() for f in found), strict=True)) if found else [[None]] * len(fields)
        cols = {name: list(v) for name, v in zip(fields, values, strict=True)}  # no occurrence: one row of nulls
        cols["n_block"] = [n] + [0] * (len(cols["key"]) - 1)  # that row still carries the block's count
        schema = pa.schema([(k, pa.type_for_alias(t)) for k, t in {**fields, "n_block": "int64"}.items()])
        return pa.Table.from_pydict(cols, schema=schema)


def rows_to_found(batch: Any, found_type: Any) -> list[Any]:
    """The occurrences of a :class:`FindBlock` output batch (rows without one skipped)."""
    cols = {k: batch.column(k).to_pylist() for k in found_type.COLUMNS}
    return [found_type.from_columns({k: v[r] for k, v in cols.items()})
            for r in range(batch.num_rows) if cols["key"][r] is not None]


class Prepare:
    """``map_batches`` function: windows -> token ids and the tokens covering the word (CPU)."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        _one_thread()
        out = self.job.prepare(batch)
        return {"i": out["i"], "ids": _ragged(out["ids"]), "span": _ragged(out["span"])}


def _ragged(arrays: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    for j, a in enumerate(arrays):
        out[j] = a
    return out


class ModelActor:
    """An actor of the pool: loads the model once (on ``cuda`` when it was given a GPU), then runs batches."""

    def __init__(self, job: Any, threads: int = 1) -> None:
        import json
        import socket

        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.run = job.make_runner()
        # what this worker loaded, carried on its rows so the driver can record it per worker
        self.loaded = json.dumps({"worker": f"{socket.gethostname()}:{os.getpid()}", **loaded_record(self.run.net)})

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        out = self.run({"i": batch["i"], "ids": list(batch["ids"]), "span": list(batch["span"])})
        states = np.ascontiguousarray(out["states"], dtype=np.float32)
        return pa.table({
            "i": pa.array(out["i"], type=pa.int64()),
            "states": pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1)), max(int(states.shape[1]), 1)),
            "token_ids": pa.array([np.asarray(t, dtype=np.int64) for t in out["token_ids"]], type=pa.list_(pa.int64())),
            "trimmed": pa.array(np.asarray(out["trimmed"], dtype=bool)),
            "worker": pa.array([self.loaded] * len(out["i"]), type=pa.string()).dictionary_encode(),
        })
