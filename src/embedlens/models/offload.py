"""Models larger than the memory they may use: accelerate's big-model offload under a ``max_memory`` budget.

With a budget (``max_memory``; ``--max-memory 2GB`` on the command line) a model whose weights do not fit it
is loaded with ``from_pretrained(device_map="auto", max_memory=..., offload_folder=...)``: accelerate puts
whole blocks (it never splits one) on the device until the budget is spent and offloads the rest, to the CPU
on a GPU run and to the disk on a CPU run. An offloaded module's weights are read when it runs and dropped
after, so the weights resident at once stay within the budget plus the largest offloaded module. Disk
offload of a safetensors checkpoint reads the checkpoint's own files (nothing is copied); other weights are
written once into a folder under the cache (``offload/``), removed when the model is dropped or the process
ends.

Refused in one line, before any weight is read: a GGUF model (transformers dequantizes it whole in memory
first, so no budget can bound it) and a budget smaller than one block (accelerate would then have to load
the whole model at every forward pass).
"""

from __future__ import annotations

import os
import shutil
import uuid
import weakref
from pathlib import Path
from typing import Any

from .. import hardware  # called through the module: tests stand in for it there
from ..cache import cache_root
from ..errors import EmbedlensError
from .runtime import dtype_name
from .specs import ModelSource
from .weights import _model_class, _quiet, model_key


def _fmt(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def check_offload(source: ModelSource, budget: int, per_block: int, dtype: Any) -> None:
    """Refuse a budget offload cannot keep (a GGUF model; less than one block), in one line."""
    if source.kind == "gguf":
        raise EmbedlensError(f"max_memory cannot bound {source.spec}: a GGUF model is dequantized whole in memory "
                             "before it runs; use a safetensors copy of it, or no max_memory")
    if per_block > budget:
        raise EmbedlensError(f"max_memory {_fmt(budget)} is less than one block of {source.spec} "
                             f"({_fmt(per_block)} in {dtype_name(dtype)}): give at least that")


def _budgets(device: str, budget: int) -> dict[Any, int]:
    """accelerate's ``max_memory``: the budget on the device; on a GPU the CPU's free memory after it."""
    if device == "cpu":
        return {"cpu": budget}

    key: Any = device
    if device.startswith("cuda"):
        import torch

        idx = torch.device(device).index
        key = idx if idx is not None else torch.cuda.current_device()
    return {key: budget, "cpu": int((hardware.available_memory() or 0) * 0.9)}


def offload_folder(source: ModelSource) -> Path:
    """A fresh folder for the weights accelerate must write (never shared between processes or loads)."""

    return cache_root() / "offload" / f"{model_key(source)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def load_offloaded(source: ModelSource, folder: Path, config: Any, *, dtype: Any, device: str, budget: int,
                   need: int, per_block: int) -> Any:
    """The whole model with what does not fit ``budget`` bytes on ``device`` offloaded (see the module docstring).

    ``model.embedlens_loaded`` records the budget and the ``device_map`` accelerate chose (module -> device,
    ``"disk"`` or ``"cpu"``).
    """
    check_offload(source, budget, per_block, dtype)
    spill = offload_folder(source)
    try:
        with _quiet():
            model = _model_class(config).from_pretrained(
                str(folder), dtype=dtype, local_files_only=True, device_map="auto",
                max_memory=_budgets(device, budget), offload_folder=str(spill))
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise
    if spill.is_dir() and not any(spill.iterdir()):
        spill.rmdir()  # safetensors are read where they lie: nothing was written
    elif spill.exists():
        weakref.finalize(model, shutil.rmtree, str(spill), True)  # with the model, or at exit
    device_map = {str(k): str(v) for k, v in (getattr(model, "hf_device_map", None) or {}).items()}
    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    model.embedlens_loaded = {"device": device, "dtype": dtype_name(dtype), "blocks": [0, n], "embeddings": True,
                              "head": True, "device_map": device_map, "max_memory": int(budget),
                              "materialised_bytes": int(need),
                              "offloaded": sorted(k or "the whole model" for k, v in device_map.items()
                                                  if v in ("disk", "cpu") and v != device)}
    return model
