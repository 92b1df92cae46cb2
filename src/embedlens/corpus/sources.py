"""Corpus sources: where documents come from, cut into shards that any worker can read on its own.

One document is one line of a text file, one row of a JSONL or Parquet file, one row of a Hugging Face
dataset. Blank documents (empty or whitespace only) are skipped. Each document is located by the index
of its source file and a *position* inside it: the byte offset of the line's start for text and JSONL
(in the decompressed stream for ``.jsonl.gz``), the row number for Parquet and datasets. The document id
shown to people is ``PATH@BYTE`` or ``PATH#ROW``.

A large text or JSONL file is cut into byte ranges (a line belongs to the range holding its first byte),
a Parquet file into groups of row groups, a dataset into its Arrow files; a gzip file is one shard. Shards
are read in blocks of about :data:`BLOCK_CHARS` characters, so reading never holds more than a block (and
the longest document) in memory, whichever engine reads them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EmbedlensError

SHARD_BYTES = 32 << 20  # a shard: what one read task reads
BLOCK_CHARS = 4 << 20  # a block: what a reader hands on at once
TEXT_KINDS = ("text", "jsonl", "jsonl.gz")
TABLE_KINDS = ("parquet", "arrow")


def source_kind(path: Path) -> str | None:
    """The reader for a file name: ``jsonl``, ``jsonl.gz``, ``parquet``, ``arrow`` or ``None`` (plain text)."""
    name = path.name.lower()
    if name.endswith((".jsonl.gz", ".ndjson.gz")):
        return "jsonl.gz"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".arrow"):
        return "arrow"
    return None


@dataclass(frozen=True)
class Shard:
    """A piece of one source file: bytes ``[start, stop)`` (text, JSONL) or row groups ``[start, stop)`` (Parquet).

    ``source`` is the file's index in the corpus; ``first_row`` the row number of the shard's first row.
    """

    source: int
    path: str
    kind: str
    start: int
    stop: int
    n_bytes: int
    text_column: str = "text"
    first_row: int = 0

    def doc_id(self, position: int) -> str:
        return f"{self.path}{'#' if self.kind in TABLE_KINDS else '@'}{position}"

    def read(self, block_chars: int = 0) -> Iterator[DocumentBlock]:
        """The shard's documents in blocks of about ``block_chars`` characters (:func:`read_shard`)."""
        return read_shard(self, block_chars or BLOCK_CHARS)


@dataclass
class DocumentBlock:
    """Documents of one shard: ``positions`` int64 array of shape (n,), ``texts`` list of n strings."""

    shard: Shard
    positions: np.ndarray
    texts: list[str]

    def doc_ids(self) -> list[str]:
        return [self.shard.doc_id(p) for p in self.positions.tolist()]


def plan_shards(source: int, path: Path, kind: str, size: int, text_column: str,
                shard_bytes: int = SHARD_BYTES) -> list[Shard]:
    """Cut one source file into shards of about ``shard_bytes``."""
    if kind in ("text", "jsonl"):
        n = max(1, -(-size // shard_bytes))
        bounds = [min(size, i * shard_bytes) for i in range(n)] + [size]
        return [Shard(source, str(path), kind, a, b, b - a, text_column) for a, b in zip(bounds, bounds[1:], strict=False)]
    if kind == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        shards, group_start, row, group_bytes = [], 0, 0, 0
        first_row = 0
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            group_bytes += rg.total_byte_size
            row += rg.num_rows
            if group_bytes >= shard_bytes or g == meta.num_row_groups - 1:
                shards.append(Shard(source, str(path), kind, group_start, g + 1, group_bytes, text_column, first_row))
                group_start, group_bytes, first_row = g + 1, 0, row
        return shards or [Shard(source, str(path), kind, 0, 0, 0, text_column)]
    return [Shard(source, str(path), kind, 0, -1, size, text_column)]  # gzip, arrow: one shard per file


def _keep(positions: list[int], texts: list[str]) -> tuple[np.ndarray, list[str]]:
    keep = [i for i, t in enumerate(texts) if t and not t.isspace()]
    if len(keep) == len(texts):
        return np.asarray(positions, dtype=np.int64), texts
    return np.asarray([positions[i] for i in keep], dtype=np.int64), [texts[i] for i in keep]


def _lines(fh, start: int, stop: int | None, block_chars: int) -> Iterator[tuple[list[int], list[bytes]]]:
    """Lines starting in ``[start, stop)`` of a binary file: (byte offsets of their starts, raw lines)."""
    pos = start
    if start > 0:
        fh.seek(start - 1)
        if fh.read(1) != b"\n":  # the range starts inside a line: that line belongs to the previous shard
            pos = start + len(fh.readline())
    carry = b""
    while stop is None or pos < stop:
        data = fh.read(block_chars)
        if not data:
            if carry:
                yield [pos], [carry]
            return
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        lines = data[:cut].split(b"\n")
        carry = data[cut + 1:]
        lengths = np.fromiter((len(x) + 1 for x in lines), dtype=np.int64, count=len(lines))
        starts = pos + np.concatenate(([0], np.cumsum(lengths[:-1])))
        n = len(lines) if stop is None else int(np.searchsorted(starts, stop))
        yield starts[:n].tolist(), lines[:n]
        if n < len(lines):
            return
        pos = int(starts[-1] + lengths[-1])


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def _json_texts(lines: list[bytes], column: str, where: str) -> list[str]:
    out = []
    for raw in lines:
        if not raw.strip():
            out.append("")
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            raise EmbedlensError(f"{where} has a line that is not JSON: {_decode(raw)[:60]!r}") from None
        value = row.get(column) if isinstance(row, dict) else None
        out.append("" if value is None else value if isinstance(value, str) else str(value))
    return out


def read_shard(shard: Shard, block_chars: int = BLOCK_CHARS) -> Iterator[DocumentBlock]:
    """The documents of ``shard`` in blocks of about ``block_chars`` characters (blank documents skipped)."""
    if shard.kind in TEXT_KINDS:
        gz = shard.kind == "jsonl.gz"
        opener = gzip.open if gz else open
        with opener(shard.path, "rb") as fh:
            stop = None if gz else shard.stop
            for starts, lines in _lines(fh, shard.start, stop, block_chars):
                if shard.kind == "text":
                    texts = [_decode(x) for x in lines]
                else:
                    texts = _json_texts(lines, shard.text_column, shard.path)
                positions, texts = _keep(starts, texts)
                if texts:
                    yield DocumentBlock(shard, positions, texts)
        return
    for row, column in _table_batches(shard, block_chars):
        texts = [t if isinstance(t, str) else "" for t in column.to_pylist()]
        positions, texts = _keep(list(range(row, row + len(texts))), texts)
        if texts:
            yield DocumentBlock(shard, positions, texts)


def _table_batches(shard: Shard, block_chars: int) -> Iterator[tuple[int, object]]:
    """(first row, text column) per record batch of a Parquet shard or an Arrow file."""
    import pyarrow as pa

    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(shard.path)
        rows_per_batch = max(64, block_chars // 512)
        groups = list(range(shard.start, shard.stop))
        batches = pf.iter_batches(batch_size=rows_per_batch, row_groups=groups, columns=[shard.text_column]) if groups else []
    else:
        batches = _arrow_batches(shard.path, shard.text_column, pa)
    row = shard.first_row
    for batch in batches:
        column = batch.column(0) if shard.kind == "parquet" else batch
        yield row, column
        row += len(column)


def _arrow_batches(path: str, column: str, pa) -> Iterator[object]:
    source = pa.memory_map(path)
    try:
        reader = pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        reader = pa.ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i).column(column)
        return
    for batch in reader:
        yield batch.column(column)


def table_schema(path: Path, kind: str) -> object:
    """The Arrow schema of a Parquet or Arrow file (read from its footer / header only)."""
    import pyarrow as pa

    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path)
    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_stream(source).schema
    except pa.ArrowInvalid:
        return pa.ipc.open_file(source).schema


def table_columns(path: Path, kind: str) -> list[str]:
    """Column names of a Parquet or Arrow file."""
    return list(table_schema(path, kind).names)


def table_column_type(path: Path, kind: str, column: str) -> str:
    """The Arrow type name of ``column`` of a Parquet or Arrow file (``string``, ``int64``, ...)."""
    return str(table_schema(path, kind).field(column).type)


def jsonl_columns(path: Path, kind: str) -> list[str] | None:
    """The keys of the first JSON object in a JSONL file (``None`` when the file has no non-blank line)."""
    opener = gzip.open if kind == "jsonl.gz" else open
    with opener(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    row = json.loads(raw)
                except ValueError:
                    raise EmbedlensError(f"{path} is not JSON Lines: its first line is not JSON") from None
                if not isinstance(row, dict):
                    raise EmbedlensError(f"{path} is not JSON Lines of objects: its first line is a {type(row).__name__}")
                return list(row)
    return None
