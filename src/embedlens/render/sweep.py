"""Small multiples: the same points on several maps side by side (a t-SNE perplexity sweep).

``sweep.html`` draws one :mod:`pointcloud.js <embedlens.render.pointcloud>` map per panel; hovering a point
shows its readable token and marks the same point on every other panel (the map component's overlay,
labelled with the token). Token strings are untrusted: they reach the page as JSON through
:func:`~embedlens.render.offline.json_for_script` and the page writes them with ``textContent`` only;
``sweep.png`` draws them with matplotlib's math parsing off. Computes nothing: it draws what it is given.
"""

from __future__ import annotations

import base64
import textwrap
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .offline import html_text, json_for_script

_CSS = """
html, body { margin: 0; height: 100%; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
#page { display: flex; flex-direction: column; height: 100%; }
header { padding: 8px 14px 4px; }
#title1 { font-size: 16px; font-weight: 600; }
#title2 { font-size: 12px; color: #555; margin-top: 2px; }
#legend { display: flex; flex-wrap: wrap; gap: 4px 12px; padding: 2px 14px; font-size: 11px; }
.legend-row { display: flex; align-items: center; gap: 4px; white-space: nowrap; }
.legend-swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
#panels { flex: 1; display: grid; gap: 8px; padding: 6px 10px 10px; min-height: 320px; }
.panel { display: flex; flex-direction: column; min-width: 0; border: 1px solid #ddd; border-radius: 4px; }
.panel-title { padding: 4px 8px; font-weight: 600; }
.panel-quality { padding: 0 8px 4px; font-size: 12px; color: #555; }
.panel-map { position: relative; flex: 1; min-height: 260px; }
"""

_BODY = """
<noscript>These maps need JavaScript and WebGL; points.parquet beside this file holds the same data.</noscript>
<div id="page">
<header><div id="title1"></div><div id="title2"></div></header>
<div id="legend"></div>
<div id="panels"></div>
</div>
"""


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


@dataclass
class SweepPage:
    """What the small multiples draw.

    Attributes:
        title, subtitle: plain text (not escaped).
        display: readable token of each point (n,); details: one more hover line per point (``id 12 · ...``).
        rgb: uint8 array of shape (n, 3), each point's colour (the same on every panel).
        legend: ``[[colour, class name], ...]`` of a categorical colouring, or None.
        legend_title: the legend's title.
        panels: ``(title, quality line)`` per panel, plain text.
        coords: one float32 array of shape (n, dims) per panel, the same points in the same order.
    """

    title: str
    subtitle: str
    display: list[str]
    details: list[str]
    rgb: np.ndarray
    legend: list[list[str]] | None
    legend_title: str
    panels: list[tuple[str, str]]
    coords: list[np.ndarray]

    def data(self) -> dict[str, Any]:
        n, dims = self.coords[0].shape
        return {"title": [self.title, self.subtitle], "n": int(n), "dims": int(dims), "display": list(self.display),
                "details": list(self.details), "rgb": _b64(np.asarray(self.rgb, dtype=np.uint8)),
                "legend": self.legend, "legend_title": self.legend_title,
                "size": 6.0 if n <= 2_000 else 4.0 if n <= 20_000 else 2.5,
                "panels": [{"title": t, "quality": q, "coords": _b64(np.asarray(c, dtype=np.float32))}
                           for (t, q), c in zip(self.panels, self.coords, strict=True)]}

    def html(self) -> str:
        """The complete, self-contained sweep.html page."""
        static = resources.files("embedlens.render").joinpath("static")
        js = "\n".join(static.joinpath(name).read_text(encoding="utf-8") for name in ("pointcloud.js", "sweep_page.js"))
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html_text(self.title)}</title>"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<style>{_CSS}</style></head><body>{_BODY}"
                f"<script type=\"application/json\" id=\"embedlens-data\">{json_for_script(self.data())}</script>"
                f"<script>{js}</script></body></html>\n")

    def png(self, path: str | Path, *, dpi: int = 110) -> Path:
        """A static picture: one panel per map in a row, each titled with its quality figures (matplotlib, Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        k = len(self.coords)
        fig = Figure(figsize=(5.0 * k, 5.8), dpi=dpi)
        FigureCanvasAgg(fig)
        colors = np.asarray(self.rgb, dtype=np.float32) / 255.0
        n = self.coords[0].shape[0]
        size = 9.0 if n <= 2_000 else 3.0 if n <= 20_000 else 0.8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing glyphs in the default font
            for i, (coords, (title, quality)) in enumerate(zip(self.coords, self.panels, strict=True)):
                ax = fig.add_subplot(1, k, i + 1)
                ax.scatter(coords[:, 0], coords[:, 1], c=colors, s=size, linewidths=0, alpha=0.8, rasterized=True)
                ax.set_title(f"{title}\n{quality}", fontsize=10, loc="left", parse_math=False)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_aspect("equal", adjustable="datalim")
            fig.suptitle("\n".join([self.title, *textwrap.wrap(self.subtitle, 60 * k)[:2]]), fontsize=10, x=0.01,
                         ha="left", parse_math=False)
            if self.legend:
                from matplotlib.lines import Line2D

                # labels are untrusted text: a `$` must not start mathtext in a legend
                handles = [Line2D([], [], linestyle="none", marker="o", color=c, label=name.replace("$", r"\$"))
                           for c, name in self.legend]
                entry_px = 30 + 8 * 0.62 * max(len(name) for _, name in self.legend) * dpi / 72
                ncol = max(1, min(len(handles), int(5.0 * k * dpi * 0.95 // entry_px)))
                rows = -(-len(handles) // ncol)
                fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, title=self.legend_title,
                           title_fontsize=8, frameon=False)
                fig.subplots_adjust(bottom=min(0.45, 0.07 + 0.04 * rows))
            fig.subplots_adjust(left=0.02, right=0.98, top=0.8, wspace=0.06)
            fig.savefig(path, format="png", dpi=dpi)
        fig.clear()
        return Path(path)
