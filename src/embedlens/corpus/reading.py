"""Reading corpora in bounded memory.

A corpus spec is a text file, a folder (every ``*.txt`` below it, recursively), or the name of a
packaged demo corpus: ``lee`` (300 news documents from gensim's test data, one per line) and
``enwiki-sample`` (the articles of the shortened English Wikipedia dump in gensim's test data,
extracted once into the cache). Several specs can be combined.

Text is streamed in chunks of about 1 MiB cut at whitespace, so a 200 MB corpus never sits in memory
whole. Binary files are skipped with a note; if nothing readable is left, that is an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmbedlensError

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
    lines_are_documents: bool = False


@dataclass
class Corpus:
    """One or more text sources. ``files`` are the readable ones, in a stable order."""

    specs: list[str]
    files: list[CorpusFile]
    skipped: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def iter_chunks(self, chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
        """The whole corpus as text chunks of about ``chunk_chars`` characters, cut at whitespace."""
        for f in self.files:
            yield from _file_chunks(f.path, chunk_chars)

    def iter_documents(self) -> Iterator[tuple[str, str]]:
        """``(doc_id, text)``: one document per file, or per line for line-per-document files (``lee``)."""
        for f in self.files:
            if f.lines_are_documents:
                with open(f.path, encoding="utf-8", errors="replace") as fh:
                    for i, line in enumerate(fh):
                        if line.strip():
                            yield f"{f.path.name}:{i + 1}", line.rstrip("\n")
            else:
                yield str(f.path), f.path.read_text(encoding="utf-8", errors="replace")

    def manifest(self) -> dict:
        """Specs, files, sizes and SHA-256 of each file, for output manifests."""
        from ..cache import file_digests

        # remembered per (path, size, mtime): warm runs do not read the corpus again just to hash it
        digests = file_digests([f.path for f in self.files])
        return {
            "specs": list(self.specs),
            "files": [{"path": str(f.path), "bytes": f.size, "sha256": digests[f.path.resolve()]} for f in self.files],
            "skipped": list(self.skipped),
        }


def _file_chunks(path: Path, chunk_chars: int) -> Iterator[str]:
    carry = ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        while True:
            block = fh.read(chunk_chars)
            if not block:
                break
            block = carry + block
            cut = max(block.rfind(" "), block.rfind("\n"), block.rfind("\t"))
            if cut <= 0:
                carry = block
                if len(carry) > 8 * chunk_chars:  # no whitespace at all: cut anyway, memory stays bounded
                    yield carry
                    carry = ""
                continue
            yield block[: cut + 1]
            carry = block[cut + 1 :]
    if carry:
        yield carry


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
    from ..cache import atomic_dir, cache_root

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


def _expand(spec: str) -> tuple[list[CorpusFile], list[str]]:
    if spec == "lee":
        path = _gensim_test_file("lee_background.cor")
        return [CorpusFile(path, path.stat().st_size, lines_are_documents=True)], []
    if spec == "enwiki-sample":
        folder = _enwiki_folder()
        files = sorted(folder.glob("*.txt"))
        return [CorpusFile(p, p.stat().st_size) for p in files], []
    path = Path(spec).expanduser()
    if not path.exists():
        names = ", ".join(PACKAGED_CORPORA)
        raise EmbedlensError(f"no such corpus file or folder: {spec}", hint=f"packaged corpora: {names}")
    if path.is_file():
        candidates = [path]
    else:
        candidates = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not candidates:
            raise EmbedlensError(f"folder {spec} has no *.txt files")
    files, skipped = [], []
    for p in candidates:
        try:
            if _is_binary(p):
                skipped.append(str(p))
                log.warning("skipping %s: it is not UTF-8 text", p)
                continue
            files.append(CorpusFile(p, p.stat().st_size))
        except OSError as exc:
            raise EmbedlensError(f"cannot read corpus file {p}: {exc.strerror or exc}") from None
    return files, skipped


def open_corpus(specs: str | Iterable[str]) -> Corpus:
    """A :class:`Corpus` for one spec or several (files, folders, ``lee``, ``enwiki-sample``)."""
    specs = [str(s) for s in ([specs] if isinstance(specs, str | os.PathLike) else specs)]
    if not specs:
        raise EmbedlensError("no corpus given")
    files: list[CorpusFile] = []
    skipped: list[str] = []
    for spec in specs:
        got, skip = _expand(str(spec))
        files.extend(got)
        skipped.extend(skip)
    if not files:
        raise EmbedlensError(f"no readable text in {', '.join(map(str, specs))} (binary files were skipped)")
    if all(f.size == 0 for f in files):
        raise EmbedlensError(f"the corpus {', '.join(map(str, specs))} is empty")
    return Corpus(specs, files, skipped)
