"""Zero-copy reads of safetensors files, and writes that give the same bytes for the same tensors.

``safetensors`` copies tensors into memory when it loads them; a cached embedding matrix is read many
times by short commands, so we map the file instead: the 8-byte header length, the JSON header, and
each tensor as a read-only ``numpy.memmap`` view at its offset. The OS page cache then makes a warm
read free.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .errors import EmbedlensError

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
           "U8": np.uint8, "BOOL": np.bool_, "I8": np.int8, "I16": np.int16}


def read_header(path: Path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and the offset where its data starts."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise EmbedlensError(f"{path} is not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n <= 0 or 8 + n > size or n > 100_000_000:
            raise EmbedlensError(f"{path} is not a valid safetensors file (bad header length)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise EmbedlensError(f"{path} is not a valid safetensors file (unreadable header)") from None
    return header, 8 + n


def write_tensors(tensors: dict[str, np.ndarray], path: str | Path, *, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` with safetensors' own writer, then put the header's keys in sorted order.

    safetensors keeps ``metadata`` in a hash map, so two saves of the same tensors with two or more metadata
    keys can differ byte for byte; sorting the keys makes a seeded output's file reproducible. The sorted
    header has the same length as the one written (the same keys and values), so the data does not move.
    """
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata=metadata)
    with open(path, "r+b") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        written = fh.read(n)
        header = json.loads(written)
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(canonical) <= n and canonical != written[:len(canonical)]:
            fh.seek(8)
            fh.write(canonical + b" " * (n - len(canonical)))


def read_tensors(path: str | Path, *, mmap: bool = True) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays (memory-mapped, read-only, unless ``mmap=False``)."""
    path = Path(path)
    header, start = read_header(path)
    size = path.stat().st_size
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise EmbedlensError(f"{path}: tensor '{name}' has unsupported dtype {info.get('dtype')}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if end - begin != expected or start + end > size:
            raise EmbedlensError(f"{path}: tensor '{name}' is truncated or inconsistent with its header")
        if expected == 0:
            out[name] = np.zeros(shape, dtype=dtype)
        elif mmap:
            out[name] = np.memmap(path, dtype=dtype, mode="r", offset=start + begin, shape=shape)
        else:
            with open(path, "rb") as fh:
                fh.seek(start + begin)
                out[name] = np.frombuffer(fh.read(expected), dtype=dtype).reshape(shape).copy()
    return out
