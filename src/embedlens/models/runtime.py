"""Where and in what precision the network runs: ``--device`` and ``--dtype``, decided in one place.

``choose_device("auto")`` takes CUDA, then Apple's MPS, then the CPU. ``choose_dtype("auto", device)``
takes the checkpoint's own dtype on a GPU (bfloat16 when it is unknown and the GPU has it, else
float16), and on a CPU float32, or bfloat16 where :func:`embedlens.hardware.fast_bfloat16` measured
bfloat16 matrix products to be at least as fast as float32 ones. Every refusal is one line saying what
would work instead.

:func:`resolve_dtype` is the one answer every loader and command uses: it takes the process default
(``--dtype``) when no dtype is given and reads the checkpoint's dtype (:func:`checkpoint_dtype`: the
config's ``torch_dtype``, else the safetensors headers; a GGUF runs as what it is dequantized to, float32)
only when ``auto`` meets a GPU.
"""

from __future__ import annotations

import re
from typing import Any

from .. import hardware  # called through the module: tests stand in for it there
from ..errors import EmbedlensError
from .checkpoint import Checkpoint
from .specs import ModelSource, resolve

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_ALIASES = {"fp32": "float32", "f32": "float32", "bf16": "bfloat16", "fp16": "float16", "f16": "float16",
            "half": "float16", "float": "float32"}


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(spec: str = "auto") -> str:
    """The torch device string for ``spec``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Raises:
        EmbedlensError: an unknown spec, or a device this machine does not have.
    """
    import torch

    s = "auto" if spec is None else str(spec).strip().lower()
    if s == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available():
            return "mps"
        return "cpu"
    if s == "cpu":
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", s)
    if m:
        if not torch.cuda.is_available():
            raise EmbedlensError(f"device '{spec}' was asked for, but this machine has no CUDA GPU visible to torch "
                                 f"(torch {torch.__version__}): use `device=cpu` or auto")
        if m.group(1) is not None:
            n = torch.cuda.device_count()
            if int(m.group(1)) >= n:
                raise EmbedlensError(f"device '{spec}' does not exist: this machine has {n} CUDA GPU(s), cuda:0..cuda:{n - 1}")
            return f"cuda:{int(m.group(1))}"
        return "cuda"
    if s == "mps":
        if not _mps_available():
            raise EmbedlensError("device 'mps' was asked for, but Apple's Metal backend is not available here: "
                                 "use `device=cpu` or auto")
        return "mps"
    raise EmbedlensError(f"unknown device '{spec}': choose auto, cpu, cuda, cuda:N or mps")


def is_gpu(device: str) -> bool:
    return str(device).startswith(("cuda", "mps"))


def dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (for manifests)."""
    return str(dtype).replace("torch.", "")


def _parse_dtype(spec: Any) -> Any:
    import torch

    if isinstance(spec, torch.dtype):
        name = dtype_name(spec)
        if name not in DTYPES:
            raise EmbedlensError(f"dtype {name} is not supported: choose auto, float32, bfloat16 or float16")
        return spec
    s = "auto" if spec is None else str(spec).strip().lower().replace("torch.", "")
    s = _ALIASES.get(s, s)
    if s not in DTYPES:
        raise EmbedlensError(f"unknown dtype '{spec}': choose auto, float32, bfloat16 or float16")
    return None if s == "auto" else getattr(torch, s)


def supports(device: str, dtype: Any) -> bool:
    """Whether ``device`` can compute in ``dtype`` at all (CPUs can, slowly when they lack the units)."""
    import torch

    if dtype == torch.float32 or not is_gpu(device):
        return True
    if str(device).startswith("cuda"):
        if dtype == torch.bfloat16:
            return bool(torch.cuda.is_bf16_supported())
        return True
    try:  # mps: bfloat16 needs macOS 14; try it
        torch.ones(2, dtype=dtype, device=device) @ torch.ones(2, dtype=dtype, device=device)
        return True
    except (RuntimeError, TypeError):
        return False


def choose_dtype(spec: Any = "auto", device: str = "cpu", *, checkpoint_dtype: Any = None) -> Any:
    """The torch dtype the network runs in.

    Args:
        spec: ``auto``, ``float32``, ``bfloat16``, ``float16`` (or a ``torch.dtype``).
        device: the device from :func:`choose_device`.
        checkpoint_dtype: the dtype the weights are stored in, if known (``auto`` keeps it on a GPU).

    Raises:
        EmbedlensError: an unknown dtype, or one the device cannot compute in.
    """
    import torch

    dtype = _parse_dtype(spec)
    if dtype is None:
        if is_gpu(device):
            want = _parse_dtype(checkpoint_dtype) if checkpoint_dtype is not None else None
            for cand in (want, torch.bfloat16, torch.float16):
                if cand is not None and supports(device, cand):
                    return cand
            return torch.float32

        return torch.bfloat16 if hardware.fast_bfloat16() else torch.float32
    if not supports(device, dtype):
        raise EmbedlensError(f"{dtype_name(dtype)} was asked for on {device}, which cannot compute in it: "
                             "use `dtype=float16` or float32")
    return dtype


def free_memory(device: str) -> int | None:
    """Bytes that can still be allocated on ``device``: free GPU memory on CUDA, ``MemAvailable`` elsewhere."""
    if str(device).startswith("cuda"):
        import torch

        idx = torch.device(device).index
        free, _total = torch.cuda.mem_get_info(idx if idx is not None else torch.cuda.current_device())
        return int(free)

    return hardware.available_memory()


# -- the process's choice (set once by the CLI's --device/--dtype; read by every loader) ---------------

_DEFAULTS: dict[str, Any] = {"device": None, "dtype": None, "max_memory": None}
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "K": 2**10, "M": 2**20, "G": 2**30,
          "T": 2**40, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_memory(spec: Any) -> int | None:
    """Bytes of a memory budget: an int, or ``"2GB"``, ``"1.5GiB"``, ``"800MB"``, ``"4G"`` (None stays None).

    Raises:
        EmbedlensError: not a positive size.
    """
    if spec is None:
        return None
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        value = float(spec)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(spec))
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS:
            raise EmbedlensError(f"max_memory '{spec}' is not a size: give a number with a unit, such as 2GB or 512MiB")
        value = float(m.group(1)) * _UNITS[unit]
    if not value >= 1:
        raise EmbedlensError(f"max_memory must be a positive size, got '{spec}'")
    return int(value)


def set_defaults(device: Any = None, dtype: Any = None, max_memory: Any = None) -> None:
    """Make ``device``/``dtype``/``max_memory`` what :func:`~embedlens.models.loading.load_weights` uses when a
    caller passes none (the CLI sets them from ``--device``/``--dtype``/``--max-memory``, so the lens, serve,
    contextual and the logit lens all follow). The names are checked now; whether the device exists, when a
    model is first loaded (so cheap checks such as layer indexes come first and need no torch)."""
    if dtype is not None:
        s = str(dtype).strip().lower().replace("torch.", "")
        if _ALIASES.get(s, s) not in DTYPES and not hasattr(dtype, "is_floating_point"):
            raise EmbedlensError(f"unknown dtype '{dtype}': choose auto, float32, bfloat16 or float16")
    if device is not None and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(device).strip().lower()):
        raise EmbedlensError(f"unknown device '{device}': choose auto, cpu, cuda, cuda:N or mps")
    _DEFAULTS["device"] = device
    _DEFAULTS["dtype"] = dtype
    _DEFAULTS["max_memory"] = parse_memory(max_memory)


def default_max_memory() -> int | None:
    """The process's budget in bytes for a model's weights on its device (``--max-memory``), or None."""
    return _DEFAULTS["max_memory"]


def process_defaults() -> tuple[str | None, str | None]:
    """The process's ``(device, dtype)`` specs as names (None where unset), to hand to another process
    (a Ray worker resolves them on its own hardware, with the same rules)."""
    device, dtype = _DEFAULTS["device"], _DEFAULTS["dtype"]
    return (None if device is None else str(device),
            None if dtype is None else dtype_name(dtype).strip().lower())


def default_device() -> str:
    """The device loaders use when none is given: the process default (checked now), else cpu."""
    spec = _DEFAULTS["device"]
    return choose_device(spec) if spec is not None else "cpu"


def checkpoint_dtype(model: Any) -> str | None:
    """The float dtype a model's weights are stored in, or None where nothing says.

    Args:
        model: a :class:`~embedlens.models.specs.ModelSource` or spec (a folder: its config's ``dtype`` /
            ``torch_dtype``, else the dtype holding most of the safetensors' or ``.bin``'s floats; a GGUF:
            float32, what its quantized blocks are dequantized to), or a loaded torch module (its parameters').
    """
    if model is None:
        return None
    if hasattr(model, "parameters"):
        first = next(iter(model.parameters()), None)
        return dtype_name(first.dtype) if first is not None else None
    source = model if isinstance(model, ModelSource) else resolve(model)
    if source.kind == "gguf":
        return "float32"
    import json

    try:
        config = json.loads((source.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    value = config.get("dtype") or config.get("torch_dtype")
    if isinstance(value, str) and value in DTYPES[1:]:
        return value

    try:
        ckpt = Checkpoint(source.path)
    except EmbedlensError:
        return None
    floats: dict[str, int] = {}
    for name in ckpt.names():
        kind = ckpt.storage_dtype(name)
        if kind in DTYPES[1:]:
            size = 1
            for n in ckpt.info(name).shape:
                size *= int(n)
            floats[kind] = floats.get(kind, 0) + size
    return max(floats, key=floats.__getitem__) if floats else None


def resolve_dtype(spec: Any = None, device: str | None = None, *, model: Any = None) -> Any:
    """The torch dtype ``model`` runs in on ``device``: the one resolution every loader and command uses.

    Args:
        spec: ``auto``, ``float32``, ``bfloat16``, ``float16``, a ``torch.dtype``, or None for the process
            default (:func:`set_defaults`, set by ``--dtype``; float32 when none was set).
        device: a device from :func:`choose_device`; None = the process default device.
        model: what will run (a spec, :class:`~embedlens.models.specs.ModelSource` or loaded module): ``auto``
            on a GPU keeps its :func:`checkpoint_dtype` (read only then).

    Raises:
        EmbedlensError: an unknown dtype, or one the device cannot compute in.
    """
    import torch

    if spec is None:
        spec = _DEFAULTS["dtype"]
        if spec is None:
            return torch.float32
    device = device or default_device()
    stored = checkpoint_dtype(model) if _parse_dtype(spec) is None and is_gpu(device) else None
    return choose_dtype(spec, device, checkpoint_dtype=stored)


class using:  # noqa: N801 - used as a context manager: ``with using(device="cuda"):``
    """Set the process defaults for a block and restore them after."""

    def __init__(self, device: Any = None, dtype: Any = None, max_memory: Any = None) -> None:
        self.device, self.dtype, self.max_memory = device, dtype, max_memory

    def __enter__(self) -> None:
        self._saved = dict(_DEFAULTS)
        set_defaults(self.device, self.dtype, self.max_memory)

    def __exit__(self, *exc: Any) -> None:
        _DEFAULTS.update(self._saved)
