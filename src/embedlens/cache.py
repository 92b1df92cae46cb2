"""The cache folder and atomic writes.

Everything embedlens keeps between runs lives under one folder: ``$EMBEDLENS_CACHE``, or the user's
cache directory (``~/.cache/embedlens`` on Linux). Entries are built in a temporary sibling folder and
renamed into place, and single files are written to a temporary name and renamed, so an interrupted
run never leaves a half-written entry or output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import EmbedlensError

ENV_VAR = "EMBEDLENS_CACHE"


def cache_root(create: bool = True) -> Path:
    """The cache folder (``$EMBEDLENS_CACHE`` or the platform's user cache directory)."""
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("embedlens", appauthor=False))
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
            # a name of its own per call: threads of one process (the explorer's jobs and requests) probe at once
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise EmbedlensError(
                f"cache folder {root} is not writable ({exc.strerror or exc})",
                hint=f"set {ENV_VAR} to a folder you can write",
            ) from None
    return root


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create an output folder, or raise a one-line error if it cannot be written."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".embedlens-write-test-"):
            pass
    except OSError as exc:
        raise EmbedlensError(f"output folder {out} is not writable ({exc.strerror or exc})") from None
    return out


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600 files; outputs should be as readable as any
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | os.PathLike[str], data: Any) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """An exclusive lock between processes building the same cache entry (the second waits, then reuses)."""
    import fcntl

    lock_dir = cache_root() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _digest_index() -> tuple[Path, dict]:
    index_path = cache_root() / "file-hashes.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    return index_path, index if isinstance(index, dict) else {}


def file_digests(files: list[Path]) -> dict[Path, str]:
    """SHA-256 of each file, remembered per (path, size, mtime) so warm runs do not re-read big files.

    The remembered digests live in ``file-hashes.json`` in the cache folder; a file whose size or
    modification time changed is hashed again, so a changed model never matches a stale entry.
    """
    index_path, index = _digest_index()
    changed = False
    out: dict[Path, str] = {}
    for f in (Path(p).resolve() for p in files):
        st = f.stat()
        rec = index.get(str(f))
        if not (isinstance(rec, dict) and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns):
            rec = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(f)}
            index[str(f)] = rec
            changed = True
        out[f] = rec["sha256"]
    if changed:
        with contextlib.suppress(OSError):
            write_json_atomic(index_path, index)
    return out


def content_hash(files: list[Path]) -> str:
    """One content hash over model files (names and contents), see :func:`file_digests`."""
    combined = hashlib.sha256()
    for f, digest in sorted(file_digests(files).items()):
        combined.update(f.name.encode() + b"\0" + digest.encode() + b"\0")
    return combined.hexdigest()
