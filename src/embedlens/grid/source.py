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

from ..display import detect_scheme, display_tokens
from ..errors import EmbedlensError
from ..lens import ModelLens, load
from ..models import loading  # called through the module: tests stand in for it there
from ..models.architectures import model_parts
from ..models.forward import BlockRunner, check_layer_index
from ..models.runtime import choose_device, default_device, dtype_name, resolve_dtype
from ..spaces.extract import special_ids


def _encoder_error(name: str) -> EmbedlensError:
    return EmbedlensError(f"{name} is an encoder-only model without an LM head: the grid map needs a causal "
                          "language model (e.g. smollm2-135m)")


class GridModel:
    """A causal LM with its vocabulary's raw and readable strings, embedding matrix and token resolver."""

    def __init__(self, model: Any = None, tokenizer: Any = None, *, dtype: str | Any = None,
                 device: str | None = None) -> None:
        self._device_spec, self._dtype_spec = device, dtype  # resolved on first use (torch is imported then)
        self.lens: ModelLens | None = None
        self._model = None
        self._tokenizer = tokenizer
        self._runner: Any = None
        self._runner_from: int | None = None
        if model is None or isinstance(model, str):
            model = load(model)
        if isinstance(model, ModelLens):
            self.lens = model
            if not model.meta.get("causal"):
                raise _encoder_error(model.name)
        elif hasattr(model, "config") and hasattr(model, "forward"):
            if tokenizer is None:
                raise EmbedlensError("a transformers model needs its tokenizer: EmbeddingGridVisualizer(model, tokenizer)")

            parts = model_parts(model)
            if not parts.arch.causal or parts.unembed is None:
                raise _encoder_error(type(model).__name__)
            self._model = model
        else:
            raise EmbedlensError(f"expected a model spec, a ModelLens or a transformers model, got {type(model).__name__}")

    @cached_property
    def device(self) -> str:
        return choose_device(self._device_spec) if self._device_spec is not None else default_device()

    @cached_property
    def _dtype(self) -> Any:
        """``dtype`` resolved for this model on this device (None: the process default, else float32)."""
        return resolve_dtype(self._dtype_spec, self.device,
                             model=self.lens.source if self.lens is not None else self._model)

    @property
    def dtype_name(self) -> str:
        return dtype_name(self._dtype)

    # -- facts known before any weight is read ---------------------------------------------------------

    @property
    def n_layers(self) -> int:
        if self.lens is not None:
            return int(self.lens.meta["n_layers"])
        return int(self._model.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        if self.lens is not None:
            return int(self.lens.meta["d_model"])
        return int(self._model.config.hidden_size)

    def check_layer(self, layer: Any) -> int:
        """``layer`` as an index in ``0 .. n_layers`` (negative from the end), checked from the cached metadata."""
        return check_layer_index(layer, self.n_layers)

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
                "n_vocab": len(self.raw_tokens), "d_model": int(cfg.hidden_size), "n_layers": self.n_layers}

    def loaded(self) -> dict[str, Any]:
        """Device, dtype and which blocks were materialised (for manifests)."""
        info = dict(getattr(self.runner.model, "embedlens_loaded", None) or {})
        info.setdefault("device", self.device)
        info.setdefault("dtype", self.dtype_name)
        return info

    # -- the network ---------------------------------------------------------------------------------

    def runner_for(self, first_block: int) -> Any:
        """A :class:`~embedlens.models.forward.BlockRunner` that can run from ``first_block`` on.

        For an embedlens model only blocks ``first_block .. n-1``, the final norm and the head are read from
        the checkpoint (reloaded from an earlier block when a later call needs one); a full model already
        loaded on the lens in the same dtype and device is reused.
        """
        if self._runner is not None and self._runner_from is not None and self._runner_from <= first_block:
            return self._runner
        if self.lens is None:
            self._runner, self._runner_from = BlockRunner(self._own_model()), 0
            return self._runner
        full = self.lens.__dict__.get("model")
        loaded = getattr(full, "embedlens_loaded", None) or {}
        if full is not None and loaded.get("dtype") == self.dtype_name and loaded.get("device") == self.device:
            self._runner, self._runner_from = BlockRunner(full), 0
        else:
            self._runner = BlockRunner(self._load_weights(self.lens.source, first_block))
            self._runner_from = first_block
        return self._runner

    @property
    def runner(self) -> Any:
        return self.runner_for(self._runner_from if self._runner_from is not None else 0)

    @property
    def model(self) -> Any:
        return self.runner.model

    def _own_model(self) -> Any:
        m = self._model
        if next(m.parameters()).dtype != self._dtype:
            m = copy.deepcopy(m).to(self._dtype)  # never change the caller's model in place
        m.eval()
        return m

    def _load_weights(self, source: Any, first_block: int = 0) -> Any:
        """Blocks ``first_block ..``, the final norm and the head, read from the checkpoint (the lens already
        has the vocabulary, so no tokenizer is rebuilt; GGUF weights come from the cached dequantized copy).
        The token embedding is the cached float32 matrix where that is exact and free (float32 on the CPU:
        a memory map, no copy), else converted when small, else left unloaded (the grid does not need it)."""
        import torch

        model = loading.load_weights(source, dtype=self._dtype, device=self.device,
                             blocks=range(first_block, self.n_layers), embeddings=False)
        parts = model_parts(model)
        if parts.embed.weight.is_meta and self.lens is not None:
            import warnings

            matrix = self.lens.space.vectors
            with warnings.catch_warnings():  # a read-only memory map: never written
                warnings.simplefilter("ignore", UserWarning)
                weight = torch.from_numpy(np.asarray(matrix))
            small = weight.numel() * torch.empty((), dtype=self._dtype).element_size() <= (512 << 20)
            if tuple(weight.shape) == tuple(parts.embed.weight.shape) and (
                    (self._dtype == torch.float32 and self.device == "cpu") or small):
                if self._dtype != torch.float32 or self.device != "cpu":
                    weight = weight.to(device=self.device, dtype=self._dtype)
                parts.embed.weight = torch.nn.Parameter(weight, requires_grad=False)
                model.embedlens_loaded["embeddings"] = "cache"
        return model

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

        mask = np.zeros(len(self.raw_tokens), dtype=bool)
        mask[special_ids(self.tokenizer, len(self.raw_tokens))] = True
        return mask

    @cached_property
    def display(self) -> list[str]:
        if self.lens is not None:
            return list(self.lens.space.display)

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
