"""Read single tensors out of a checkpoint without loading the model.

A :class:`Checkpoint` indexes the weight files of a model folder by tensor name, reading only headers:
  * sharded safetensors through ``model.safetensors.index.json`` (every shard it names must exist);
  * a single ``model.safetensors`` (or any ``*.safetensors`` files);
  * ``pytorch_model.bin`` (and its index) only through ``torch.load(weights_only=True, mmap=True)``;
  * a GGUF file through the ``gguf`` reader (memory-mapped; quantized tensors are dequantized on request).
Tensors come back memory-mapped: :meth:`Checkpoint.torch` is a zero-copy view when the dtype already
matches, and :meth:`Checkpoint.rows_float32` converts row blocks to float32 so a caller can stream a
matrix into a file holding only one block in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..safetensors_mmap import read_header
from .gguf_reader import open_reader

_ST_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64, "I64": np.int64,
             "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_ST_TORCH = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
BLOCK_BYTES = 64 << 20  # rows converted at a time: peak extra memory of a streamed conversion


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives: file, storage dtype (safetensors code, ``torch`` or a GGUF type name), shape."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    offset: int = 0  # absolute byte offset of the data (safetensors)


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 stored as uint16 -> float32 (exact: bfloat16 is the upper half of a float32)."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


class Checkpoint:
    """The tensors of a model's weight files, by name, read lazily.

    Args:
        path: a model folder (safetensors or .bin files) or a ``.gguf`` file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.kind = "gguf" if self.path.is_file() and self.path.suffix.lower() == ".gguf" else None
        self._infos: dict[str, TensorInfo] = {}
        self._bins: dict[Path, dict[str, Any]] = {}
        self._gguf: Any = None
        if self.kind == "gguf":
            self._index_gguf()
        else:
            self._index_folder()

    # -- indexing ------------------------------------------------------------------------------------

    def _index_folder(self) -> None:
        folder = self.path
        st_index = folder / "model.safetensors.index.json"
        bin_index = folder / "pytorch_model.bin.index.json"
        if st_index.is_file():
            self.kind = "safetensors"
            for shard in self._shards(st_index):
                self._index_safetensors(shard)
        elif (folder / "model.safetensors").is_file():
            self.kind = "safetensors"
            self._index_safetensors(folder / "model.safetensors")
        elif sorted(folder.glob("*.safetensors")):
            self.kind = "safetensors"
            for f in sorted(folder.glob("*.safetensors")):
                self._index_safetensors(f)
        elif bin_index.is_file() or (folder / "pytorch_model.bin").is_file():
            self.kind = "bin"
            shards = self._shards(bin_index) if bin_index.is_file() else [folder / "pytorch_model.bin"]
            for shard in shards:
                self._index_bin(shard)
        else:
            raise EmbedlensError(f"{folder} has no weight files (model.safetensors, a safetensors index, "
                                 "or pytorch_model.bin)")

    def _shards(self, index: Path) -> list[Path]:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError):
            raise EmbedlensError(f"{index} is not a valid checkpoint index (no weight_map)") from None
        shards = sorted(set(weight_map.values()))
        for s in shards:
            if not (index.parent / s).is_file():
                raise EmbedlensError(f"shard {s} named in {index.name} is missing from {index.parent}: "
                                     "the download is incomplete; fetch the missing file")
        return [index.parent / s for s in shards]

    def _index_safetensors(self, file: Path) -> None:
        header, start = read_header(file)
        size = file.stat().st_size
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = info.get("dtype")
            if dtype not in _ST_NUMPY:
                raise EmbedlensError(f"{file.name}: tensor '{name}' has unsupported dtype {dtype}")
            begin, end = info["data_offsets"]
            shape = tuple(int(s) for s in info["shape"])
            expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_ST_NUMPY[dtype]).itemsize
            if end - begin != expected or start + end > size:
                raise EmbedlensError(f"{file.name}: tensor '{name}' is truncated or inconsistent with its header")
            self._infos[name] = TensorInfo(name, file, dtype, shape, start + begin)

    def _index_bin(self, file: Path) -> None:
        import torch

        try:
            tensors = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # pickle errors, zip errors, refused globals
            raise EmbedlensError(f"{file.name} could not be read safely ({type(exc).__name__}: {exc}); "
                                 "convert the model to safetensors") from None
        if isinstance(tensors, dict) and "state_dict" in tensors and isinstance(tensors["state_dict"], dict):
            tensors = tensors["state_dict"]
        self._bins[file] = tensors
        for name, t in tensors.items():
            if hasattr(t, "shape"):
                self._infos[name] = TensorInfo(name, file, "torch", tuple(t.shape))

    def _index_gguf(self) -> None:
        try:
            import gguf  # noqa: F401
        except ImportError:  # pragma: no cover - gguf is a dependency
            raise EmbedlensError("reading a .gguf needs the 'gguf' package: pip install gguf") from None
        try:
            self._gguf = open_reader(str(self.path))
        except Exception as exc:  # the reader raises ValueError/struct errors on damaged files
            raise EmbedlensError(f"{self.path.name} is not a readable GGUF file ({type(exc).__name__}: {exc})") from None
        for t in self._gguf.tensors:
            shape = tuple(int(s) for s in reversed(t.shape.tolist()))  # GGUF lists dims innermost first
            self._infos[t.name] = TensorInfo(t.name, self.path, t.tensor_type.name, shape)
        self._gguf_tensors = {t.name: t for t in self._gguf.tensors}

    # -- lookup ----------------------------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self._infos

    def names(self) -> list[str]:
        return list(self._infos)

    def info(self, name: str) -> TensorInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise EmbedlensError(f"tensor '{name}' is not in the checkpoint {self.path}") from None

    def find(self, candidates: tuple[str, ...] | list[str]) -> str | None:
        """The first of ``candidates`` that the checkpoint holds."""
        return next((c for c in candidates if c in self._infos), None)

    def storage_dtype(self, name: str) -> str:
        """The tensor's dtype as torch names it (``bfloat16``, ``float32``; ``float32`` for dequantized GGUF)."""
        info = self.info(name)
        if info.dtype == "torch":
            return str(self._bins[info.file][name].dtype).replace("torch.", "")
        return _ST_TORCH.get(info.dtype, "float32")

    # -- reading ---------------------------------------------------------------------------------------

    def _raw(self, name: str) -> np.ndarray:
        info = self.info(name)
        return np.memmap(info.file, dtype=_ST_NUMPY[info.dtype], mode="r", offset=info.offset, shape=info.shape)

    def torch(self, name: str) -> Any:
        """The tensor as stored (memory-mapped, read-only, zero-copy for safetensors and .bin)."""
        import torch

        info = self.info(name)
        if info.dtype == "torch":
            return self._bins[info.file][name]
        if self.kind == "gguf":
            return torch.from_numpy(self.dequantize(name))
        if int(np.prod(info.shape, dtype=np.int64)) == 0:
            return torch.zeros(info.shape, dtype=getattr(torch, _ST_TORCH[info.dtype]))
        import warnings

        with warnings.catch_warnings():  # torch warns that the array is read-only; the tensor is never written
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(self._raw(name))
        return t.view(torch.bfloat16) if info.dtype == "BF16" else t

    def dequantize(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of a GGUF tensor as float32 (quantized blocks dequantized; rows are whole blocks)."""
        from gguf.quants import dequantize

        t = self._gguf_tensors[name]
        shape = self.info(name).shape
        data = t.data.reshape(shape[0], -1) if len(shape) > 1 else t.data
        part = data[start:stop]
        out = dequantize(np.asarray(part), t.tensor_type)
        return np.asarray(out, dtype=np.float32).reshape((-1, *shape[1:]) if len(shape) > 1 else (-1,))

    def row_blocks(self, name: str, block_bytes: int | None = None) -> Iterator[tuple[int, int]]:
        block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
        shape = self.info(name).shape
        row_bytes = 4 * int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 4
        step = max(1, block_bytes // max(row_bytes, 1))
        for s in range(0, shape[0], step):
            yield s, min(s + step, shape[0])

    def rows_float32(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a tensor converted to float32 (a new array of that block only)."""
        info = self.info(name)
        if self.kind == "gguf":
            return self.dequantize(name, start, stop)
        if info.dtype == "torch":
            import torch

            return self._bins[info.file][name][start:stop].to(torch.float32).numpy().copy()
        raw = self._raw_rows(name, start, stop)  # maps only these rows: released when the block is done
        if info.dtype == "BF16":
            import warnings

            import torch

            with warnings.catch_warnings():  # read-only map, only read
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(raw.view(np.int16)).view(torch.bfloat16).float().numpy()
        return np.array(raw, dtype=np.float32)

    def _raw_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        info = self.info(name)
        shape = info.shape
        stop = min(stop, shape[0])
        start = min(start, stop)
        item = np.dtype(_ST_NUMPY[info.dtype]).itemsize
        row = int(np.prod(shape[1:], dtype=np.int64)) * item
        if stop == start:
            return np.zeros((0, *shape[1:]), dtype=_ST_NUMPY[info.dtype])
        return np.memmap(info.file, dtype=_ST_NUMPY[info.dtype], mode="r", offset=info.offset + start * row,
                         shape=(stop - start, *shape[1:]))

    def float32(self, name: str) -> np.ndarray:
        """The whole tensor as float32 (a copy, converted block by block)."""
        shape = self.info(name).shape
        out = np.empty(shape, dtype=np.float32)
        for s, e in self.row_blocks(name):
            out[s:e] = self.rows_float32(name, s, e)
        return out
