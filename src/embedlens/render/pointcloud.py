"""``map.html``: a light, self-contained page over embedlens's WebGL map component (``static/pointcloud.js``).

Plotly draws a 262,144-point 3-D scatter in about 23 s in a software-WebGL browser (2-D: about 11 s),
almost all of it in its own per-point set-up. This page ships the points as packed float32/uint8
arrays and the component draws them with one ``gl.POINTS`` call: orbit / pan / zoom framed on the bulk
of the points, hover (token, id, frequency, cluster), cluster labels that never overlap and get finer as
you zoom in (clusters, sub-clusters, then the most frequent tokens in view), density contours, box and
lasso selection with a copy-ids list, search with highlighted matches, colour bar and a PNG button; no
network and no library. The same component draws the explorer's maps.

Same Viridis scale, colour values, relative sizes and hover fields as the Plotly figure
(:mod:`embedlens.render.atlas`); coordinates are sent as they are, rows in the result's order, with the
drawing order beside them. Token strings reach the page only through
:func:`~embedlens.render.offline.json_for_script` and ``textContent``.
"""

from __future__ import annotations

import base64
from importlib import resources
from typing import Any

import numpy as np
from plotly.colors import sequential as _sequential  # this module is imported only to write a page

from .atlas import axis_titles, color_values, marker_sizes
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
#tools { display: flex; gap: 12px; align-items: center; padding: 4px 14px; flex-wrap: wrap; }
#tools input[type=search] { width: 200px; font-family: monospace; }
#tools button.on { background: #dde6f3; border-color: #5b7fb0; }
#help, #found { color: #666; }
#stage { position: relative; flex: 1; min-height: 300px; }
#map { position: absolute; left: 0; top: 0; width: calc(100% - 96px); height: 100%; }
#stage.no-bar #map { width: 100%; }
#cbar { position: absolute; right: 14px; top: 40px; bottom: 60px; width: 70px; pointer-events: none; }
#cbar-title { font-size: 12px; margin-bottom: 6px; }
#cbar-body { position: absolute; top: 22px; bottom: 0; left: 0; right: 0; }
#cbar-ramp { position: absolute; left: 0; width: 14px; top: 0; bottom: 0; border: 1px solid #aaa; }
#cbar-ticks { position: absolute; left: 20px; top: 0; bottom: 0; right: 0; }
.tick { position: absolute; font-size: 11px; transform: translateY(50%); white-space: nowrap; }
#legend { position: absolute; right: 8px; top: 40px; width: 84px; pointer-events: none; font-size: 11px; }
.legend-row { display: flex; align-items: center; gap: 5px; margin: 2px 0; white-space: nowrap; }
.legend-swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
#selection { position: absolute; left: 10px; bottom: 10px; width: 260px; max-height: 45%; display: flex;
             flex-direction: column; background: rgba(255,255,255,.94); border: 1px solid #aaa; border-radius: 4px;
             padding: 6px 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); z-index: 4; }
#sel-head { display: flex; gap: 8px; align-items: center; }
#sel-count { flex: 1; font-weight: 600; }
#sel-list { list-style: none; margin: 4px 0 0; padding: 0; overflow: auto; font-size: 12px; }
#sel-list li { display: flex; justify-content: space-between; gap: 8px; }
#sel-list .tok { font-family: monospace; white-space: pre; overflow: hidden; text-overflow: ellipsis; }
#sel-list .id, #sel-more { color: #777; }
"""

_BODY = """
<noscript>This map needs JavaScript and WebGL; points.parquet beside this file holds the same data.</noscript>
<div id="page">
<header><div id="title1"></div><div id="title2"></div></header>
<div id="tools">
  <label>find token <input id="search" type="search" spellcheck="false" autocomplete="off"></label>
  <span id="found"></span>
  <span><button id="tool-pan" type="button" class="on">pan</button><button id="tool-box" type="button">box</button><button
    id="tool-lasso" type="button">lasso</button></span>
  <label><input id="show-labels" type="checkbox" checked> labels</label>
  <label id="contours-box"><input id="show-contours" type="checkbox"> density contours</label>
  <label>point size <input id="point-size" type="range" min="0.5" max="4" step="0.25" value="1"></label>
  <button id="frame" type="button">frame</button>
  <button id="png" type="button">PNG of this view</button>
  <span id="help"></span>
</div>
<div id="stage">
  <div id="map"></div>
  <div id="legend"></div>
  <div id="cbar"><div id="cbar-title"></div><div id="cbar-body"><div id="cbar-ramp"></div><div id="cbar-ticks"></div></div></div>
  <div id="selection" style="display:none"><div id="sel-head"><span id="sel-count"></span>
    <button id="sel-copy" type="button">copy ids</button><button id="sel-clear" type="button">clear</button></div>
    <ul id="sel-list"></ul><div id="sel-more"></div></div>
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


def static_js(*names: str) -> str:
    """Scripts of ``render/static`` joined into one (the map component first, then a page's bootstrap)."""
    static = resources.files("embedlens.render").joinpath("static")
    return "\n".join(static.joinpath(name).read_text(encoding="utf-8") for name in names)


def component_page(title: str, css: str, body: str, data: Any, scripts: tuple[str, ...]) -> str:
    """A self-contained page over the map component: ``data`` as JSON in ``#embedlens-data``, then ``scripts``."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html_text(title)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>{css}</style></head><body>{body}"
            f"<script type=\"application/json\" id=\"embedlens-data\">{json_for_script(data)}</script>"
            f"<script>{static_js(*scripts)}</script></body></html>\n")


def draw_order(result: Any) -> np.ndarray | None:
    """Rows in drawing order (later on top): lowest colour value first, so frequent tokens lie on top in 2-D;
    writing systems in class order; None for one plain colour (row order)."""
    categories = result.categories()
    if categories is not None:
        return np.argsort(categories[3], kind="stable")
    colors, _ = color_values(result)
    return None if colors is None else np.argsort(colors, kind="stable")


def point_colors(result: Any) -> tuple[np.ndarray, dict[str, Any] | None, list[list[str]] | None]:
    """uint8 RGB (n, 3) in row order, the colour bar (None without one) and the legend (writing systems)."""
    n = len(result.ids)
    categories = result.categories()
    if categories is not None:  # writing systems, parts of speech: one colour each, with a legend
        _, names, hexes, classes = categories
        palette = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in hexes], dtype=np.uint8)
        return palette[classes], None, [[hexes[c], names[c]] for c in np.unique(classes).tolist()]
    colors, bar = color_values(result)
    if colors is None:
        return np.tile(np.asarray(_PLAIN, dtype=np.uint8), (n, 1)), None, None
    low, high = bar.get("range", (float(colors.min()), float(colors.max())) if n else (0.0, 1.0))
    high = max(high, low + 1e-9)
    if "tickvals" in bar:
        ticks = [((v - low) / (high - low), t) for v, t in zip(bar["tickvals"], bar["ticktext"], strict=True)]
    else:
        ticks = [(k / 4, f"{low + k / 4 * (high - low):.3g}") for k in range(5)]
    colorbar = {"title": bar["title"]["text"], "stops": [[k / (len(VIRIDIS) - 1), c] for k, c in enumerate(VIRIDIS)],
                "ticks": [[round(float(p), 4), t] for p, t in ticks if -1e-9 <= p <= 1 + 1e-9]}
    return viridis_rgb(colors, low, high), colorbar, None


def token_priority(result: Any) -> np.ndarray | None:
    """Rows by corpus frequency, most frequent first (ties: row order); None without counts (row order)."""
    if result.frequencies is None or not np.any(np.asarray(result.frequencies) > 0):
        return None
    return np.argsort(-np.asarray(result.frequencies, dtype=np.int64), kind="stable")


def page_data(result: Any) -> dict[str, Any]:
    """Everything the page draws, rows in the result's order: raw coordinates (the component frames them),
    colours, sizes, the drawing order, hover fields and the cluster label levels."""
    xyz = np.asarray(result.coords, dtype=np.float32)
    n, dims = xyz.shape
    rgb, colorbar, legend = point_colors(result)
    sizes = np.broadcast_to(np.asarray(marker_sizes(result, three_d=dims == 3), dtype=np.float32), (n,))
    # Plotly's marker sizes are diameters in px for its own point sprites; these read the same at 1.5x.
    sizes = np.maximum(sizes * 1.5, 2.0).astype(np.float32)
    order = draw_order(result)
    priority = token_priority(result)
    line1, line2 = result.title_lines()
    return {
        "n": int(n), "dims": int(dims), "coords": _b64(xyz), "rgb": _b64(rgb), "size": _b64(sizes),
        "order": None if order is None else _b64(order.astype(np.int32)),
        "axes": (axis_titles(result) + ["", "", ""])[:3],
        "display": list(result.display),
        "ids": np.asarray(result.ids, dtype=np.int64).tolist(),
        "freq": None if result.frequencies is None else np.asarray(result.frequencies, dtype=np.int64).tolist(),
        "title": [line1, line2], "colorbar": colorbar, "legend": legend,
        "legend_title": (result.categories() or ("",))[0],
        "levels": result.label_levels() or None,
        "token_priority": None if priority is None else _b64(priority.astype(np.int32)),
    }


def pointcloud_html(result: Any) -> str:
    """The complete map.html page for an :class:`~embedlens.atlas.AtlasResult` (any size)."""
    data = page_data(result)
    return component_page(data["title"][0], _CSS, _BODY, data, ("pointcloud.js", "map_page.js"))
