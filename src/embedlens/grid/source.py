"""What the grid needs from a model, whichever way it was given.

:class:`GridModel` wraps either an embedlens model (a spec such as ``smollm2-135m``, or a
:class:`~embedlens.lens.ModelLens`: readable token strings come from its cached space) or a loaded
``transformers`` model plus its tokenizer (readable strings are computed once with
:func:`embedlens.display.display_tokens`). Encoder-only models are refused before any weights load.
"""

from __future__ import annotations

import copy
import json
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import EmbedlensError

DTYPES = ("float32", "bfloat16")


def torch_dtype(name: str | Any) -> Any:
    import torch

    if not isinstance(name, str):
        return name
    if name not in DTYPES:
        raise EmbedlensError(f"unknown dtype '{name}' (choose float32 or bfloat16)")
    return getattr(torch, name)


def _encoder_error(name: str) -> EmbedlensError:
    return EmbedlensError(f"{name} is an encoder-only model without an LM head: the grid map needs a causal "
                          "language model (e.g. smollm2-135m)")


class GridModel:
    """A causal LM with its vocabulary's raw and readable strings, embedding matrix and token resolver."""

    def __init__(self, model: Any = None, tokenizer: Any = None, *, dtype: str | Any = "float32") -> None:
        from ..lens import ModelLens

        self.dtype_name = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
        self._dtype = torch_dtype(dtype)
        self.lens: ModelLens | None = None
        self._model = None
        self._tokenizer = tokenizer
        if model is None or isinstance(model, str):
            from ..lens import load

            model = load(model)
        if isinstance(model, ModelLens):
            self.lens = model
            if not model.meta.get("causal"):
                raise _encoder_error(model.name)
        elif hasattr(model, "config") and hasattr(model, "forward"):
            if tokenizer is None:
                raise EmbedlensError("a transformers model needs its tokenizer: EmbeddingGridVisualizer(model, tokenizer)")
            self._model = model
        else:
            raise EmbedlensError(f"expected a model spec, a ModelLens or a transformers model, got {type(model).__name__}")

    # -- identity ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.lens is not None:
            return self.lens.name
        cfg = self._model.config
        return str(getattr(cfg, "_name_or_path", "") or getattr(cfg, "model_type", type(self._model).__name__))

    @property
    def content_hash(self) -> str | None:
        return self.lens.meta.get("content_hash") if self.lens is not None else None

    def describe(self) -> dict[str, Any]:
        if self.lens is not None:
            return {"model": self.lens.source.spec, "name": self.name, "content_hash": self.content_hash,
                    **{k: self.lens.meta.get(k) for k in ("model_type", "n_vocab", "d_model", "n_layers")}}
        cfg = self._model.config
        return {"model": self.name, "name": self.name, "content_hash": None, "model_type": cfg.model_type,
                "n_vocab": len(self.raw_tokens), "d_model": int(cfg.hidden_size), "n_layers": self.runner.n_layers}

    # -- the network ---------------------------------------------------------------------------------

    @cached_property
    def model(self) -> Any:
        import torch

        if self.lens is not None:
            if self._dtype == torch.float32:
                return self.lens.model  # loaded once and kept on the lens for the next stage (contextual, serve)
            return self._load_weights(self.lens.source)
        m = self._model
        if next(m.parameters()).dtype != self._dtype:
            m = copy.deepcopy(m).to(self._dtype)  # never change the caller's model in place
        m.eval()
        return m

    def _load_weights(self, source: Any) -> Any:
        """The model alone: the lens already has the vocabulary, so the tokenizer is not rebuilt (for a GGUF
        that would parse the whole file again, ~7 s for SmolLM2); GGUF weights come from the cached
        dequantized copy."""
        from ..models.loading import load_weights

        return load_weights(source, dtype=self._dtype)

    @cached_property
    def runner(self) -> Any:
        from ..models.forward import BlockRunner

        return BlockRunner(self.model)

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None and self.lens is not None:
            self._tokenizer = self.lens.tokenizer
        return self._tokenizer

    # -- vocabulary ----------------------------------------------------------------------------------

    @cached_property
    def raw_tokens(self) -> list[str]:
        if self.lens is not None:
            return list(self.lens.space.labels)
        tok = self.tokenizer
        raw = tok.convert_ids_to_tokens(list(range(len(tok))))
        return [r if isinstance(r, str) else f"<unused:{i}>" for i, r in enumerate(raw)]

    @cached_property
    def special(self) -> np.ndarray:
        if self.lens is not None:
            return np.asarray(self.lens.space.special, dtype=bool)
        from ..spaces.extract import special_ids

        mask = np.zeros(len(self.raw_tokens), dtype=bool)
        mask[special_ids(self.tokenizer, len(self.raw_tokens))] = True
        return mask

    @cached_property
    def display(self) -> list[str]:
        if self.lens is not None:
            return list(self.lens.space.display)
        from ..display import detect_scheme, display_tokens

        scheme = "plain"
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            scheme = detect_scheme(json.loads(backend.to_str()))
        return display_tokens(self.raw_tokens, scheme, np.flatnonzero(self.special).tolist())

    def strings_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw and readable strings of an int array of ids (any shape): object arrays of the same shape."""
        n = len(self.raw_tokens)
        raw = np.asarray(self.raw_tokens + ["<unused>"], dtype=object)
        disp = np.asarray(self.display + ["⟪unused⟫"], dtype=object)
        idx = np.where((ids >= 0) & (ids < n), ids, n)
        return raw[idx], disp[idx]

    def embedding_matrix(self) -> np.ndarray:
        """Token embeddings (n_vocab, d_model), float32, before any scaling the model applies."""
        if self.lens is not None:
            return self.lens.space.vectors
        w = self.runner.parts.embed.weight.detach().float().numpy()
        return w[: len(self.raw_tokens)]

    def resolve_token(self, query: str) -> int:
        """One token id for a word, ``id:N`` or ``tok:RAW``; anything that is not exactly one token is an error."""
        if not query:
            raise EmbedlensError("a plane token is empty")
        if self.lens is not None:
            rq = self.lens.resolve(query)
            ids = rq.ids
        elif query.startswith("id:"):
            try:
                ids = [int(query[3:])]
            except ValueError:
                raise EmbedlensError(f"'{query}' is not a valid id query (expected id:<integer>)") from None
            if not 0 <= ids[0] < len(self.raw_tokens):
                raise EmbedlensError(f"id {ids[0]} is not in the vocabulary (ids 0..{len(self.raw_tokens) - 1})")
        elif query.startswith("tok:"):
            try:
                ids = [self.raw_tokens.index(query[4:])]
            except ValueError:
                raise EmbedlensError(f"token '{query[4:]}' is not in the vocabulary (give the raw form)") from None
        else:
            ids = list(self.tokenizer.encode(query, add_special_tokens=False))
        if len(ids) != 1:
            shown = ", ".join(self.display[i] if 0 <= i < len(self.display) else str(i) for i in ids)
            raise EmbedlensError(
                f"plane token '{query}' is {len(ids)} tokens ({shown}), not exactly one: pick a single-token word, "
                "or give id:N or tok:RAW"
            )
        return int(ids[0])
