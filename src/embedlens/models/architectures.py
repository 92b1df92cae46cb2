"""Where each supported architecture keeps its parts.

One table, keyed by the config's ``model_type``, says where the input embedding, the residual blocks,
the final norm and the unembedding live, relative to the *base* model (``model.base_model``), so it
works for ``GPT2Model`` and ``GPT2LMHeadModel`` alike. Few families, supported well; anything else is a
clear error naming the architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import EmbedlensError


@dataclass(frozen=True)
class Architecture:
    """Attribute paths of one model family, relative to the base model."""

    family: str
    embed: str  # token embedding module (nn.Embedding)
    blocks: str  # nn.ModuleList of residual blocks
    final_norm: str | None  # applied after the last block (None for post-norm encoders such as BERT)
    position: str | None  # learned absolute position embedding, if any (GPT-2 wpe, BERT)
    causal: bool
    scale_embeddings: bool = False  # Gemma multiplies token embeddings by sqrt(d_model) inside the model
    # Where the base model's tensors sit in a checkpoint: the prefixes its state dict may carry
    # (``transformer.`` for GPT2LMHeadModel, none for a bare GPT2Model, ...), tried in order.
    prefixes: tuple[str, ...] = ("model.", "")
    head_tensor: str | None = "lm_head.weight"  # the untied unembedding in HF checkpoints
    mid_norm: str | None = None  # the norm inside a block whose input is the residual after attention, before the MLP

    def embed_scale(self, config: Any) -> float:
        return math.sqrt(config.hidden_size) if self.scale_embeddings else 1.0

    def embed_tensors(self) -> tuple[str, ...]:
        """Checkpoint names the input embedding may have, in the order tried (GGUF's ``token_embd`` last)."""
        return tuple(f"{p}{self.embed}.weight" for p in self.prefixes) + (GGUF_EMBED,)

    def head_tensors(self) -> tuple[str, ...]:
        return ((self.head_tensor,) if self.head_tensor else ()) + (GGUF_OUTPUT,)


GGUF_EMBED = "token_embd.weight"
GGUF_OUTPUT = "output.weight"


_GPT2 = Architecture("gpt2", embed="wte", blocks="h", final_norm="ln_f", position="wpe", causal=True,
                     prefixes=("transformer.", ""), mid_norm="ln_2")
_LLAMA = Architecture("llama", embed="embed_tokens", blocks="layers", final_norm="norm", position=None, causal=True,
                      mid_norm="post_attention_layernorm")
_GEMMA3 = Architecture(
    "gemma3", embed="embed_tokens", blocks="layers", final_norm="norm", position=None, causal=True, scale_embeddings=True,
    prefixes=("model.", "model.language_model.", "language_model.model.", ""), mid_norm="pre_feedforward_layernorm",
)
_BERT = Architecture(
    "bert", embed="embeddings.word_embeddings", blocks="encoder.layer", final_norm=None,
    position="embeddings.position_embeddings", causal=False, prefixes=("bert.", ""), head_tensor=None,
)

ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": _GPT2,
    "llama": _LLAMA,
    "qwen2": _LLAMA,
    "mistral": _LLAMA,
    "gemma3_text": _GEMMA3,
    "bert": _BERT,
}


def architecture_for(model_type: str) -> Architecture:
    try:
        return ARCHITECTURES[model_type]
    except KeyError:
        supported = ", ".join(sorted(ARCHITECTURES))
        raise EmbedlensError(f"architecture '{model_type}' is not supported (supported: {supported})") from None


def get_path(root: Any, path: str) -> Any:
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class ModelParts:
    """The live modules of a loaded model, found through :data:`ARCHITECTURES`."""

    model: Any
    arch: Architecture
    base: Any
    embed: Any
    blocks: Any
    final_norm: Any | None
    unembed: Any | None  # the LM head (nn.Linear), None for encoders
    embed_scale: float

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return int(self.model.config.hidden_size)


def model_parts(model: Any) -> ModelParts:
    """Locate the parts of a loaded transformers model, or raise naming its architecture."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    arch = architecture_for(model_type)
    base = getattr(model, "base_model", model)
    try:
        embed = get_path(base, arch.embed)
        blocks = get_path(base, arch.blocks)
        final_norm = get_path(base, arch.final_norm) if arch.final_norm else None
    except AttributeError as exc:
        raise EmbedlensError(f"{type(model).__name__} does not have the layout expected for '{model_type}': {exc}") from None
    unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return ModelParts(model, arch, base, embed, blocks, final_norm, unembed, arch.embed_scale(model.config))


def execution_device(module: Any) -> Any:
    """The torch device ``module`` computes on: where its weight is, or, for a weight accelerate offloaded
    (left on the meta device until the module runs), the device its hook brings the weight to."""
    import torch

    weight = getattr(module, "weight", None)
    if weight is None:
        weight = next(module.parameters())
    if weight.device.type != "meta":
        return weight.device
    for m in (module, *module.modules()):
        dev = getattr(getattr(m, "_hf_hook", None), "execution_device", None)
        if dev is not None:
            return torch.device(dev if not isinstance(dev, int) else f"cuda:{dev}")
    return torch.device("cpu")
