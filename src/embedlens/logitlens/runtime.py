"""Where the logit lens runs: device, dtype and the weights loaded for them (one place, so it can be switched).

The shared contract is :mod:`embedlens.models.runtime` (``choose_device``, ``choose_dtype``) and
``load_weights(source, dtype=..., device=...)``. While that module is absent, a small fallback with the same
names and behaviour is used, and weights are moved with ``.to(device)`` after loading.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import EmbedlensError

_DTYPES = {"float32": "float32", "fp32": "float32", "float": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


def _choose_device(spec: str = "auto") -> str:
    import torch

    s = str(spec or "auto").strip().lower()
    if s == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if s == "cpu":
        return "cpu"
    if s == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise EmbedlensError("device 'mps' is not available on this machine: use --device cpu")
        return "mps"
    if s == "cuda" or (s.startswith("cuda:") and s[5:].isdigit()):
        if not torch.cuda.is_available():
            raise EmbedlensError(f"device '{spec}' is not available (no CUDA GPU here): use --device cpu")
        if ":" in s and int(s[5:]) >= torch.cuda.device_count():
            raise EmbedlensError(f"device '{spec}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
        return s
    raise EmbedlensError(f"unknown device '{spec}': use auto, cpu, cuda, cuda:N or mps")


def _choose_dtype(spec: str = "auto", device: str = "cpu") -> Any:
    import torch

    s = str(spec or "auto").strip().lower()
    if s == "auto":
        return torch.float32
    if s not in _DTYPES:
        raise EmbedlensError(f"unknown dtype '{spec}': use auto, float32, bfloat16 or float16")
    return getattr(torch, _DTYPES[s])


def choose(device: str | None = None, dtype: str | Any = None) -> tuple[str, Any]:
    """``(device, torch dtype)`` from user specs, through the shared runtime module when it is there.

    ``None`` (the library default) means what ``lens.model`` is loaded as: the process defaults
    (``--device``/``--dtype``), else float32 on the CPU; ``"auto"`` lets the runtime pick (a GPU; on a CPU
    with fast bfloat16 units, bfloat16).
    """
    if device is None and dtype is None:
        import torch

        dev, name = _default_runtime()
        return dev, getattr(torch, name)
    if device is None:
        device = _default_runtime()[0]
    if dtype is None:
        import torch

        dtype = getattr(torch, _default_runtime()[1]) if device == _default_runtime()[0] else "auto"
    try:
        from ..models.runtime import choose_device, choose_dtype  # type: ignore[import-not-found]
    except ImportError:
        choose_device, choose_dtype = _choose_device, _choose_dtype
    dev = choose_device(device)
    if not isinstance(dtype, str):
        return dev, dtype
    return dev, choose_dtype(dtype, dev)


def dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def weights(lens: Any, device: str, dtype: Any) -> Any:
    """The lens's model on ``device`` in ``dtype``, loaded once per (device, dtype) and kept on the lens.

    When ``lens.model`` (shared with the other stages: context, grid, serve) is, or would be loaded, on that
    device in that dtype, it is that model.
    """
    loaded = lens.__dict__.get("model")
    if loaded is not None:
        info = getattr(loaded, "embedlens_loaded", None) or {}
        have = (str(info.get("device", "cpu")), str(info.get("dtype", dtype_name(next(loaded.parameters()).dtype))))
        if have == (device, dtype_name(dtype)):
            return loaded
    elif (device, dtype_name(dtype)) == _default_runtime():
        return lens.model
    store = lens.__dict__.setdefault("_weights_by_runtime", {})
    key = (device, dtype_name(dtype))
    if key not in store:
        from ..models.loading import load_weights

        if "device" in inspect.signature(load_weights).parameters:
            store[key] = load_weights(lens.source, dtype=dtype, device=device)
        else:  # before the shared runtime landed
            store[key] = load_weights(lens.source, dtype=dtype).to(device)
    return store[key]


def _default_runtime() -> tuple[str, str]:
    """What ``lens.model`` is loaded as when nothing is said: the process defaults, else float32 on the CPU."""
    try:
        from ..models.runtime import default_device, default_dtype  # type: ignore[import-not-found]
    except ImportError:
        return "cpu", "float32"
    dev = default_device()
    return dev, dtype_name(default_dtype(dev))
