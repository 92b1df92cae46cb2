"""Build a model from its config and materialise only the parts a job needs.

The modules are created on the meta device (no memory, no initialisation); then the tensors of the
chosen blocks, the final norm, position embeddings and, when asked, the token embedding and the LM head
are read from the memory-mapped checkpoint files and put in place. A tensor already in the wanted dtype
on the CPU is used where it lies in the file (zero copy); others are converted one tensor at a time.
Buffers (rotary frequencies, Gemma's embedding scale) are computed by the modules' own constructors.

The memory guard below counts what will be materialised against the memory that is free on the device
(``MemAvailable`` on a CPU, ``torch.cuda.mem_get_info`` on a GPU) before any weight is read.
"""

from __future__ import annotations

import threading
from typing import Any

from .. import hardware  # called through the module: tests stand in for it there
from ..errors import EmbedlensError
from . import runtime  # called through the module: tests stand in for it there
from .architectures import get_path, model_parts
from .checkpoint import Checkpoint
from .offload import check_offload, load_offloaded
from .runtime import dtype_name
from .specs import ModelSource
from .weights import _model_class, _quiet, folder_config, weights_folder

_HEADROOM = 0.9


def _fmt(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def meta_model(config: Any, dtype: Any) -> Any:
    """The model of ``config`` with every parameter on the meta device (buffers real, on the CPU).

    Weight initialisation is skipped: on meta tensors it computes nothing, yet transformers runs each
    ``normal_`` through torch's Python reference kernels (0.06 s of CPU for SmolLM2's 30 blocks). The buffers
    (rotary frequencies, Gemma's embedding scale) keep the values their modules' constructors computed (the
    initialisation would compute the same again), and weights are tied as ``post_init`` ties them.
    """
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False), _quiet():
        with _INIT_LOCK, _no_init_weights():
            model = _model_class(config).from_config(config, dtype=dtype)
        model.tie_weights()  # what post_init does after the initialisation (in the same meta context)
    return model


# transformers' switch replaces torch.nn.init's functions for the whole process and restores them on exit: two
# threads overlapping here could restore in the wrong order and leave initialisation off for everyone.
_INIT_LOCK = threading.Lock()


def _no_init_weights() -> Any:
    """transformers' own switch that turns weight initialisation off (5.x and 4.x keep it in different modules)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def _nbytes(params: dict[str, Any], dtype: Any) -> int:
    import torch

    elem = torch.empty((), dtype=dtype).element_size()
    seen: set[int] = set()
    total = 0
    for p in params.values():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * elem
    return total


def estimate_bytes(config: Any, dtype: Any) -> tuple[int, int]:
    """Bytes of every parameter of the model in ``dtype`` (tied matrices counted once), and of one block."""
    model = meta_model(config, dtype)
    blocks = model_parts(model).blocks
    per_block = _nbytes(dict(blocks[0].named_parameters()), dtype) if len(blocks) else 0
    return _nbytes(dict(model.named_parameters()), dtype), per_block


def check_fits(source: ModelSource, need: int, device: str, *, per_block: int | None = None,
               fixed: int = 0, dtype: Any = None) -> str | None:
    """Refuse a load that cannot fit the free memory; on a GPU too small for it return ``"auto"``
    (accelerate spreads the model over the GPUs and the CPU), else None."""
    free = runtime.free_memory(device)
    if free is None or need <= free * _HEADROOM:
        return None
    if str(device).startswith("cuda"):
        import torch

        total = sum(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())) + (hardware.available_memory() or 0)
        if need <= total * _HEADROOM:
            return "auto"
        free = total
    advice = []
    if per_block:
        fit = int((free * _HEADROOM - fixed) // per_block)
        advice.append(f"about {max(fit, 0)} blocks would fit (a grid from a later layer or a context at an earlier one)")
    if dtype is not None and dtype_name(dtype) == "float32":
        advice.append(f"dtype bfloat16 halves it to {_fmt(need / 2)}")
    advice.append("or use another device")
    raise EmbedlensError(f"{source.spec} needs about {_fmt(need)} on {device}"
                         + (f" in {dtype_name(dtype)}" if dtype is not None else "")
                         + f" but only {_fmt(free)} is free: " + "; ".join(advice))


def _check_blocks(blocks: range | None, n: int) -> range:
    if blocks is None:
        return range(0, n)
    if not isinstance(blocks, range) or blocks.step != 1 or not 0 <= blocks.start <= blocks.stop <= n:
        raise EmbedlensError(f"blocks must be a range within 0..{n} (the model has {n} blocks), got {blocks!r}")
    return blocks


def _checkpoint_key(name: str, ckpt: Any, prefix: str) -> str | None:
    candidates = [name]
    if prefix and name.startswith(prefix + "."):
        candidates.append(name[len(prefix) + 1 :])
    elif prefix:
        candidates.append(f"{prefix}.{name}")
    return ckpt.find(candidates)


def _set_tensor(model: Any, name: str, value: Any) -> None:
    import torch

    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    module._parameters[leaf] = torch.nn.Parameter(value, requires_grad=False)


def load_partial(source: ModelSource, *, dtype: Any, device: str, blocks: range | None = None,
                 embeddings: bool = True, head: bool = True, max_memory: int | None = None) -> Any:
    """The model with only ``blocks`` (and the embedding / head when asked) materialised on ``device``.

    When they need more than ``max_memory`` bytes, blocks ``0 .. b-1`` (a job that runs the model from its
    input, as the contextual states do) come from the whole model loaded with offload
    (:mod:`embedlens.models.offload`; the blocks past them are never run); later blocks alone are refused.
    """
    folder = weights_folder(source)
    config = folder_config(folder)
    model = meta_model(config, dtype)
    parts = model_parts(model)
    n = parts.n_layers
    blocks = _check_blocks(blocks, n)
    tied = parts.unembed is not None and (parts.unembed.weight is parts.embed.weight
                                          or bool(getattr(config, "tie_word_embeddings", False)))
    if tied and parts.unembed.weight is not parts.embed.weight:
        parts.unembed.weight = parts.embed.weight  # one matrix, read once
    wanted: list[Any] = [parts.blocks[i] for i in blocks]
    if parts.final_norm is not None:
        wanted.append(parts.final_norm)
    if parts.arch.position:
        wanted.append(get_path(parts.base, parts.arch.position))
    if embeddings or (tied and head):
        wanted.append(parts.embed)
    if head and parts.unembed is not None:
        wanted.append(parts.unembed)
    if parts.arch.family == "bert":  # token-type embeddings and the embedding LayerNorm run with the embeddings
        wanted.append(parts.base.embeddings)
    ids = {id(m) for m in wanted}
    names = {}
    for mod_name, module in model.named_modules():
        if id(module) in ids:
            for p_name, p in module.named_parameters(prefix=mod_name, remove_duplicate=False):
                names[p_name] = p
    need = _nbytes(names, dtype)
    per_block = _nbytes(dict(parts.blocks[0].named_parameters()), dtype) if n else None
    fixed = need - len(blocks) * per_block if per_block else need
    if max_memory is not None and need > max_memory:
        return _offloaded_prefix(source, folder, config, dtype=dtype, device=device, blocks=blocks, budget=max_memory,
                                 per_block=per_block or 0)
    device_map = check_fits(source, need, device, per_block=per_block, fixed=fixed, dtype=dtype)
    if device_map is not None:
        raise EmbedlensError(f"the blocks asked for ({_fmt(need)}) do not fit on {device}: use fewer blocks or `device=cpu`")
    ckpt = Checkpoint(folder)
    prefix = getattr(model, "base_model_prefix", "") or ""
    import torch

    done: dict[int, Any] = {}
    for name, p in names.items():
        if id(p) in done:
            _set_tensor(model, name, done[id(p)])
            continue
        key = _checkpoint_key(name, ckpt, prefix)
        if key is None and tied and p is parts.unembed.weight:
            key = _checkpoint_key(_embed_name(model, parts), ckpt, prefix)
        if key is None:
            raise EmbedlensError(f"the checkpoint of {source.spec} has no tensor '{name}' (nor under another prefix): "
                                 "it does not match its config.json")
        shape = tuple(ckpt.info(key).shape)
        if shape != tuple(p.shape):
            raise EmbedlensError(f"tensor '{key}' of {source.spec} has shape {shape}, its config says {tuple(p.shape)}")
        t = _read(ckpt, key, dtype, device)
        value = torch.nn.Parameter(t, requires_grad=False)
        done[id(p)] = value
        _set_tensor(model, name, value)
    for module in model.modules():
        for b_name, buf in list(module._buffers.items()):
            if buf is not None and buf.device.type != "meta" and str(buf.device) != device:
                module._buffers[b_name] = buf.to(device)
    model.embedlens_loaded = {"device": device, "dtype": dtype_name(dtype), "blocks": [blocks.start, blocks.stop],
                              "embeddings": bool(embeddings or (tied and head)), "head": bool(head), "device_map": None,
                              "materialised_bytes": int(need)}
    return model


def _offloaded_prefix(source: ModelSource, folder: Any, config: Any, *, dtype: Any, device: str, blocks: range,
                      budget: int, per_block: int) -> Any:
    check_offload(source, budget, per_block, dtype)
    if blocks.start != 0:
        raise EmbedlensError(f"blocks {blocks.start}..{blocks.stop - 1} of {source.spec} need more than max_memory "
                             f"{_fmt(budget)}: offload runs a model from its input (a logit lens, contextual states), "
                             "not from a middle block; raise max_memory or use another device")
    need, _ = estimate_bytes(config, dtype)
    model = load_offloaded(source, folder, config, dtype=dtype, device=device, budget=budget, need=need,
                           per_block=per_block)
    model.embedlens_loaded["blocks"] = [0, blocks.stop]  # the job stops after them: later blocks never run
    return model


def _read(ckpt: Any, key: str, dtype: Any, device: str) -> Any:
    """A checkpoint tensor in ``dtype`` on ``device``: the memory-mapped tensor itself when it already is
    (zero copy); a float32 copy filled block by block from the mapped file (so the stored bfloat16 pages do not
    all stay resident beside it); else one conversion."""
    import torch

    t = ckpt.torch(key)
    if t.dtype == dtype and device == "cpu":
        return t
    if dtype == torch.float32 and device == "cpu" and t.ndim >= 1 and ckpt.kind == "safetensors":
        out = torch.empty(tuple(t.shape), dtype=torch.float32)
        del t
        for s, e in ckpt.row_blocks(key):
            out[s:e] = torch.from_numpy(ckpt.rows_float32(key, s, e))
        return out
    return t.to(device=device, dtype=dtype)


def _embed_name(model: Any, parts: Any) -> str:
    for name, p in model.named_parameters(remove_duplicate=False):
        if p is parts.embed.weight:
            return name
    raise EmbedlensError("the model has no token embedding parameter")  # pragma: no cover
