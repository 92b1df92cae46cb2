"""Where a model's network weights are and which transformers class holds them.

A folder checkpoint is read in place; a GGUF file is dequantized once (about 12 s for SmolLM2) into the
model's cache entry as safetensors (:func:`weights_folder`), and later loads read that. Both the whole-model
loader (:mod:`embedlens.models.loading`) and the partial one (:mod:`embedlens.models.partial`) build on this.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

from ..cache import atomic_dir, build_lock, cache_root, content_hash
from ..errors import EmbedlensError
from .gguf_reader import fast_gguf_reader
from .specs import ModelSource

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")

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


def _dequantize_gguf(source: ModelSource, saved: Path) -> None:
    """Dequantize a GGUF once into ``saved`` (safetensors), so later loads take a fraction of a second.

    Only the weights are kept: the caller reads them back through the one loader, so the float32 model
    built here is dropped as soon as it is written.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with _quiet(), fast_gguf_reader():
        model = AutoModelForCausalLM.from_pretrained(str(source.folder), gguf_file=source.path.name, dtype=torch.float32)
        # save_pretrained refuses GGUF-loaded models; a plain copy of the state dict reloads identically.
        config = AutoConfig.from_pretrained(str(source.folder), gguf_file=source.path.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    copy_weights(plain, model.state_dict(), source.spec)
    del model
    try:
        with atomic_dir(saved) as tmp:
            plain.save_pretrained(str(tmp))
    except OSError as exc:
        raise EmbedlensError(f"could not write the dequantized copy of {source.spec} to {saved}: "
                             f"{exc.strerror or exc} (free some space or set EMBEDLENS_CACHE)") from None


def copy_weights(model: Any, state_dict: dict[str, Any], spec: str) -> None:
    """Load ``state_dict`` into ``model``, every name matched: a name the model does not have, or a weight
    it would keep at its random initialisation, is refused (tied weights such as a tied LM head excepted)."""
    result = model.load_state_dict(state_dict, strict=False)
    ties = getattr(model.config, "tie_word_embeddings", False)
    tied = set(getattr(model, "_tied_weights_keys", None) or ()) if ties else set()
    missing = [k for k in result.missing_keys if k not in tied]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        def names(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")

        parts = ([f"missing from the file: {names(missing)}"] if missing else []) + \
                ([f"not in the architecture: {names(unexpected)}"] if unexpected else [])
        raise EmbedlensError(f"the weights of {spec} do not match its architecture ({'; '.join(parts)}): "
                             "refusing to run with randomly initialised weights")
    model.tie_weights()


def _model_class(config: Any) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM

    return AutoModelForCausalLM if _is_causal(config) else AutoModel


def weights_folder(source: ModelSource) -> Path:
    """The folder whose weight files the network is read from: the model folder, or for a GGUF the
    dequantized safetensors copy kept in its cache entry (made once, ~12 s for SmolLM2)."""
    if source.kind != "gguf":
        return source.path
    saved = model_entry_dir(source) / "dequantized"

    def missing() -> bool:
        return not (saved / "config.json").exists() or not any(saved.glob("*.safetensors"))

    if missing():
        # Two processes loading the same GGUF at once would each spend the dequantization; the second waits.
        with build_lock(f"{saved.parent.name}-dequantized"):
            if missing():
                _dequantize_gguf(source, saved)
    return saved


def folder_config(folder: Path) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder), local_files_only=True)
