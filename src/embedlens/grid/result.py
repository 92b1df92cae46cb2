"""``GridMap``: one token grid map (one model, one layer, one method), saved as JSON without pickle.

Cells are flat, in row-major order: cell ``k = i * grid_size + j`` has ``y = y_1d[i]`` and ``x = x_1d[j]``
(y increases with the row, x with the column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import json_default, write_text_atomic
from ..render.grid import _title, grid_figure
from ..render.notebook import result_html


@dataclass
class GridMap:
    """Each cell's top next tokens.

    Attributes:
        config: model, hash, every option, seed, versions, the method's details, timings.
        grid_size: cells per axis (n_cells = grid_size ** 2).
        layer: the block the grid vectors were fed to (0 .. n_layers; n_layers = direct decoding).
        method: the embedding method.
        x, y: arrays of shape (n_cells,), the grid coordinates.
        top5_ids: array of shape (n_cells, 5), int64, most likely first.
        top5_probs: array of shape (n_cells, 5), float32 softmax probabilities.
        top5_tokens, top5_display: object arrays of shape (n_cells, 5): raw and readable token strings.
    """

    config: dict[str, Any]
    grid_size: int
    layer: int
    method: str
    x: np.ndarray
    y: np.ndarray
    top5_ids: np.ndarray
    top5_probs: np.ndarray
    top5_tokens: np.ndarray = field(repr=False)
    top5_display: np.ndarray = field(repr=False)

    @property
    def token_ids(self) -> np.ndarray:
        return self.top5_ids[:, 0]

    @property
    def probs(self) -> np.ndarray:
        return self.top5_probs[:, 0]

    @property
    def tokens(self) -> list[str]:
        return list(self.top5_tokens[:, 0])

    @property
    def display(self) -> list[str]:
        return list(self.top5_display[:, 0])

    def as_grid(self, values: np.ndarray) -> np.ndarray:
        """A per-cell array reshaped to (grid_size, grid_size) (rows = y, columns = x)."""
        return np.asarray(values).reshape(self.grid_size, self.grid_size, *np.asarray(values).shape[1:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "token_ids": self.token_ids.tolist(),
            "tokens": self.tokens,
            "display": self.display,
            "probs": _floats(self.probs),
            "top5": {"ids": self.top5_ids.tolist(), "probs": [_floats(r) for r in self.top5_probs],
                     "tokens": self.top5_tokens.tolist(), "display": self.top5_display.tolist()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridMap:
        cfg = data["config"]
        top = data["top5"]
        return cls(
            config=cfg,
            grid_size=int(cfg["grid_size"]),
            layer=int(cfg["layer_idx"]),
            method=cfg["embedding_method"],
            x=np.asarray(data["x"], dtype=np.float64),
            y=np.asarray(data["y"], dtype=np.float64),
            top5_ids=np.asarray(top["ids"], dtype=np.int64),
            top5_probs=np.asarray(top["probs"], dtype=np.float32),
            top5_tokens=np.asarray(top["tokens"], dtype=object),
            top5_display=np.asarray(top["display"], dtype=object),
        )

    def to_json(self) -> str:
        """JSON text: ``config`` indented, each per-cell list on one line (readable, and compact for big grids)."""
        d = self.to_dict()
        parts = [f'  "config": {json.dumps(d["config"], indent=2, ensure_ascii=False, default=json_default)}'.replace(
            "\n", "\n  ")]
        for key in ("x", "y", "token_ids", "tokens", "display", "probs", "top5"):
            parts.append(f'  "{key}": {json.dumps(d[key], ensure_ascii=False, separators=(",", ":"))}')
        return "{\n" + ",\n".join(parts) + "\n}\n"

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> GridMap:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def figure(self, *, cell_labels: str | None = None) -> Any:
        """The interactive Plotly figure (see :func:`embedlens.render.grid.grid_figure`)."""
        return grid_figure(self, cell_labels=cell_labels)

    def _repr_html_(self) -> str:
        """Shown inline by Jupyter: title, how many distinct top tokens, and the interactive map, offline."""
        ids = np.asarray(self.token_ids)
        line = (f"{np.unique(ids).size} distinct top tokens over {ids.size:,} cells; "
                f"mean top probability {float(np.mean(self.probs)):.3f}")
        return result_html(self.figure(), _title(self), [line])


def _floats(values: np.ndarray) -> list[float]:
    # float32 values written with the 9 significant digits that round-trip a float32, not float64's 17.
    return [float(f"{v:.9g}") for v in np.asarray(values, dtype=np.float32).tolist()]


