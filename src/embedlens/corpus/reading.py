"""Reading corpora in bounded memory.

A corpus spec is a text file, a folder (every ``*.txt``, ``*.jsonl``, ``*.jsonl.gz`` and ``*.parquet``
below it, recursively), a JSONL or Parquet file (the text is the ``text_column`` field, ``text`` by
default), a Hugging Face dataset as ``hf:NAME[:CONFIG][:SPLIT]`` (from the local datasets cache, never
downloaded) or ``hf:FOLDER[:SPLIT]`` (saved with ``save_to_disk``), or the name of a packaged demo corpus:
``lee`` (300 news documents from gensim's test data) and ``enwiki-sample`` (the articles of the shortened
English Wikipedia dump in gensim's test data, extracted once into the cache). Several specs can be combined.

One document is one line of a text file or one row of a table (see :mod:`embedlens.corpus.sources`);
blank documents are skipped. Text is read in blocks, so a large corpus never sits in memory whole.
Binary files are skipped with a note; if nothing readable is left, that is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import atomic_dir, cache_root, file_digests
from ..errors import EmbedlensError
from .hf_datasets import dataset_files
from .sources import (
    BLOCK_CHARS,
    SHARD_BYTES,
    TABLE_KINDS,
    DocumentBlock,
    Shard,
    jsonl_columns,
    plan_shards,
    read_shard,
    source_kind,
    table_column_type,
    table_columns,
)

log = logging.getLogger("embedlens")

CHUNK_CHARS = 1 << 20
PACKAGED_CORPORA = {
    "lee": "300 short news documents (gensim test data, lee_background.cor)",
    "enwiki-sample": "English Wikipedia articles, about 3 MB of text (shortened dump in gensim test data)",
}
_ENWIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    size: int
    kind: str = "text"  # text | jsonl | jsonl.gz | parquet | arrow (see embedlens.corpus.sources)


@dataclass
class Corpus:
    """One or more sources of documents. ``files`` are the readable ones, in a stable order.

    ``text_column`` names the field holding the text in JSONL, Parquet and dataset sources.
    """

    specs: list[str]
    files: list[CorpusFile]
    skipped: list[str] = field(default_factory=list)
    text_column: str = "text"
    shard_bytes: int = SHARD_BYTES  # how big a piece one read task takes

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def shards(self, shard_bytes: int | None = None) -> list[Shard]:
        """The corpus cut into :class:`~embedlens.corpus.sources.Shard` s that can be read independently."""
        size = shard_bytes or self.shard_bytes
        return [s for i, f in enumerate(self.files) for s in plan_shards(i, f.path, f.kind, f.size, self.text_column, size)]

    def iter_blocks(self, block_chars: int = BLOCK_CHARS) -> Iterator[DocumentBlock]:
        """Every document, in corpus order, in blocks of about ``block_chars`` characters."""
        for shard in self.shards():
            yield from read_shard(shard, block_chars)

    def iter_documents(self) -> Iterator[tuple[str, str]]:
        """``(doc_id, text)`` of every non-blank document: a line of a text file, a row of a table."""
        for block in self.iter_blocks():
            yield from zip(block.doc_ids(), block.texts, strict=True)

    def iter_chunks(self, chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
        """The documents joined by newlines into chunks of about ``chunk_chars`` characters (never cut inside one)."""
        parts: list[str] = []
        size = 0
        for block in self.iter_blocks(chunk_chars):
            for text in block.texts:
                parts.append(text)
                size += len(text) + 1
                if size >= chunk_chars:
                    yield "\n".join(parts) + "\n"
                    parts, size = [], 0
        if parts:
            yield "\n".join(parts) + "\n"

    def manifest(self) -> dict:
        """Specs, files, kinds, sizes and SHA-256 of each file, for output manifests."""
        # remembered per (path, size, mtime): warm runs do not read the corpus again just to hash it
        digests = file_digests([f.path for f in self.files])
        return {
            "specs": list(self.specs),
            "documents": "one per line of a text file, one per row of JSONL / Parquet / datasets; blank ones skipped",
            "text_column": self.text_column,
            "files": [{"path": str(f.path), "kind": f.kind, "bytes": f.size, "sha256": digests[f.path.resolve()]}
                      for f in self.files],
            "skipped": list(self.skipped),
        }


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is fine; anything earlier is not UTF-8 text.
        return exc.start < len(head) - 4
    return False


def _gensim_test_file(name: str) -> Path:
    # Find the file without importing gensim (its import takes seconds); import it only as a fallback.
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "test" / "test_data" / name
        if candidate.is_file():
            return candidate
    try:
        from gensim.test.utils import datapath
    except ImportError:
        raise EmbedlensError("the packaged corpora come with gensim: pip install gensim") from None
    path = Path(datapath(name))
    if not path.exists():
        raise EmbedlensError(f"gensim's test data file {name} is missing from the installed gensim")
    return path


def _enwiki_folder() -> Path:
    """Extract the Wikipedia sample once into the cache (one ``.txt`` per article)."""
    folder = cache_root() / "corpora" / "enwiki-sample"
    if folder.is_dir() and (folder / "DONE").exists():
        return folder
    dump = _gensim_test_file(_ENWIKI_DUMP)  # a clear error when gensim is missing
    import bz2

    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    log.info("extracting the enwiki-sample corpus once into the cache")
    with atomic_dir(folder) as tmp, bz2.open(dump, "rb") as fh:
        n = 0
        for title, text, _pageid in extract_pages(fh):
            plain = filter_wiki(text)
            if len(plain.split()) < 50:  # redirects and stubs
                continue
            (tmp / f"{n:04d}.txt").write_text(f"{title}\n{plain}\n", encoding="utf-8")
            n += 1
        (tmp / "DONE").write_text(str(n))
    return folder


SUFFIXES = ("*.txt", "*.jsonl", "*.ndjson", "*.jsonl.gz", "*.ndjson.gz", "*.parquet")


def _check_column(path: Path, kind: str, column: str) -> None:
    """Refuse a JSONL / Parquet / Arrow file whose rows have no ``column`` (naming the columns they have)."""
    try:
        names = table_columns(path, kind) if kind in TABLE_KINDS else jsonl_columns(path, kind)
    except EmbedlensError:
        raise
    except Exception as exc:  # pyarrow and gzip raise many types for damaged files
        raise EmbedlensError(f"cannot read corpus file {path}: {type(exc).__name__}: {exc}") from None
    if names is not None and column not in names:
        raise EmbedlensError(f"{path} has no column '{column}' (its columns: {', '.join(names) or 'none'}); "
                             "choose one with `text_column`")
    if kind in TABLE_KINDS:
        kind_of = table_column_type(path, kind, column)
        if kind_of not in ("string", "large_string", "string_view"):
            raise EmbedlensError(f"column '{column}' of {path} holds {kind_of}, not text; choose a text column "
                                 "with `text_column`")


def _file(path: Path, column: str) -> CorpusFile | None:
    """A readable source file, or ``None`` for a binary file that is skipped."""
    kind = source_kind(path) or "text"
    try:
        if kind == "text":
            if _is_binary(path):
                log.warning("skipping %s: it is not UTF-8 text", path)
                return None
        else:
            _check_column(path, kind, column)
        return CorpusFile(path, path.stat().st_size, kind)
    except OSError as exc:
        raise EmbedlensError(f"cannot read corpus file {path}: {exc.strerror or exc}") from None


def _expand(spec: str, column: str) -> tuple[list[CorpusFile], list[str]]:
    if spec == "lee":
        path = _gensim_test_file("lee_background.cor")
        return [CorpusFile(path, path.stat().st_size)], []
    if spec == "enwiki-sample":
        folder = _enwiki_folder()
        files = sorted(folder.glob("*.txt"))
        return [CorpusFile(p, p.stat().st_size) for p in files], []
    if spec.startswith("hf:"):
        paths = dataset_files(spec)
        for p in paths[:1]:
            _check_column(p, "arrow", column)
        return [CorpusFile(p, p.stat().st_size, "arrow") for p in paths], []
    path = Path(spec).expanduser()
    if not path.exists():
        names = ", ".join(PACKAGED_CORPORA)
        raise EmbedlensError(f"no such corpus file or folder: {spec}",
                             hint=f"packaged corpora: {names}; datasets: hf:NAME[:CONFIG][:SPLIT]")
    if path.is_file():
        candidates = [path]
    else:
        candidates = sorted({p for pattern in SUFFIXES for p in path.rglob(pattern) if p.is_file()})
        if not candidates:
            raise EmbedlensError(f"folder {spec} has no *.txt, *.jsonl, *.jsonl.gz or *.parquet files")
    files, skipped = [], []
    for p in candidates:
        got = _file(p, column)
        if got is None:
            skipped.append(str(p))
        else:
            files.append(got)
    return files, skipped


def open_corpus(specs: str | Iterable[str], *, text_column: str = "text") -> Corpus:
    """A :class:`Corpus` for one spec or several (files, folders, ``hf:NAME``, ``lee``, ``enwiki-sample``).

    Args:
        specs: corpus specs (see the module docstring).
        text_column: the field holding the text in JSONL, Parquet and dataset sources.

    Raises:
        EmbedlensError: a missing or unreadable source, a missing text column, an empty corpus.
    """
    specs = [str(s) for s in ([specs] if isinstance(specs, str | os.PathLike) else specs)]
    if not specs:
        raise EmbedlensError("no corpus given")
    if not text_column or not str(text_column).strip():
        raise EmbedlensError("the text column name is empty")
    files: list[CorpusFile] = []
    skipped: list[str] = []
    for spec in specs:
        got, skip = _expand(str(spec), text_column)
        files.extend(got)
        skipped.extend(skip)
    if not files:
        raise EmbedlensError(f"no readable text in {', '.join(map(str, specs))} (binary files were skipped)")
    if all(f.size == 0 for f in files):
        raise EmbedlensError(f"the corpus {', '.join(map(str, specs))} is empty")
    return Corpus(specs, files, skipped, text_column)
