"""Listing, verifying and clearing model cache entries."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..cache import cache_root, sha256_file
from ..errors import EmbedlensError
from ..models.specs import resolve


@dataclass(frozen=True)
class EntryInfo:
    key: str
    path: str
    spec: str | None
    shape: str | None
    bytes: int
    status: str

    def to_dict(self) -> dict:
        return asdict(self)


def _entries() -> list[Path]:
    root = cache_root() / "models"
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def _meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def list_entries() -> list[EntryInfo]:
    out = []
    for folder in _entries():
        meta = _meta(folder)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shape = f"{meta['n_vocab']} x {meta['d_model']}" if meta and "n_vocab" in meta else None
        out.append(EntryInfo(folder.name, str(folder), meta.get("spec") if meta else None, shape, size,
                             "ok" if meta else "incomplete"))
    return out


def _matching(model: str | None) -> list[Path]:
    folders = _entries()
    if model is None:
        return folders
    by_key = [f for f in folders if f.name == model]
    if by_key:
        return by_key
    names = {model}
    try:
        names.add(resolve(model).name)
    except EmbedlensError:
        pass
    hits = [f for f in folders if f.name.rsplit("-", 1)[0] in names or (_meta(f) or {}).get("spec") == model]
    if not hits:
        raise EmbedlensError(f"no cache entry for '{model}' (see `embedlens cache list`)")
    return hits


def verify_entries(model: str | None = None) -> list[tuple[str, bool, str]]:
    """Full check of each entry: every file's SHA-256 against the digest recorded when it was built."""
    results = []
    for folder in _matching(model):
        meta = _meta(folder)
        if meta is None:
            results.append((folder.name, False, "meta.json missing or unreadable"))
            continue
        bad = [name for name, digest in (meta.get("sha256") or {}).items()
               if not (folder / name).is_file() or sha256_file(folder / name) != digest]
        results.append((folder.name, not bad, f"{', '.join(bad)} changed since it was built" if bad else ""))
    return results


def clear_entries(model: str | None = None) -> list[str]:
    removed = []
    for folder in _matching(model):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed
