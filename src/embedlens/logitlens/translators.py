"""Per-layer decoders of the residual stream: :class:`LogitLens` (decode as is) and :class:`TunedLens`.

Both turn the residual stream after ``l`` blocks into the vector the model's own decode (final norm, head,
soft-cap: :meth:`embedlens.models.forward.BlockRunner.decode`) reads. The logit lens passes it through; the
tuned lens (Belrose et al. 2023) first applies one affine translator per layer,

    h -> h + W_l h + b_l        (W_l: d x d, b_l: d, float32; ``h @ W_l.T`` in row-vector form)

for ``0 <= l < n_layers``; layer ``n_layers`` (the last block's output) is the model's own prediction and is
never translated. With ``W_l = 0, b_l = 0`` the tuned lens IS the logit lens. The layout matches the
``tuned-lens`` package: its translator ``l`` is ``h + Linear(h)`` on ``hidden_states[l]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError


class LogitLens:
    """The logit lens as a decoder: every layer is decoded as it is."""

    kind = "logit"

    def translate(self, states: Any, layers: Sequence[int]) -> Any:
        """``states`` unchanged: a tensor of shape (len(layers), ..., d_model)."""
        return states

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass
class TunedLens:
    """Affine translators of the residual stream, one per layer ``0 .. n_layers - 1``.

    Attributes:
        weight: float32 array of shape (n_layers, d_model, d_model): ``W_l`` (translator ``h + h @ W_l.T + b_l``).
        bias: float32 array of shape (n_layers, d_model).
        manifest: what the lens was trained on and how (model hash, corpus hash, tokens, steps, optimiser,
            seed, held-out KL per layer), or where it was read from.
    """

    weight: np.ndarray
    bias: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)
    kind = "tuned"

    def __post_init__(self) -> None:
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float32)
        self.bias = np.ascontiguousarray(self.bias, dtype=np.float32)
        n, d = self.bias.shape if self.bias.ndim == 2 else (-1, -1)
        if self.weight.shape != (n, d, d):
            raise EmbedlensError(f"tuned lens weights of shape {self.weight.shape} do not match biases of shape "
                                 f"{self.bias.shape}: expected (n_layers, d, d) and (n_layers, d)")
        self._torch: dict[str, Any] = {}

    @classmethod
    def zeros(cls, n_layers: int, d_model: int, manifest: dict[str, Any] | None = None) -> TunedLens:
        """The identity translators: decodes exactly as the logit lens."""
        return cls(np.zeros((n_layers, d_model, d_model), np.float32), np.zeros((n_layers, d_model), np.float32),
                   dict(manifest or {}))

    @property
    def n_layers(self) -> int:
        return int(self.bias.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.bias.shape[1])

    def describe(self) -> dict[str, Any]:
        keep = ("model", "corpus", "tokens", "steps", "optimiser", "seed", "source", "path")
        return {"kind": self.kind, "n_layers": self.n_layers, "d_model": self.d_model,
                **{k: self.manifest[k] for k in keep if k in self.manifest}}

    def check_model(self, n_layers: int, d_model: int, content_hash: str | None, name: str) -> None:
        """Refuse a lens trained for another model: shapes, then the recorded model content hash."""
        if (self.n_layers, self.d_model) != (n_layers, d_model):
            raise EmbedlensError(f"this tuned lens has {self.n_layers} layers of width {self.d_model}, but {name} has "
                                 f"{n_layers} layers of width {d_model}: it was trained for another model")
        recorded = (self.manifest.get("model") or {}).get("content_hash")
        if recorded and content_hash and recorded != content_hash:
            raise EmbedlensError(f"this tuned lens was trained for a model with content hash {recorded}, not {name} "
                                 f"({content_hash}): train one for this model")

    def tensors(self, device: Any = "cpu") -> tuple[Any, Any]:
        """``(weight, bias)`` as float32 torch tensors on ``device`` (made once per device)."""
        import torch

        key = str(device)
        if key not in self._torch:
            self._torch[key] = (torch.from_numpy(self.weight).to(device), torch.from_numpy(self.bias).to(device))
        return self._torch[key]

    def translate(self, states: Any, layers: Sequence[int]) -> Any:
        """Translated states, float32, of the same shape as ``states``: (len(layers), ..., d_model).

        Layer ``n_layers`` (the model's own output) passes through unchanged.
        """
        import torch

        layers = [int(v) for v in layers]
        if any(not 0 <= v <= self.n_layers for v in layers):
            raise EmbedlensError(f"layers {layers} are outside 0..{self.n_layers} of this tuned lens")
        x = states.float()
        inside = [i for i, v in enumerate(layers) if v < self.n_layers]
        if not inside:
            return x
        w, b = self.tensors(x.device)
        idx = torch.as_tensor([layers[i] for i in inside], device=x.device)
        shape = x.shape
        rows = x[inside].reshape(len(inside), -1, shape[-1])            # (k, n, d)
        moved = torch.baddbmm(b[idx][:, None, :], rows, w[idx].transpose(1, 2)) + rows
        out = x.clone()
        out[inside] = moved.reshape(len(inside), *shape[1:])
        return out
