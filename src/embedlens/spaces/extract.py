"""Extract a model's embedding matrices once, cache them, and memory-map them afterwards.

A cache entry (``$EMBEDLENS_CACHE/models/<name>-<content hash>/``) holds:
  * ``embeddings.safetensors``: ``input`` (n_vocab, d_model) float32, its row norms ``input_norms``,
    and ``output`` / ``output_norms`` when the unembedding is not tied to the input embedding;
  * ``tokenizer/``: the tokenizer as ``save_pretrained`` writes it (``tokenizer.json`` included);
  * ``vocab.json``: raw and readable token strings and the special token ids;
  * ``meta.json``, written last: spec, hash, shapes, architecture facts, versions, file sizes.
The entry is built in a temporary folder and renamed into place. On open it is checked (meta, sizes,
tensor headers, and a sample of row norms recomputed); a corrupt or partial entry is rebuilt with a note.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_dir, sha256_file
from ..errors import EmbedlensError
from ..models.specs import ModelSource
from .space import EmbeddingSpace

log = logging.getLogger("embedlens")

FORMAT_VERSION = 1
_NORM_SAMPLE = 512


@dataclass
class ModelEntry:
    """An opened cache entry: the model's static spaces and where its tokenizer lives."""

    source: ModelSource
    folder: Path
    meta: dict[str, Any]
    input: EmbeddingSpace
    output: EmbeddingSpace | None  # None when tied (use ``input``) or when the model has no LM head

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder / "tokenizer"


def versions() -> dict[str, str]:
    """Versions of the packages that shape results, for manifests."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("embedlens", "numpy", "torch", "transformers", "tokenizers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def special_ids(tokenizer: Any, n: int) -> list[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for idx, tok in decoder.items():
        if getattr(tok, "special", False):
            ids.add(int(idx))
    return sorted(i for i in ids if 0 <= i < n)


def build_entry(source: ModelSource, folder: Path) -> None:
    """Load the model once and write its cache entry atomically at ``folder``."""
    import torch

    from ..display import detect_scheme, display_tokens
    from ..models.architectures import model_parts
    from ..models.loading import load_model

    started = time.perf_counter()
    model, tokenizer = load_model(source)
    parts = model_parts(model)
    with torch.no_grad():
        e_in = parts.embed.weight.detach().to(torch.float32).cpu().numpy()
        e_out = None
        tied = True
        if parts.unembed is not None:
            w = parts.unembed.weight
            tied = w.data_ptr() == parts.embed.weight.data_ptr() or (
                w.shape == parts.embed.weight.shape and bool(torch.equal(w, parts.embed.weight))
            )
            if not tied:
                e_out = w.detach().to(torch.float32).cpu().numpy()
    n_tok = len(tokenizer)
    n = min(e_in.shape[0], n_tok)  # matrices are often padded past the vocabulary
    e_in = np.ascontiguousarray(e_in[:n])
    raw = tokenizer.convert_ids_to_tokens(list(range(n)))
    raw = [r if isinstance(r, str) else f"<unused:{i}>" for i, r in enumerate(raw)]
    special = special_ids(tokenizer, n)

    from safetensors.numpy import save_file

    from ..neighbors.exact import row_norms

    with atomic_dir(folder) as tmp:
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        tj_path = tmp / "tokenizer" / "tokenizer.json"
        scheme = detect_scheme(json.loads(tj_path.read_text(encoding="utf-8"))) if tj_path.exists() else "plain"
        tensors = {"input": e_in, "input_norms": row_norms(e_in)}
        if e_out is not None:
            tensors["output"] = np.ascontiguousarray(e_out[:n])
            tensors["output_norms"] = row_norms(tensors["output"])
        save_file(tensors, str(tmp / "embeddings.safetensors"))
        vocab = {"tokens": raw, "display": display_tokens(raw, scheme, special), "special_ids": special}
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        meta = {
            "format": FORMAT_VERSION,
            "spec": source.spec,
            "name": source.name,
            "kind": source.kind,
            "path": str(source.path),
            "files": [str(f) for f in source.files],
            "key": folder.name,
            "content_hash": folder.name.rsplit("-", 1)[-1],
            "model_type": model.config.model_type,
            "model_class": type(model).__name__,
            "family": parts.arch.family,
            "causal": parts.arch.causal and parts.unembed is not None,
            "n_vocab": n,
            "d_model": int(e_in.shape[1]),
            "n_layers": parts.n_layers,
            "tied": bool(tied),
            "has_output": parts.unembed is not None,
            "embed_scale": parts.embed_scale,
            "dtype": "float32",
            "tokenizer_class": type(tokenizer).__name__,
            "token_scheme": scheme,
            "sizes": {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()},
            "sha256": {p.name: sha256_file(p) for p in tmp.iterdir() if p.is_file()},
            "versions": versions(),
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        # The dequantized copy of a GGUF lives in the same folder; keep it across the rename.
        old = folder / "dequantized"
        if old.is_dir():
            old.rename(tmp / "dequantized")


def _check_and_open(source: ModelSource, folder: Path) -> ModelEntry:
    """Open an entry, raising ``_Corrupt`` with a reason if anything is off."""
    from .safetensors_mmap import read_tensors

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _Corrupt("meta.json is missing") from None
    except ValueError:
        raise _Corrupt("meta.json is not valid JSON") from None
    if meta.get("format") != FORMAT_VERSION:
        raise _Corrupt(f"format {meta.get('format')} is not {FORMAT_VERSION}")
    for name, size in (meta.get("sizes") or {}).items():
        f = folder / name
        if not f.is_file() or f.stat().st_size != size:
            raise _Corrupt(f"{name} is missing or has the wrong size")
    try:
        tensors = read_tensors(folder / "embeddings.safetensors")
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    except EmbedlensError as exc:
        raise _Corrupt(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise _Corrupt(f"vocab.json unreadable ({exc})") from None
    n, d = meta["n_vocab"], meta["d_model"]
    spaces = {}
    for which in ("input", "output"):
        if which not in tensors:
            continue
        vectors, norms = tensors[which], tensors.get(f"{which}_norms")
        if vectors.shape != (n, d) or norms is None or norms.shape != (n,):
            raise _Corrupt(f"tensor '{which}' has shape {vectors.shape}, expected {(n, d)}")
        # A cheap integrity check on every open: recompute the norms of a fixed sample of rows.
        sample = np.linspace(0, n - 1, num=min(n, _NORM_SAMPLE)).astype(np.int64)
        got = np.sqrt(np.einsum("ij,ij->i", vectors[sample], vectors[sample], dtype=np.float64))
        if not np.allclose(got, norms[sample], rtol=1e-4, atol=1e-6):
            raise _Corrupt(f"tensor '{which}' does not match its stored norms (damaged data)")
        if len(vocab.get("tokens", [])) != n or len(vocab.get("display", [])) != n:
            raise _Corrupt("vocab.json does not match the matrix")
        special = np.zeros(n, dtype=bool)
        special[np.asarray(vocab.get("special_ids", []), dtype=np.int64)] = True
        spaces[which] = EmbeddingSpace(
            vectors=vectors,
            labels=vocab["tokens"],
            display=vocab["display"],
            ids=np.arange(n, dtype=np.int64),
            special=special,
            name=f"{meta['name']}:{which}",
            metadata={"model": meta["spec"], "content_hash": meta["content_hash"], "matrix": which,
                      "model_type": meta["model_type"], "token_scheme": meta["token_scheme"]},
            norms_hint=np.asarray(norms),
        )
    if "input" not in spaces:
        raise _Corrupt("no input embedding tensor")
    if not (folder / "tokenizer").is_dir():
        raise _Corrupt("tokenizer folder is missing")
    return ModelEntry(source, folder, meta, spaces["input"], spaces.get("output"))


class _Corrupt(Exception):
    pass


def open_entry(source: ModelSource, *, rebuild: bool = False) -> ModelEntry:
    """The cache entry of a model: opened if present and sound, else (re)built from the model files."""
    from ..cache import build_lock
    from ..models.loading import model_entry_dir
    from ..progress import status

    folder = model_entry_dir(source)
    if folder.exists() and not rebuild:
        try:
            return _check_and_open(source, folder)
        except _Corrupt as why:
            log.warning("cache entry %s is damaged (%s); rebuilding it", folder.name, why)
            rebuild = True
    with build_lock(folder.name):
        if folder.exists() and not rebuild:  # another process built it while we waited
            try:
                return _check_and_open(source, folder)
            except _Corrupt:
                pass
        log.info("extracting the embedding matrix of %s (once; later runs use the cache)", source.spec)
        with status(f"loading {source.spec} and extracting its embedding matrix"):
            build_entry(source, folder)
    try:
        return _check_and_open(source, folder)
    except _Corrupt as why:
        raise EmbedlensError(f"the cache entry for {source.spec} could not be built soundly: {why}") from None
