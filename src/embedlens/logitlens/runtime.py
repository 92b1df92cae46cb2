"""Where the logit lens runs: device, dtype and the weights loaded for them, on the shared
:mod:`embedlens.models.runtime` choices and :func:`~embedlens.models.loading.load_weights`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import loading  # called through its module: tests stand in for load_weights
from ..models.runtime import choose_device, default_device, dtype_name, resolve_dtype

if TYPE_CHECKING:
    from ..models.model_handle import ModelHandle


def choose(lens: ModelHandle, device: str | None = None, dtype: str | Any = None) -> tuple[str, Any]:
    """``(device, torch dtype)`` the logit lens of ``lens`` runs in, from user specs.

    ``None`` (the library default) means what ``lens.model`` is loaded as: the process defaults
    (``--device``/``--dtype``), else float32 on the CPU; ``"auto"`` lets the runtime pick (the checkpoint's
    dtype on a GPU; on a CPU with fast bfloat16 units, bfloat16): :func:`~embedlens.models.runtime.resolve_dtype`.
    """
    default_dev = default_device()
    dev = default_dev if device is None else choose_device(device)
    if dtype is None and dev != default_dev:
        dtype = "auto"
    return dev, resolve_dtype(dtype, dev, model=lens.source)


def weights(lens: ModelHandle, device: str, dtype: Any) -> Any:
    """The lens's model on ``device`` in ``dtype``, loaded once per (device, dtype) and kept on the lens.

    When ``lens.model`` (shared with the other stages: context, grid, serve) is, or would be loaded, on that
    device in that dtype, it is that model.
    """
    key = (device, dtype_name(dtype))
    loaded = lens.__dict__.get("model")
    if loaded is not None:
        info = getattr(loaded, "embedlens_loaded", None) or {}
        if (str(info.get("device", "cpu")), str(info.get("dtype"))) == key:
            return loaded
    elif key == (default_device(), dtype_name(resolve_dtype(None, default_device(), model=lens.source))):
        return lens.model
    store = lens.__dict__.setdefault("_weights_by_runtime", {})
    if key not in store:
        store[key] = loading.load_weights(lens.source, dtype=dtype, device=device)
    return store[key]
