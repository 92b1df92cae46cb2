"""Extract a model's embedding matrices once, cache them, and memory-map them afterwards.

A cache entry (``$EMBEDLENS_CACHE/models/<name>-<content hash>/``) holds:
  * ``embeddings.safetensors``: ``input`` (n_vocab, d_model) float32, its row norms ``input_norms``,
    and ``output`` / ``output_norms`` when the unembedding is not tied to the input embedding;
  * ``tokenizer/``: the tokenizer as ``save_pretrained`` writes it (``tokenizer.json`` included);
  * ``vocab.json``: raw and readable token strings and the special token ids;
  * ``meta.json``, written last: spec, hash, shapes, architecture facts, versions, file sizes and digests;
  * beside them, outside meta's file list: ``single_tokens.safetensors`` (the texts the tokenizer encodes as one
    token, :mod:`embedlens.models.token_lookup`; made with the entry, or on the first query for an entry made
    before it existed) and, later, cached k-NN graphs.
The entry is built in a temporary folder and renamed into place. On open it is checked (meta, sizes, the
xxh3 digest of every file but the matrices, tensor headers, and the xxh3 digest of every 16 MiB block of
the matrices and norms recomputed); a corrupt or partial entry is rebuilt with a note. Rows past the tokenizer's vocabulary (padded matrices) are kept and
labelled ``⟨unused N⟩``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_dir, build_lock, sha256_file
from ..display import detect_scheme, display_tokens
from ..errors import EmbedlensError
from ..models.architectures import architecture_for
from ..models.checkpoint import Checkpoint
from ..models.gguf_reader import fast_gguf_reader
from ..models.loading import load_config, load_tokenizer
from ..models.specs import ModelSource
from ..models.token_lookup import SINGLE_TOKENS_FILE, SingleTokenIndex, read_fast_tokenizer
from ..models.weights import _is_causal, model_entry_dir
from ..neighbors.exact import row_norms
from ..progress import status
from ..safetensors_mmap import read_tensors
from ..timing import Timings
from ..versions import versions
from .space import EmbeddingSpace

log = logging.getLogger("embedlens")

FORMAT_VERSION = 3  # 3: xxh3 digests of blocks and files (2 summed 64-bit words)


@dataclass
class ModelEntry:
    """An opened cache entry: the model's static spaces and where its tokenizer lives."""

    source: ModelSource
    folder: Path
    meta: dict[str, Any]
    input: EmbeddingSpace
    _output: EmbeddingSpace | None  # None when tied (use ``input``) or when the model has no LM head
    _unverified: Any = None  # the output matrix's integrity check, run on its first use

    @property
    def output(self) -> EmbeddingSpace | None:
        """The untied unembedding; its checksums are verified the first time it is used (a command about the
        input matrix does not pay for reading the output one), and a damaged entry is rebuilt then."""
        if self._unverified is not None:
            check, self._unverified = self._unverified, None
            damage = check()
            if damage:
                log.warning("cache entry %s is damaged (%s); rebuilding it", self.folder.name, damage)
                fresh = open_entry(self.source, rebuild=True)
                self.meta, self.input, self._output = fresh.meta, fresh.input, fresh._output
        return self._output

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder / "tokenizer"




def special_ids(tokenizer: Any, n: int) -> list[int]:
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for idx, tok in decoder.items():
        if getattr(tok, "special", False):
            ids.add(int(idx))
    return sorted(i for i in ids if 0 <= i < n)


def unused_label(token_id: int) -> str:
    """How a row past the tokenizer's vocabulary (a padded embedding row) is shown: ``⟨unused N⟩``."""
    return f"⟨unused {int(token_id)}⟩"


def vocabulary(tokenizer: Any, n_rows: int) -> tuple[list[str], list[int], int]:
    """Raw token strings of rows ``0 .. n_rows-1``, the special ids, and the tokenizer's own size.

    Rows past the tokenizer (padded vocabularies) are kept and labelled :func:`unused_label`.
    """
    n_tok = len(tokenizer)
    n = min(n_rows, n_tok)
    raw = tokenizer.convert_ids_to_tokens(list(range(n)))
    raw = [r if isinstance(r, str) else unused_label(i) for i, r in enumerate(raw)]
    raw += [unused_label(i) for i in range(n, n_rows)]
    return raw, special_ids(tokenizer, n), n_tok


def _model_class_name(config: Any, causal: bool) -> str:
    from transformers.models.auto import modeling_auto as auto

    table = auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES if causal else auto.MODEL_MAPPING_NAMES
    return str(table.get(config.model_type, type(config).__name__.replace("Config", "Model")))


def matrices(source: ModelSource, config: Any) -> dict[str, Any]:
    """Find the input embedding (and the untied unembedding) in the checkpoint, without loading the model.

    Returns ``{"checkpoint", "arch", "input", "output" (a tensor name or None), "causal", "tied"}``.
    """
    arch = architecture_for(config.model_type)
    ckpt = Checkpoint(source.path)
    name_in = ckpt.find(arch.embed_tensors())
    if name_in is None:
        raise EmbedlensError(f"the checkpoint of {source.spec} has no input embedding tensor: expected "
                             f"'{arch.embed_tensors()[0]}' for a {config.model_type} model")
    causal = arch.causal and (source.kind == "gguf" or _is_causal(config))
    name_out = ckpt.find(arch.head_tensors()) if causal else None
    tied_cfg = bool(getattr(config, "tie_word_embeddings", True))
    if source.kind == "gguf":
        tied = name_out is None  # a GGUF writes output.weight only when the head is its own matrix
    else:
        tied = tied_cfg
        if causal and not tied and name_out is None:
            raise EmbedlensError(f"the checkpoint of {source.spec} has no '{arch.head_tensor}' tensor, but its config "
                                 "says the LM head is not tied to the input embedding")
    if tied:
        name_out = None
    shape = ckpt.info(name_in).shape
    if len(shape) != 2 or shape[1] != int(config.hidden_size):
        raise EmbedlensError(f"tensor '{name_in}' of {source.spec} has shape {shape}, expected (rows, {config.hidden_size})")
    if name_out is not None and ckpt.info(name_out).shape != shape:
        raise EmbedlensError(f"tensor '{name_out}' of {source.spec} has shape {ckpt.info(name_out).shape}, expected {shape}")
    return {"checkpoint": ckpt, "arch": arch, "input": name_in, "output": name_out, "causal": causal, "tied": tied}


CHECK_BLOCK_BYTES = 16 << 20  # one checksum per 16 MiB of matrix


def check_rows(d: int) -> int:
    """Rows per checksum block (even, so each block is whole 8-byte words)."""
    rows = max(2, CHECK_BLOCK_BYTES // (4 * max(d, 1)))
    return rows - rows % 2


def block_sum(block: np.ndarray) -> str:
    """Digest of a block: xxh3-64 of its bytes (a swapped pair of rows or a +x/-x pair changes it, which a
    sum of words would not), read at memory speed. Hex string."""
    import xxhash

    return xxhash.xxh3_64_hexdigest(memoryview(np.ascontiguousarray(block)).cast("B"))


def file_digests(folder: Path, names: list[str] | None = None) -> dict[str, str]:
    """xxh3-64 of ``names`` (paths relative to ``folder``; default: every file of a fresh entry but its
    matrices and meta.json), so the tokenizer and vocabulary files are checked by content on open, not only
    by size (a few milliseconds even for Gemma's). A listed file that is missing gets ``"missing"``."""
    import xxhash

    if names is None:
        names = [f.relative_to(folder).as_posix() for f in sorted(folder.rglob("*")) if f.is_file()]
        names = [n for n in names if n not in ("embeddings.safetensors", "meta.json")]
    out = {}
    for name in names:
        f = folder / name
        out[name] = xxhash.xxh3_64_hexdigest(f.read_bytes()) if f.is_file() else "missing"
    return out


STREAM_ABOVE = 256 << 20  # bytes: larger memory-mapped matrices are checked through one reused buffer


def block_sums(x: np.ndarray, rows: int) -> list[str]:
    """Checksums of ``x`` in blocks of ``rows`` rows. A memory-mapped ``x`` above :data:`STREAM_ABOVE` bytes is
    read through the file into one reused buffer, so checking a large matrix does not leave it resident in this
    process's memory; a smaller one is hashed in place (SmolLM2's 113 MB: 5 ms instead of 20 ms of copying)."""
    filename = getattr(x, "filename", None)
    if (not isinstance(x, np.memmap) or not filename or not x.flags.c_contiguous
            or x.nbytes <= STREAM_ABOVE):
        return [block_sum(x[s : s + rows]) for s in range(0, x.shape[0], rows)]
    row = int(np.prod(x.shape[1:], dtype=np.int64))
    buf = np.empty(rows * row, dtype=x.dtype)
    out = []
    with open(filename, "rb") as fh:
        fh.seek(int(x.offset))
        for s in range(0, x.shape[0], rows):
            view = buf[: (min(s + rows, x.shape[0]) - s) * row]
            if fh.readinto(memoryview(view).cast("B")) != view.nbytes:
                out.append("truncated")
                break
            out.append(block_sum(view))
    return out


def _write_matrices(path: Path, ckpt: Any, names: dict[str, str], shape: tuple[int, int]) -> dict[str, Any]:
    """Stream the matrices into one safetensors file, converting a block of rows at a time (peak extra memory:
    one block). Returns the per-block checksums of every tensor written."""
    import struct

    n, d = shape
    rows = check_rows(d)
    header: dict[str, Any] = {}
    offset = 0
    for which in names:
        header[which] = {"dtype": "F32", "shape": [n, d], "data_offsets": [offset, offset + 4 * n * d]}
        offset += 4 * n * d
    for which in names:
        header[f"{which}_norms"] = {"dtype": "F32", "shape": [n], "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    sums: dict[str, Any] = {"rows": rows}
    norms: dict[str, np.ndarray] = {}
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for which, name in names.items():
            norms[which] = np.empty(n, dtype=np.float32)
            sums[which] = []
            for s in range(0, n, rows):
                e = min(s + rows, n)
                block = np.ascontiguousarray(ckpt.rows_float32(name, s, e), dtype=np.float32)
                if block.shape != (e - s, d):
                    raise EmbedlensError(f"tensor '{name}' gave rows of shape {block.shape}, expected {(e - s, d)}")
                norms[which][s:e] = row_norms(block)
                sums[which].append(block_sum(block))
                fh.write(memoryview(block).cast("B"))
        for which in names:
            fh.write(memoryview(norms[which]).cast("B"))
            sums[f"{which}_norms"] = block_sums(norms[which], rows)
    return sums


def build_entry(source: ModelSource, folder: Path) -> None:
    """Read the embedding matrices straight from the checkpoint and write the cache entry atomically at ``folder``.

    The network is never built: the config and tokenizer come from the model's files, the matrices from
    their tensors (memory-mapped safetensors shards, a ``.bin`` through a weights-only memory-mapped
    ``torch.load``, or a GGUF's token embedding dequantized by the ``gguf`` reader), streamed to float32.
    """
    clock = Timings()
    with fast_gguf_reader():  # a GGUF's metadata is parsed once for the config, the matrices and the tokenizer
        config = load_config(source)
        found = matrices(source, config)
        tokenizer = load_tokenizer(source)
    ckpt, arch = found["checkpoint"], found["arch"]
    shape = ckpt.info(found["input"]).shape
    n, d = int(shape[0]), int(shape[1])
    raw, special, n_tok = vocabulary(tokenizer, n)
    names = {"input": found["input"]}
    if found["output"] is not None:
        names["output"] = found["output"]

    with atomic_dir(folder) as tmp:
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        tj_path = tmp / "tokenizer" / "tokenizer.json"
        scheme = detect_scheme(json.loads(tj_path.read_text(encoding="utf-8"))) if tj_path.exists() else "plain"
        sums = _write_matrices(tmp / "embeddings.safetensors", ckpt, names, (n, d))
        shown = display_tokens(raw[:n_tok], scheme, special) + raw[n_tok:]
        vocab = {"tokens": raw, "display": shown, "special_ids": special}
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
            "model_type": config.model_type,
            "model_class": _model_class_name(config, found["causal"]),
            "family": arch.family,
            "causal": bool(found["causal"]),
            "n_vocab": n,
            "n_tokenizer": int(n_tok),
            "padded_rows": max(0, n - int(n_tok)),
            "d_model": d,
            "n_layers": int(config.num_hidden_layers),
            "tied": bool(found["tied"]),
            "has_output": bool(found["causal"]),
            "embed_scale": arch.embed_scale(config),
            "dtype": "float32",
            "source_tensors": {k: {"name": v, "dtype": ckpt.info(v).dtype} for k, v in names.items()},
            "checkpoint_format": ckpt.kind,
            "tokenizer_class": type(tokenizer).__name__,
            "token_scheme": scheme,
            "checksums": sums,
            "sizes": {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()},
            "sha256": {p.name: sha256_file(p) for p in tmp.iterdir() if p.is_file()},
            "digests": file_digests(tmp),
            "versions": versions(),
            "build_seconds": round(clock.since_start(), 3),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        digest = meta["digests"].get("tokenizer/tokenizer.json")
        if digest:  # one-token queries then read no tokenizer, and a query writes nothing into the entry
            SingleTokenIndex.build(read_fast_tokenizer(tj_path)).save(tmp / SINGLE_TOKENS_FILE, tokenizer_digest=digest)
        # The dequantized copy of a GGUF lives in the same folder; keep it across the rename.
        old = folder / "dequantized"
        if old.is_dir():
            old.rename(tmp / "dequantized")


def verify_matrix(meta: dict[str, Any], tensors: dict[str, np.ndarray], *,
                  only: tuple[str, ...] | None = None) -> str | None:
    """Recompute every block checksum of the cached matrices; the first damaged block, or None when sound.

    Cost: one pass over the matrices at memory speed (measured in ``benchmarks/bench_scale.py``).
    """
    sums = meta.get("checksums") or {}
    rows = sums.get("rows")
    if not isinstance(rows, int) or rows < 1:
        return "no checksums"
    for which, expected in sums.items():
        if which == "rows" or (only is not None and which not in only):
            continue
        if which not in tensors:
            return f"tensor '{which}' is missing"
        x = tensors[which]
        got = block_sums(x, rows)
        if got != expected:
            bad = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
            return f"tensor '{which}' rows {bad * rows}..{min((bad + 1) * rows, x.shape[0]) - 1} do not match their checksum"
    return None


def _check_and_open(source: ModelSource, folder: Path) -> ModelEntry:
    """Open an entry, raising ``_Corrupt`` with a reason if anything is off."""
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
    digests = meta.get("digests")
    if not isinstance(digests, dict):
        raise _Corrupt("meta.json has no file digests")
    found = file_digests(folder, sorted(digests))  # files added later (k-NN graphs, a GGUF's copy) are not the entry's
    changed = [name for name in found if found[name] != digests[name]]
    if changed:
        raise _Corrupt(f"{', '.join(changed[:3])} changed since the entry was built")
    try:
        tensors = read_tensors(folder / "embeddings.safetensors")
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    except EmbedlensError as exc:
        raise _Corrupt(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise _Corrupt(f"vocab.json unreadable ({exc})") from None
    n, d = meta["n_vocab"], meta["d_model"]
    # every byte of the input matrix and norms, at memory speed; the output matrix on its first use
    damage = verify_matrix(meta, tensors, only=("input", "input_norms"))
    if damage:
        raise _Corrupt(f"{damage} (damaged data)")
    spaces = {}
    for which in ("input", "output"):
        if which not in tensors:
            continue
        vectors, norms = tensors[which], tensors.get(f"{which}_norms")
        if vectors.shape != (n, d) or norms is None or norms.shape != (n,):
            raise _Corrupt(f"tensor '{which}' has shape {vectors.shape}, expected {(n, d)}")
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
    if meta.get("has_output") and not meta.get("tied") and "output" not in spaces:
        raise _Corrupt("no output embedding tensor, though the head is untied")
    if not (folder / "tokenizer").is_dir():
        raise _Corrupt("tokenizer folder is missing")
    def check_output() -> str | None:
        return verify_matrix(meta, tensors, only=("output", "output_norms"))

    return ModelEntry(source, folder, meta, spaces["input"], spaces.get("output"),
                      check_output if "output" in spaces else None)


class _Corrupt(Exception):
    pass


def open_entry(source: ModelSource, *, rebuild: bool = False) -> ModelEntry:
    """The cache entry of a model: opened if present and sound, else (re)built from the model files."""
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
        with status(f"reading the embedding matrix of {source.spec} from its checkpoint"):
            build_entry(source, folder)
    try:
        return _check_and_open(source, folder)
    except _Corrupt as why:
        raise EmbedlensError(f"the cache entry for {source.spec} could not be built soundly: {why}") from None
