"""A light, self-contained WebGL page for very large maps (``map.html`` above ~100,000 points).

Plotly draws a 262,144-point 3-D scatter in about 23 s in a software-WebGL browser (2-D: about 11 s),
almost all of it in its own per-point set-up. This page ships the points as packed float32/uint8
arrays and draws them with one ``gl.POINTS`` call: orbit / pan / zoom, hover (token, id, frequency),
search with highlighted matches, colour bar and a PNG button, no network and no library.

Same Viridis scale, colour values, relative sizes and hover fields as the Plotly figure
(:mod:`embedlens.render.atlas`); the points are centred, scaled into [-1, 1] and sorted by colour
value for drawing, nothing else is computed. Token strings reach the page only through
:func:`~embedlens.render.offline.json_for_script` and ``textContent``.
"""

from __future__ import annotations

import base64
from importlib import resources
from typing import Any

import numpy as np
from plotly.colors import sequential as _sequential  # this module is imported only to write a page

from .offline import html_text, json_for_script

# Plotly's own "Viridis" stops, so both renderers colour a map identically.
VIRIDIS = tuple(_sequential.Viridis)
_PLAIN = (0x3B, 0x6E, 0xA8)

_CSS = """
html, body { margin: 0; height: 100%; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
#page { display: flex; flex-direction: column; height: 100%; }
header { padding: 8px 14px 4px; }
#title1 { font-size: 16px; font-weight: 600; }
#title2 { font-size: 12px; color: #555; margin-top: 2px; }
#tools { display: flex; gap: 14px; align-items: center; padding: 4px 14px; flex-wrap: wrap; }
#tools input[type=search] { width: 220px; font-family: monospace; }
#help, #found, #status { color: #666; }
#stage { position: relative; flex: 1; min-height: 300px; }
#canvas { position: absolute; left: 0; top: 0; width: calc(100% - 96px); height: 100%; cursor: crosshair; }
#stage.no-bar #canvas { width: 100%; }
#tip { position: absolute; display: none; pointer-events: none; background: rgba(255,255,255,.95);
       border: 1px solid #999; border-radius: 3px; padding: 4px 7px; box-shadow: 0 1px 4px rgba(0,0,0,.2); }
#tip-token { font-family: monospace; font-size: 14px; white-space: pre; }
#tip-id, #tip-freq { font-size: 12px; color: #444; }
.axis-name { position: absolute; font-size: 12px; color: #555; pointer-events: none; transform: translate(-50%, -50%); }
.axis-name.vertical { transform: translate(-50%, -50%) rotate(-90deg); }
#cbar { position: absolute; right: 14px; top: 40px; bottom: 60px; width: 70px; pointer-events: none; }
#cbar-title { font-size: 12px; margin-bottom: 6px; }
#cbar-body { position: absolute; top: 22px; bottom: 0; left: 0; right: 0; }
#cbar-ramp { position: absolute; left: 0; width: 14px; top: 0; bottom: 0; border: 1px solid #aaa; }
#cbar-ticks { position: absolute; left: 20px; top: 0; bottom: 0; right: 0; }
.tick { position: absolute; font-size: 11px; transform: translateY(50%); white-space: nowrap; }
#legend { position: absolute; right: 8px; top: 40px; width: 84px; pointer-events: none; font-size: 11px; }
.legend-row { display: flex; align-items: center; gap: 5px; margin: 2px 0; white-space: nowrap; }
.legend-swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
#cluster-labels { position: absolute; left: 0; top: 0; right: 0; bottom: 0; pointer-events: none; overflow: hidden; }
.cluster-label { position: absolute; white-space: pre; font-size: 12px; padding: 1px 4px; border-radius: 3px;
                 background: rgba(255,255,255,.8); border: 1px solid rgba(80,80,80,.45); color: #111; }
"""

_BODY = """
<noscript>This map needs JavaScript and WebGL; points.parquet beside this file holds the same data.</noscript>
<div id="page">
<header><div id="title1"></div><div id="title2"></div></header>
<div id="tools">
  <label>find token <input id="search" type="search" spellcheck="false" autocomplete="off"></label>
  <span id="found"></span>
  <label>point size <input id="point-size" type="range" min="0.5" max="4" step="0.25" value="1"></label>
  <button id="png" type="button">PNG of this view</button>
  <span id="help"></span><span id="status"></span>
</div>
<div id="stage">
  <canvas id="canvas"></canvas>
  <div id="cluster-labels"></div>
  <div id="legend"></div>
  <div id="cbar"><div id="cbar-title"></div><div id="cbar-body"><div id="cbar-ramp"></div><div id="cbar-ticks"></div></div></div>
  <div id="tip"><div id="tip-token"></div><div id="tip-id"></div><div id="tip-freq"></div></div>
</div>
</div>
"""


def viridis_rgb(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 RGB (n, 3) of ``values`` on Plotly's Viridis scale between ``low`` and ``high`` (clipped)."""
    stops = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in VIRIDIS], dtype=np.float32)
    t = np.clip((np.asarray(values, dtype=np.float32) - low) / max(high - low, 1e-12), 0.0, 1.0)
    pos = t * (len(stops) - 1)
    i = np.minimum(pos.astype(np.int64), len(stops) - 2)
    frac = (pos - i)[:, None]
    return np.rint(stops[i] * (1 - frac) + stops[i + 1] * frac).astype(np.uint8)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _js() -> str:
    return resources.files("embedlens.render").joinpath("static/pointcloud.js").read_text(encoding="utf-8")


def page_data(result: Any) -> dict[str, Any]:
    """Everything the page draws, in draw order (lowest colour value first, so frequent tokens lie on top in 2-D)."""
    from .atlas import axis_titles, color_values, marker_sizes

    xyz = np.asarray(result.coords, dtype=np.float32)
    n, dims = xyz.shape
    three_d = dims == 3
    legend = None
    if result.color == "script":  # categories: drawn in class order, one colour each, with a legend
        from ..writing_systems import SCRIPT_COLORS, SCRIPTS

        colors, bar = None, {}
        classes = np.asarray(result.script_classes(), dtype=np.int64)
        present = np.unique(classes)
        legend = [[SCRIPT_COLORS[c], SCRIPTS[c]] for c in present.tolist()]
    else:
        colors, bar = color_values(result)
    order = (np.argsort(colors, kind="stable") if colors is not None else
             np.argsort(classes, kind="stable") if legend is not None else np.arange(n))
    pts = np.zeros((n, 3), dtype=np.float32)
    pts[:, :dims] = xyz[order]
    shift, scale = np.zeros(3, dtype=np.float32), 1.0
    if n:  # centred and scaled into [-1, 1]; one scale for every axis keeps the map's proportions
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        shift = (lo + hi) / 2
        pts -= shift
        scale = max(float(np.abs(pts).max()), 1e-12)
        pts /= scale
        extent = [max(float(np.abs(pts[:, k]).max()), 1e-3) for k in range(3)]
    if not n or float(np.abs(pts).max(initial=0.0)) == 0.0:  # one point, or all in one place
        extent = [1.0, 1.0, 1.0]
    colorbar = None
    if legend is not None:
        palette = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in SCRIPT_COLORS], dtype=np.uint8)
        rgb = palette[classes[order]]
    elif colors is None:
        rgb = np.tile(np.asarray(_PLAIN, dtype=np.uint8), (n, 1))
    else:
        low, high = bar.get("range", (float(colors.min()), float(colors.max())) if n else (0.0, 1.0))
        high = max(high, low + 1e-9)
        rgb = viridis_rgb(colors[order], low, high)
        if "tickvals" in bar:
            ticks = [((v - low) / (high - low), t) for v, t in zip(bar["tickvals"], bar["ticktext"], strict=True)]
        else:
            ticks = [(k / 4, f"{low + k / 4 * (high - low):.3g}") for k in range(5)]
        colorbar = {"title": bar["title"]["text"],
                    "stops": [[k / (len(VIRIDIS) - 1), c] for k, c in enumerate(VIRIDIS)],
                    "ticks": [[round(float(p), 4), t] for p, t in ticks if -1e-9 <= p <= 1 + 1e-9]}
    sizes = np.broadcast_to(np.asarray(marker_sizes(result, three_d=three_d), dtype=np.float32), (n,))
    # Plotly's marker sizes are diameters in px for its own point sprites; these read the same at 1.5x.
    sizes = np.maximum(sizes[order] * 1.5, 2.0).astype(np.float32)
    line1, line2 = result.title_lines()
    clusters = []
    clustering = getattr(result, "clustering", None)
    if clustering is not None:
        for c in clustering.clusters:  # a loop over clusters: label, size and place in page coordinates
            at = np.zeros(3, dtype=np.float32)
            at[:dims] = np.asarray(c.center[:dims], dtype=np.float32)
            clusters.append({"id": c.id, "label": c.label, "size": c.size,
                             "at": [round(float(v), 5) for v in (at - shift) / scale]})
    return {
        "n": int(n), "dims": int(dims), "xyz": _b64(pts), "rgb": _b64(rgb), "size": _b64(sizes),
        "extent": extent, "axes": (axis_titles(result) + ["", "", ""])[:3],
        "labels": np.asarray(result.display, dtype=object)[order].tolist(),
        "ids": np.asarray(result.ids, dtype=np.int64)[order].tolist(),
        "freq": None if result.frequencies is None else np.asarray(result.frequencies, dtype=np.int64)[order].tolist(),
        "title": [line1, line2], "colorbar": colorbar, "legend": legend, "clusters": clusters,
    }


def pointcloud_html(result: Any) -> str:
    """The complete page for an :class:`~embedlens.atlas.AtlasResult` (any size; meant for very large ones)."""
    data = page_data(result)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html_text(data['title'][0])}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>{_CSS}</style></head><body>{_BODY}"
            f"<script type=\"application/json\" id=\"embedlens-data\">{json_for_script(data)}</script>"
            f"<script>{_js()}</script></body></html>\n")
