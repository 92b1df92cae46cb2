"""Loading a full transformers model and tokenizer from a :class:`ModelSource`, offline.

Only commands that run the network (grid, context, the first extraction of an embedding matrix) load
a model. A GGUF file is dequantized once (about 12 s for SmolLM2) and kept as safetensors in the
model's cache entry; later loads read that (a fraction of a second).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from ..cache import atomic_dir, cache_root, content_hash
from ..errors import EmbedlensError
from .specs import ModelSource, resolve

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def _offline() -> None:
    # Never reach a hub: every load below is from local files.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def model_key(source: ModelSource) -> str:
    """Cache key of a model: its short name and the content hash of its files."""
    return f"{source.name}-{content_hash(list(source.files))[:16]}"


def model_entry_dir(source: ModelSource) -> Path:
    return cache_root() / "models" / model_key(source)


@contextlib.contextmanager
def _quiet():
    """Silence transformers' loading chatter (progress bars, 'Converting GGUF tensors')."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _is_causal(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith(_CAUSAL_SUFFIXES) for a in archs)


def load_tokenizer(source: ModelSource) -> Any:
    _offline()
    from transformers import AutoTokenizer

    try:
        with _quiet():
            if source.kind == "gguf":
                return AutoTokenizer.from_pretrained(str(source.folder), gguf_file=source.path.name)
            return AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    except Exception as exc:  # transformers raises many types for unreadable files
        raise EmbedlensError(f"could not load the tokenizer of {source.spec}: {type(exc).__name__}: {exc}") from None


def _from_gguf(source: ModelSource, dtype: Any) -> Any:
    """Dequantize a GGUF once and keep it as safetensors, so later loads take a fraction of a second."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    saved = model_entry_dir(source) / "dequantized"
    if (saved / "config.json").exists():
        try:
            with _quiet():
                return AutoModelForCausalLM.from_pretrained(str(saved), dtype=dtype, local_files_only=True)
        except Exception:
            pass  # a damaged copy is rebuilt below
    with _quiet():
        model = AutoModelForCausalLM.from_pretrained(str(source.folder), gguf_file=source.path.name, dtype=torch.float32)
        # save_pretrained refuses GGUF-loaded models; a plain copy of the state dict reloads identically.
        config = AutoConfig.from_pretrained(str(source.folder), gguf_file=source.path.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.tie_weights()
    with contextlib.suppress(OSError), atomic_dir(saved) as tmp:
        plain.save_pretrained(str(tmp))
    return plain.to(dtype) if dtype is not None else plain


def load_weights(spec: str | ModelSource | None = None, *, dtype: Any = None) -> Any:
    """Load the model alone (no tokenizer), from local files only, in eval mode.

    For a GGUF this skips rebuilding the tokenizer from the file (several seconds); callers that already
    have the cached tokenizer (a lens) use this. Causal LMs come with their LM head; encoders as the bare model.
    """
    _offline()
    source = spec if isinstance(spec, ModelSource) else resolve(spec)
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    dtype = dtype or torch.float32
    try:
        if source.kind == "gguf":
            model = _from_gguf(source, dtype)
        else:
            with _quiet():
                config = AutoConfig.from_pretrained(str(source.path), local_files_only=True)
                cls = AutoModelForCausalLM if _is_causal(config) else AutoModel
                model = cls.from_pretrained(str(source.path), dtype=dtype, local_files_only=True)
    except EmbedlensError:
        raise
    except Exception as exc:  # transformers raises many types for unreadable files
        raise EmbedlensError(f"could not load model {source.spec}: {type(exc).__name__}: {exc}") from None
    model.eval()
    return model


def load_model(spec: str | ModelSource | None = None, *, dtype: Any = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a spec, from local files only, in eval mode."""
    source = spec if isinstance(spec, ModelSource) else resolve(spec)
    tokenizer = load_tokenizer(source)
    return load_weights(source, dtype=dtype), tokenizer
