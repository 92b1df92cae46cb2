"""Typed results of the logit lens, saved as JSON (no pickle).

:class:`LogitLensResult` is one prompt through one model: for every kept layer and position, the top-k
next tokens the residual stream decodes to, and the rank of the token that actually comes next.
:class:`RankCurve` is the summary of many prompts: the target's rank per layer, averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..render.logit_lens import logit_lens_figure, title
from ..render.notebook import result_html

SCHEMA_KEYS = ("tokens", "display", "layers", "top_ids", "top_probs", "target_rank")


def _floats(values: np.ndarray) -> Any:
    # float32 written with the 9 significant digits that round-trip it, not float64's 17
    arr = np.asarray(values, dtype=np.float32)
    return np.vectorize(lambda v: float(f"{v:.9g}"), otypes=[object])(arr).tolist() if arr.size else arr.tolist()


@dataclass
class LogitLensResult:
    """The logit lens of one text through one model.

    Attributes:
        model: the model's manifest (spec, name, content hash, shapes).
        text: the text as given (after truncation to ``settings["max_tokens"]``, if any).
        token_ids: array of shape (n_tokens,), the whole tokenization (special tokens included).
        tokens, display: raw and readable strings of ``token_ids``.
        layers: the decoded layers; layer l is the residual stream after l blocks (0 = input embeddings).
        positions: array of shape (n_positions,), which token positions were decoded.
        n_layers: the model's block count (layer ``n_layers`` decodes to the model's own logits).
        top_ids: array of shape (n_layers_kept, n_positions, k), int64, most likely first.
        top_probs: array of shape (n_layers_kept, n_positions, k), float32 softmax probabilities.
        top_display: object array of the same shape: readable strings of ``top_ids``.
        target_rank: array of shape (n_layers_kept, n_positions), int64: 1-based rank of the next token of
            the text at that layer; 0 at the last position (no next token).
        states: optional float32 array (n_layers_kept, n_positions, d_model) of the residual vectors
            decoded (kept in memory for the explorer; never saved).
    """

    model: dict[str, Any]
    text: str
    token_ids: np.ndarray
    tokens: list[str]
    display: list[str]
    layers: list[int]
    positions: np.ndarray
    n_layers: int
    top_ids: np.ndarray
    top_probs: np.ndarray
    top_display: np.ndarray
    target_rank: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    states: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.model.get("name") or self.model.get("spec"))

    @property
    def k(self) -> int:
        return int(self.top_ids.shape[2])

    @property
    def all_positions(self) -> bool:
        return len(self.positions) == len(self.token_ids)

    def depth(self) -> np.ndarray:
        """Each kept layer as a fraction of the model's depth (0 = embeddings, 1 = the last block)."""
        return np.asarray(self.layers, dtype=np.float64) / max(self.n_layers, 1)

    def log_rank(self) -> np.ndarray:
        """log10 of the target's rank, NaN where there is no next token."""
        r = self.target_rank.astype(np.float64)
        return np.where(r > 0, np.log10(np.maximum(r, 1.0)), np.nan)

    def schema(self) -> dict[str, Any]:
        """What ``embedlens logit-lens --json`` prints: tokens, display, layers, top_ids, top_probs, target_rank
        (``[layer][position]``, null at the last position); ``positions`` too when not every position was decoded."""
        ranks = self.target_rank.astype(object)
        ranks[self.target_rank <= 0] = None
        out = {"tokens": self.token_ids.tolist(), "display": list(self.display), "layers": list(self.layers),
               "top_ids": self.top_ids.tolist(), "top_probs": _floats(self.top_probs), "target_rank": ranks.tolist()}
        if not self.all_positions:
            out["positions"] = self.positions.tolist()
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {"model": self.model, "text": self.text, "n_layers": self.n_layers, **self.schema(),
               "positions": self.positions.tolist(), "raw_tokens": list(self.tokens),
               "top_display": self.top_display.tolist(), "settings": dict(self.settings), "notes": list(self.notes),
               "timings": dict(self.timings)}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogitLensResult:
        ranks = np.asarray([[0 if v is None else int(v) for v in row] for row in data["target_rank"]], dtype=np.int64)
        n_l, n_p = len(data["layers"]), len(data["positions"])
        return cls(
            model=dict(data["model"]), text=data["text"], token_ids=np.asarray(data["tokens"], dtype=np.int64),
            tokens=list(data["raw_tokens"]), display=list(data["display"]), layers=[int(v) for v in data["layers"]],
            positions=np.asarray(data["positions"], dtype=np.int64), n_layers=int(data["n_layers"]),
            top_ids=np.asarray(data["top_ids"], dtype=np.int64).reshape(n_l, n_p, -1),
            top_probs=np.asarray(data["top_probs"], dtype=np.float32).reshape(n_l, n_p, -1),
            top_display=np.asarray(data["top_display"], dtype=object).reshape(n_l, n_p, -1),
            target_rank=ranks.reshape(n_l, n_p), settings=dict(data.get("settings", {})),
            notes=list(data.get("notes", [])), timings=dict(data.get("timings", {})),
        )

    def figure(self, *, color: str = "prob") -> Any:
        """The interactive heatmap (see :func:`embedlens.render.logit_lens.logit_lens_figure`)."""

        return logit_lens_figure([self], color=color)

    def _repr_html_(self) -> str:
        """Shown inline by Jupyter: the title, the notes and the interactive heatmap, offline."""

        return result_html(self.figure(), title([self]), list(self.notes))


@dataclass
class RankCurve:
    """The target's rank per layer over many prompts (every position that has a next token).

    Attributes:
        model: the model's manifest.
        layers: the kept layers; ``n_layers``: the model's block count.
        mean_rank, median_rank: arrays of shape (n_layers_kept,), over all positions of all prompts.
        mean_log_rank: mean of log10(rank) (less dominated by a few hopeless positions).
        top1: share of positions whose next token is the top-1 decode at that layer.
        n_prompts, n_positions: how many prompts and positions were averaged.
        prompt_mean_rank: array of shape (n_prompts, n_layers_kept): each prompt's mean rank.
    """

    model: dict[str, Any]
    layers: list[int]
    n_layers: int
    mean_rank: np.ndarray
    median_rank: np.ndarray
    mean_log_rank: np.ndarray
    top1: np.ndarray
    n_prompts: int
    n_positions: int
    prompt_mean_rank: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.model.get("name") or self.model.get("spec"))

    def depth(self) -> np.ndarray:
        return np.asarray(self.layers, dtype=np.float64) / max(self.n_layers, 1)

    def rows(self) -> list[dict[str, Any]]:
        """One row per layer (what the CSV holds)."""
        d = self.depth()
        return [{"model": self.name, "layer": int(layer), "depth": round(float(d[i]), 6),
                 "mean_rank": float(self.mean_rank[i]), "median_rank": float(self.median_rank[i]),
                 "mean_log10_rank": float(self.mean_log_rank[i]), "top1": float(self.top1[i]),
                 "n_positions": self.n_positions} for i, layer in enumerate(self.layers)]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "layers": list(self.layers), "n_layers": self.n_layers,
                "mean_rank": _floats(self.mean_rank), "median_rank": _floats(self.median_rank),
                "mean_log10_rank": _floats(self.mean_log_rank), "top1": _floats(self.top1),
                "n_prompts": self.n_prompts, "n_positions": self.n_positions,
                "prompt_mean_rank": _floats(self.prompt_mean_rank), "settings": dict(self.settings),
                "notes": list(self.notes), "timings": dict(self.timings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankCurve:
        f = lambda k: np.asarray(data[k], dtype=np.float32)  # noqa: E731
        return cls(model=dict(data["model"]), layers=[int(v) for v in data["layers"]], n_layers=int(data["n_layers"]),
                   mean_rank=f("mean_rank"), median_rank=f("median_rank"), mean_log_rank=f("mean_log10_rank"),
                   top1=f("top1"), n_prompts=int(data["n_prompts"]), n_positions=int(data["n_positions"]),
                   prompt_mean_rank=f("prompt_mean_rank").reshape(int(data["n_prompts"]), -1),
                   settings=dict(data.get("settings", {})), notes=list(data.get("notes", [])),
                   timings=dict(data.get("timings", {})))
