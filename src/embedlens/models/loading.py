"""Loading a transformers model (whole, or only the blocks a job needs) and its tokenizer, offline.

Only commands that run the network (grid, context, serve's prompt views, the logit lens) load a model; the
embedding matrices are read straight from the checkpoint (:mod:`embedlens.spaces.extract`). Where and in
what precision the network runs is decided in :mod:`embedlens.models.runtime`; :func:`load_weights` can
materialise only some blocks (:mod:`embedlens.models.partial`). A GGUF file is dequantized once (about
12 s for SmolLM2) and kept as safetensors in the model's cache entry; later loads read that.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import EmbedlensError
from . import partial  # called through the module: tests stand in for it there
from .gguf_reader import fast_gguf_reader
from .offload import check_offload, load_offloaded
from .partial import check_fits, estimate_bytes
from .runtime import (
    choose_device,
    default_device,
    default_max_memory,
    dtype_name,
    parse_memory,
    resolve_dtype,
)
from .specs import ModelSource, resolve
from .weights import _model_class, _quiet, folder_config, weights_folder


def _offline() -> None:
    # Never reach a hub: every load below is from local files.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def load_tokenizer(source: ModelSource) -> Any:
    _offline()
    from transformers import AutoTokenizer

    try:
        with _quiet(), fast_gguf_reader():
            if source.kind == "gguf":
                return AutoTokenizer.from_pretrained(str(source.folder), gguf_file=source.path.name)
            return AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for unreadable files
        raise EmbedlensError(f"could not load the tokenizer of {source.spec}: {type(exc).__name__}: {exc}") from None


def load_config(source: ModelSource) -> Any:
    """The model's transformers config, from its files (for a GGUF, from the file's metadata)."""
    _offline()
    from transformers import AutoConfig

    try:
        with _quiet(), fast_gguf_reader():
            if source.kind == "gguf":
                config = AutoConfig.from_pretrained(str(source.folder), gguf_file=source.path.name)
                if hasattr(config, "quantization_config"):
                    del config.quantization_config
                return config
            return AutoConfig.from_pretrained(str(source.path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for unreadable files
        raise EmbedlensError(f"could not read the config of {source.spec}: {type(exc).__name__}: {exc}") from None


def load_weights(spec: str | ModelSource | None = None, *, dtype: Any = None, device: Any = None,
                 blocks: range | None = None, embeddings: bool = True, head: bool = True,
                 max_memory: Any = None) -> Any:
    """Load the model alone (no tokenizer), from local files only, in eval mode.

    Args:
        spec: a model spec or :class:`ModelSource`.
        dtype: a ``torch.dtype`` or a name (``auto``, ``float32``, ``bfloat16``, ``float16``); None = the
            process default (:func:`embedlens.models.runtime.set_defaults`, set by ``--dtype``), else float32;
            see :func:`embedlens.models.runtime.resolve_dtype`.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``; None = the process default, else cpu.
        blocks: None loads every block; ``range(a, b)`` materialises only blocks a..b-1 (the others stay
            on the meta device: no memory, no initialisation). With ``embeddings=False`` / ``head=False``
            the token embedding / LM head stay on meta too (a tied head keeps the shared matrix).
            Position embeddings, the final norm and buffers are always loaded.
        max_memory: bytes (or ``"2GB"``) the weights may take on ``device``; None = the process default
            (``--max-memory``), else no budget. A model over it runs with the blocks that do not fit
            offloaded (:mod:`embedlens.models.offload`); so do blocks ``0 .. b-1`` asked for over it.

    For a GGUF the dequantized safetensors copy is read (made on first use). Causal LMs come with their
    LM head; encoders as the bare model. ``model.embedlens_loaded`` records device, dtype and blocks.
    """
    _offline()
    source = spec if isinstance(spec, ModelSource) else resolve(spec)

    device = choose_device(device) if device is not None else default_device()
    dtype = resolve_dtype(dtype, device, model=source)
    budget = parse_memory(max_memory) if max_memory is not None else default_max_memory()
    in_part = blocks is not None or not embeddings or not head
    if budget is not None and source.kind == "gguf":  # refused before the GGUF is dequantized whole in memory
        need, per_block = estimate_bytes(load_config(source), dtype)
        if need > budget:
            check_offload(source, budget, per_block, dtype)
    try:
        if in_part:
            model = partial.load_partial(source, dtype=dtype, device=device, blocks=blocks, embeddings=embeddings, head=head,
                                 max_memory=budget)
        else:
            model = _load_full(source, dtype, device, max_memory=budget)
    except EmbedlensError:
        raise
    except Exception as exc:  # transformers raises many types for unreadable files
        raise EmbedlensError(f"could not load model {source.spec}: {type(exc).__name__}: {exc}") from None
    model.eval()
    if not hasattr(model, "embedlens_loaded"):
        n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        model.embedlens_loaded = {"device": device, "dtype": dtype_name(dtype), "blocks": [0, n],
                                  "embeddings": True, "head": True, "device_map": None}
    return model


def loaded_record(model: Any) -> dict[str, Any]:
    """Where a loaded model runs, for manifests: device, dtype, the blocks read, whether the head was, and under
    a ``max_memory`` budget the modules offloaded."""
    info = getattr(model, "embedlens_loaded", None) or {}
    return {k: info[k] for k in ("device", "dtype", "blocks", "head", "max_memory", "offloaded") if k in info}


def _load_full(source: ModelSource, dtype: Any, device: str, *, max_memory: int | None = None) -> Any:
    folder = weights_folder(source)
    with _quiet():
        config = folder_config(folder)
    need, per_block = estimate_bytes(config, dtype)
    if max_memory is not None and need > max_memory:
        return load_offloaded(source, folder, config, dtype=dtype, device=device, budget=max_memory, need=need,
                              per_block=per_block)
    n = int(getattr(config, "num_hidden_layers", 0) or 0)
    device_map = check_fits(source, need, device, per_block=per_block, fixed=need - n * per_block, dtype=dtype)
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if device_map is not None:
        kwargs["device_map"] = device_map  # larger than one GPU: accelerate spreads it (GPUs, then CPU)
    elif device != "cpu":
        kwargs["device_map"] = device
    with _quiet():
        model = _model_class(config).from_pretrained(str(folder), **kwargs)
    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    model.embedlens_loaded = {"device": device, "dtype": dtype_name(dtype), "blocks": [0, n], "embeddings": True,
                              "head": True, "device_map": device_map, "materialised_bytes": int(need)}
    return model


def load_model(spec: str | ModelSource | None = None, *, dtype: Any = None, device: Any = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a spec, from local files only, in eval mode."""
    source = spec if isinstance(spec, ModelSource) else resolve(spec)
    tokenizer = load_tokenizer(source)
    return load_weights(source, dtype=dtype, device=device), tokenizer
