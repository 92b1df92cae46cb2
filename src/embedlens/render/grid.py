"""Drawing token grid maps: a PNG (matplotlib) and an interactive, offline HTML page (Plotly).

Both take :class:`~embedlens.grid.result.GridMap` objects and compute nothing. Cell colour is the top
token's probability (viridis, with a colorbar); each cell shows its readable token.

PNG legibility: at most ``max_display_size`` labels per axis. Up to that size every cell is labelled; a
larger grid keeps every cell's colour but labels every k-th cell (k = ceil(grid_size / max_display_size))
and says so in the title. The font size follows the cell size and labels are dropped altogether only if
they would be smaller than 3 pt. Token strings are drawn literally (no mathtext: ``$x$`` stays ``$x$``).

Region labels (``cell_labels="regions"`` or ``"both"``, the default above 40x40): each connected region of
cells (4-neighbours) that share a top token is named once, at its centre cell, in a font that grows with
the square root of its area; regions are found for the whole grid at once (one connected-components pass
over the "same token as the neighbour" graph) and their labels placed without overlapping
(:func:`embedlens.render.labels.place_labels`). A 100x100 map thus reads as a map of a few dozen
territories rather than 10,000 six-letter labels.

HTML: every token string goes through :func:`embedlens.render.offline.plotly_text` (Plotly renders a subset
of HTML in text), hover shows the cell's coordinates and its top-5 with probabilities, and Plotly's
JavaScript is embedded so the page opens with no network.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path
from ..errors import EmbedlensError, require
from .labels import place_labels
from .offline import plotly_text, write_plotly_html

MAX_LABEL_CHARS = 6
_MIN_FONT_PT = 3.0
CELL_LABELS = ("cells", "regions", "both")
BOTH_ABOVE = 40  # default cell_labels: "both" above 40x40, "cells" up to it
MIN_REGION_CELLS = 4
MAX_REGION_CHARS = 14


def check_cell_labels(value: str | None, grid_size: int) -> str:
    """``cells``, ``regions`` or ``both``; None picks ``both`` above 40x40, else ``cells``."""
    if value is None:
        return "both" if grid_size > BOTH_ABOVE else "cells"
    if value not in CELL_LABELS:
        raise EmbedlensError(f"cell labels must be one of {', '.join(CELL_LABELS)}, got '{value}'")
    return value


def ordinal(k: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``22nd``..."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def token_regions(gm: Any, *, min_cells: int = MIN_REGION_CELLS) -> dict[str, np.ndarray]:
    """Connected regions of cells sharing a top token (4-neighbours), largest first, at least ``min_cells``.

    Returns arrays: ``cell`` (the region's label cell: the member nearest its centroid), ``area`` (cells),
    ``token`` (top token id) and ``region`` (n_cells,), each cell's region number (all regions, any size).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = gm.grid_size
    ids = gm.as_grid(np.asarray(gm.token_ids))
    idx = np.arange(n * n).reshape(n, n)
    right = ids[:, :-1] == ids[:, 1:]
    up = ids[:-1, :] == ids[1:, :]
    src = np.concatenate([idx[:, :-1][right], idx[:-1, :][up]])
    dst = np.concatenate([idx[:, 1:][right], idx[1:, :][up]])
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n * n, n * n))
    _, region = connected_components(graph, directed=False)
    area = np.bincount(region)
    rows, cols = np.divmod(np.arange(n * n), n)
    cy = np.bincount(region, weights=rows) / area
    cx = np.bincount(region, weights=cols) / area
    dist = (rows - cy[region]) ** 2 + (cols - cx[region]) ** 2
    order = np.lexsort((dist, region))  # per region, its cell nearest the centroid comes first
    first = order[np.searchsorted(region[order], np.arange(area.size))]
    keep = np.flatnonzero(area >= min_cells)
    keep = keep[np.lexsort((keep, -area[keep]))]
    return {"cell": first[keep], "area": area[keep], "token": ids.reshape(-1)[first[keep]], "region": region}


def region_font_sizes(area: np.ndarray, cell_pt: float, *, low: float = 6.0, high: float = 28.0) -> np.ndarray:
    """Font size (points) of each region label: grows with the square root of its area (in cells)."""
    return np.clip(0.55 * cell_pt * np.sqrt(np.asarray(area, dtype=np.float64)), low, high)


def short_label(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(gm: Any) -> str:
    c = gm.config
    name = c.get("name") or c.get("model")
    layer = f"layer {gm.layer}/{c.get('n_layers')}" + (" (direct decoding)" if gm.layer == c.get("n_layers") else "")
    return (f"{name} · {layer} · method {gm.method} · {gm.grid_size}x{gm.grid_size}, spacing {c.get('spacing'):g}"
            + (f" · {c.get('dtype')}" if c.get("dtype") != "float32" else ""))


def _extent(gm: Any) -> tuple[list[float], float, float]:
    n = gm.grid_size
    xs, ys = gm.x[:n], gm.y[::n]
    sx = float(xs[1] - xs[0]) if n > 1 else float(gm.config.get("spacing", 1.0))
    sy = float(ys[1] - ys[0]) if n > 1 else sx
    return [float(xs[0]) - sx / 2, float(xs[-1]) + sx / 2, float(ys[0]) - sy / 2, float(ys[-1]) + sy / 2], sx, sy


def _image(ax: Any, gm: Any, *, norm: Any, cmap: Any) -> Any:
    extent, _, _ = _extent(gm)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax.imshow(gm.as_grid(gm.probs), origin="lower", extent=extent, cmap=cmap, norm=norm,
                     interpolation="nearest", aspect="equal")


def label_plan(grid_size: int, max_display_size: int, axes_inches: float) -> tuple[int, float]:
    """``(stride, font size in points)`` of the token labels; font 0 means no labels."""
    stride = max(1, math.ceil(grid_size / max(1, max_display_size)))
    cell_pt = axes_inches * 72 / grid_size * stride
    font = min(9.0, cell_pt * 0.5, cell_pt * 0.92 / (0.7 * MAX_LABEL_CHARS))
    return stride, (font if font >= _MIN_FONT_PT else 0.0)


def _plan(ax: Any, gm: Any, max_display_size: int) -> tuple[int, float, str]:
    """Label stride, font size (points) and a note for ``ax``, from its size after layout."""
    fig = ax.figure
    ax.apply_aspect()
    pos = ax.get_position()
    w, h = fig.get_size_inches()
    stride, font = label_plan(gm.grid_size, max_display_size, min(pos.width * w, pos.height * h))
    if not font:
        return stride, font, "labels omitted (cells too small); see the HTML"
    return stride, font, (f"labels on every {ordinal(stride)} cell (all cells in the HTML)" if stride > 1 else "")


def _font_file() -> str:
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))


def _draw_labels(image: Any, ax: Any, gm: Any, stride: int, font_pt: float, dpi: float, *, norm: Any, cmap: Any) -> None:
    """Write the labelled cells' tokens onto the rendered figure (a PIL image), centred on each cell.

    Drawing with PIL once per label is ~50x faster than one matplotlib Text artist per cell, which is what
    keeps a 50x50 map inside the time budget. Strings are drawn as plain text, never parsed.
    """
    from PIL import ImageDraw, ImageFont

    if not font_pt:
        return
    n = gm.grid_size
    rows = np.arange(stride // 2, n, stride)
    ii, jj = np.meshgrid(rows, rows, indexing="ij")
    cells = (ii * n + jj).ravel()
    rgba = cmap(norm(gm.probs[cells]))
    dark = (0.2126 * rgba[:, 0] + 0.7152 * rgba[:, 1] + 0.0722 * rgba[:, 2]) <= 0.5
    px = ax.transData.transform(np.column_stack([gm.x[cells], gm.y[cells]]))
    height = image.size[1]
    font = ImageFont.truetype(_font_file(), size=max(1, round(font_pt * dpi / 72)))
    draw = ImageDraw.Draw(image)
    labels = np.frompyfunc(short_label, 1, 1)(gm.top5_display[cells, 0])
    for (x, y), text, is_dark in zip(px.tolist(), labels.tolist(), dark.tolist(), strict=True):
        ink, halo = ((255, 255, 255), (0, 0, 0)) if is_dark else ((0, 0, 0), (255, 255, 255))
        # a sparse label (every k-th cell) sits on neighbours of other colours: a thin halo keeps it legible
        draw.text((x, height - y), text, fill=ink, font=font, anchor="mm", stroke_width=1 if stride > 1 else 0,
                  stroke_fill=halo)


def region_label_boxes(gm: Any, cell_px: float, to_px: Any, dpi: float) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                                              np.ndarray, list[str]]:
    """Regions (see :func:`token_regions`), their placed label boxes in image pixels (NaN: no room), font
    sizes in pixels and texts; ``to_px`` maps (m, 2) cell coordinates (x, y) to image pixels."""
    from PIL import ImageFont

    regions = token_regions(gm)
    cells = regions["cell"]
    if not cells.size:
        return regions, np.zeros((0, 4)), np.zeros(0), []
    shown = dict(zip(np.asarray(gm.token_ids).tolist(), gm.display, strict=True))
    texts = [short_label(shown[int(t)], MAX_REGION_CHARS) for t in regions["token"].tolist()]
    font_px = np.round(region_font_sizes(regions["area"], cell_px * 72 / dpi) * dpi / 72)
    sizes = []
    for text, size in zip(texts, font_px.tolist(), strict=True):  # a loop over regions (labelled ones only)
        box = ImageFont.truetype(_font_file(), size=max(1, int(size))).getbbox(text)
        sizes.append((box[2] - box[0] + 4, box[3] - box[1] + 4))
    anchors = to_px(np.column_stack([gm.x[cells], gm.y[cells]]))
    return regions, place_labels(anchors, np.array(sizes, dtype=np.float64), pad=1.0), font_px, texts


def _draw_region_labels(image: Any, ax: Any, gm: Any, dpi: float) -> None:
    """Name each region of cells sharing a top token once, at its centre, sized by its area (black on a white halo)."""
    from PIL import ImageDraw, ImageFont

    n = gm.grid_size
    height = image.size[1]

    def to_px(xy: np.ndarray) -> np.ndarray:
        px = ax.transData.transform(xy)
        return np.column_stack([px[:, 0], height - px[:, 1]])  # PIL's y points down

    extent, sx, _ = _extent(gm)
    cell_px = float(abs(ax.transData.transform((sx, 0))[0] - ax.transData.transform((0, 0))[0])) if n > 1 else 10.0
    _, boxes, font_px, texts = region_label_boxes(gm, cell_px, to_px, dpi)
    draw = ImageDraw.Draw(image)
    for box, text, size in zip(boxes.tolist(), texts, font_px.tolist(), strict=True):  # labelled regions
        if np.isnan(box[0]):
            continue
        font = ImageFont.truetype(_font_file(), size=max(1, int(size)))
        draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, fill=(0, 0, 0), font=font, anchor="mm",
                  stroke_width=max(1, int(size) // 8), stroke_fill=(255, 255, 255))


def _save_with_labels(fig: Any, path: str | Path, dpi: int, jobs: list[tuple[Any, ...]], *, norm: Any,
                      cmap: Any) -> None:
    from PIL import Image

    fig.set_dpi(dpi)
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), bytes(fig.canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    image = image.convert("RGB")
    for ax, gm, stride, font, mode in jobs:
        if mode in ("cells", "both"):
            _draw_labels(image, ax, gm, stride, font, dpi, norm=norm, cmap=cmap)
        if mode in ("regions", "both"):
            _draw_region_labels(image, ax, gm, dpi)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", compress_level=3)


def _matplotlib():
    mpl = require("matplotlib", "the grid map PNG", extra="maps")
    mpl.use("Agg", force=False)
    import logging

    import matplotlib.pyplot as plt

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return plt


def _norm(maps: Sequence[Any]) -> Any:
    from matplotlib.colors import Normalize

    lo = min(float(m.probs.min()) for m in maps)
    hi = max(float(m.probs.max()) for m in maps)
    return Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-6)


def write_grid_png(gm: Any, path: str | Path, *, max_display_size: int = 50, figsize: tuple[float, float] = (20, 20),
                   dpi: int = 150, cell_labels: str | None = None) -> Path:
    """The token map of one layer as a PNG, written atomically (``cell_labels``: see :func:`check_cell_labels`)."""
    mode = check_cell_labels(cell_labels, gm.grid_size)
    plt = _matplotlib()
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    norm = _norm([gm])
    fig, ax = plt.subplots(figsize=figsize)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing glyphs for rare scripts are drawn as boxes
            image = _image(ax, gm, norm=norm, cmap=cmap)
            title = ax.set_title(_title(gm) + "\n ", fontsize=14, parse_math=False)
            cbar = fig.colorbar(image, ax=ax, shrink=0.8)
            cbar.set_label("probability of the top next token", fontsize=12)
            fig.tight_layout()
            fig.set_layout_engine("none")  # laid out once; no second layout pass when drawing
            stride, font, note = _plan(ax, gm, max_display_size)
            title.set_text(_title(gm) + f"\n{_mode_note(mode, note)}")
            _save_with_labels(fig, path, dpi, [(ax, gm, stride, font, mode)], norm=norm, cmap=cmap)
    finally:
        plt.close(fig)
    return Path(path)


def _mode_note(mode: str, note: str) -> str:
    if mode == "cells":
        return note
    regions = "regions of one top token named once, sized by area"
    return regions if mode == "regions" else " · ".join(x for x in (note, regions) if x)


def write_panel_png(maps: Sequence[Any], path: str | Path, *, max_display_size: int = 50, panel_inches: float = 10,
                    dpi: int = 150, cell_labels: str | None = None) -> Path:
    """Several layers' maps of the same grid side by side, one shared colour scale."""
    mode = check_cell_labels(cell_labels, maps[0].grid_size)
    plt = _matplotlib()
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    norm = _norm(maps)
    k = len(maps)
    fig, axes = plt.subplots(1, k, figsize=(panel_inches * k + 2, panel_inches + 1.5), squeeze=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            images = [_image(ax, gm, norm=norm, cmap=cmap) for ax, gm in zip(axes[0], maps, strict=True)]
            first = maps[0]
            fig.suptitle(f"{first.config.get('name')} · method {first.method} · {first.grid_size}x{first.grid_size}, "
                         f"spacing {first.config.get('spacing'):g}", fontsize=15, parse_math=False)
            titles = [ax.set_title(f"layer {gm.layer}/{gm.config.get('n_layers')}\n ", fontsize=12, parse_math=False)
                      for ax, gm in zip(axes[0], maps, strict=True)]
            fig.subplots_adjust(left=0.04, right=0.9, bottom=0.08, top=0.86, wspace=0.15)
            cax = fig.add_axes((0.92, 0.15, 0.012, 0.65))
            cbar = fig.colorbar(images[0], cax=cax)
            cbar.set_label("probability of the top next token")
            jobs = []
            for ax, gm, title in zip(axes[0], maps, titles, strict=True):
                stride, font, note = _plan(ax, gm, max_display_size)
                title.set_text(f"layer {gm.layer}/{gm.config.get('n_layers')}\n{_mode_note(mode, note)}")
                jobs.append((ax, gm, stride, font, mode))
            _save_with_labels(fig, path, dpi, jobs, norm=norm, cmap=cmap)
    finally:
        plt.close(fig)
    return Path(path)


# -- Plotly --------------------------------------------------------------------------------------------


def _hover_data(gm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Escaped readable strings (n, n) of the top token, and customdata (n, n, 10): top-5 strings + probabilities."""
    esc = np.frompyfunc(plotly_text, 1, 1)
    shown = esc(gm.top5_display).astype(object)
    probs = np.char.mod("%.4f", gm.top5_probs.astype(np.float64)).astype(object)
    custom = np.concatenate([shown, probs], axis=1)
    n = gm.grid_size
    return gm.as_grid(shown[:, 0]), custom.reshape(n, n, custom.shape[1])


_HOVER = ("x=%{x:.4g}, y=%{y:.4g}<br>" + "<br>".join(f"{i + 1}. %{{customdata[{i}]}}  %{{customdata[{i + 5}]}}"
                                                     for i in range(5)) + "<extra></extra>")


def _heatmap_parts(gm: Any, *, coloraxis: str | None = None, label_limit: int = 50
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The heatmap trace's arguments: the small options, and the (n, n) arrays (z, x, y, customdata, text)."""
    n = gm.grid_size
    text, custom = _hover_data(gm)
    k = custom.shape[2] // 2
    hover = _HOVER if k == 5 else ("x=%{x:.4g}, y=%{y:.4g}<br>" + "<br>".join(
        f"{i + 1}. %{{customdata[{i}]}}  %{{customdata[{i + k}]}}" for i in range(k)) + "<extra></extra>")
    small: dict[str, Any] = {"hovertemplate": hover}
    big: dict[str, Any] = {"z": gm.as_grid(gm.probs).tolist(), "x": gm.x[:n].tolist(), "y": gm.y[::n].tolist(),
                           "customdata": custom.tolist()}
    if n <= label_limit:
        short = np.frompyfunc(lambda s: plotly_text(short_label(s)), 1, 1)(gm.as_grid(gm.top5_display[:, 0]))
        big["text"] = short.tolist()
        small.update(texttemplate="%{text}", textfont={"size": max(6, min(12, 600 // n))})
    if coloraxis:
        small["coloraxis"] = coloraxis
    else:
        small.update(colorscale="Viridis", colorbar={"title": {"text": "probability"}})
    return small, big


def _heatmap(gm: Any, *, coloraxis: str | None = None, label_limit: int = 50) -> Any:
    import plotly.graph_objects as go

    small, big = _heatmap_parts(gm, coloraxis=coloraxis, label_limit=label_limit)
    return go.Heatmap(**small, **big)


def _first_only(value: Any) -> Any:
    """A nested list cut to its first element at every level: what Plotly validates in place of the whole."""
    return [_first_only(value[0])] if isinstance(value, list) and value else value


def region_trace(gm: Any, *, plot_px: float = 760.0) -> Any:
    """Region labels as a Plotly text trace: one label per region of cells sharing a top token, at its
    centre, sized by area, placed (in the figure's nominal pixels) so that no two overlap."""
    import plotly.graph_objects as go

    n = gm.grid_size
    regions = token_regions(gm)
    cells = regions["cell"]
    cell_px = plot_px / max(n, 1)
    shown = dict(zip(np.asarray(gm.token_ids).tolist(), gm.display, strict=True))
    texts = [short_label(shown[int(t)], MAX_REGION_CHARS) for t in regions["token"].tolist()]
    size = np.clip(0.55 * cell_px * np.sqrt(regions["area"].astype(np.float64)), 8.0, 28.0)
    _, sx, sy = _extent(gm)
    anchors = np.column_stack([(gm.x[cells] - gm.x[0]) / sx, (gm.y[cells] - gm.y[0]) / sy]) * cell_px
    widths = np.array([len(t) for t in texts], dtype=np.float64) * 0.6 * size + 4
    boxes = place_labels(anchors, np.column_stack([widths, size * 1.3]), pad=1.0)
    ok = ~np.isnan(boxes[:, 0])
    centre = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])[ok] / cell_px
    return go.Scatter(x=(gm.x[0] + centre[:, 0] * sx).tolist(), y=(gm.y[0] + centre[:, 1] * sy).tolist(),
                      mode="text", text=[plotly_text(t) for t, keep in zip(texts, ok, strict=True) if keep],
                      textfont={"size": size[ok].tolist(), "color": "black"}, hoverinfo="skip", showlegend=False,
                      name="regions")


def grid_figure_dict(gm: Any, *, cell_labels: str | None = None) -> dict[str, Any]:
    """:func:`grid_figure` as the dict Plotly makes of it (``fig.to_dict()``), at a fraction of the cost.

    Plotly validates and deep-copies every value of a figure, twice: for a 50x50 map's hover table (25,000
    strings) that is most of the time the grid's HTML takes. Here the figure is built by Plotly with each
    (n, n) array cut to its first element, and the arrays, which are plain lists of floats and strings
    already (what validation would return), are put in place in its dict afterwards: same keys, same order.
    """
    import plotly.graph_objects as go

    mode = check_cell_labels(cell_labels, gm.grid_size)
    small, big = _heatmap_parts(gm, label_limit=50 if mode != "regions" else 0)
    fig = go.Figure(go.Heatmap(**small, **{k: _first_only(v) for k, v in big.items()}))
    if mode != "cells":
        fig.add_trace(region_trace(gm))
    fig.update_layout(title={"text": plotly_text(_title(gm))}, xaxis_title="x", yaxis_title="y",
                      yaxis={"scaleanchor": "x"}, width=900, height=900, template="plotly_white")
    data = fig.to_dict()
    data["data"][0].update(big)  # keys already there: their order stays Plotly's
    return data


def grid_figure(gm: Any, *, cell_labels: str | None = None) -> Any:
    """The interactive Plotly figure of one map (hover: coordinates and top-5; ``cell_labels`` as for the PNG)."""
    import plotly.graph_objects as go

    return go.Figure(grid_figure_dict(gm, cell_labels=cell_labels))


def panel_figure(maps: Sequence[Any]) -> Any:
    from plotly.subplots import make_subplots

    titles = [plotly_text(f"layer {m.layer}/{m.config.get('n_layers')}") for m in maps]
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=titles, horizontal_spacing=0.03)
    for i, gm in enumerate(maps, 1):
        fig.add_trace(_heatmap(gm, coloraxis="coloraxis", label_limit=30), row=1, col=i)
    first = maps[0]
    fig.update_layout(
        title={"text": plotly_text(f"{first.config.get('name')} · method {first.method} · "
                                 f"{first.grid_size}x{first.grid_size}")},
        coloraxis={"colorscale": "Viridis", "colorbar": {"title": {"text": "probability"}}},
        width=max(900, 520 * len(maps)), height=600, template="plotly_white",
    )
    return fig


def write_grid_html(gm: Any, path: str | Path, *, cell_labels: str | None = None) -> Path:
    return write_plotly_html(grid_figure_dict(gm, cell_labels=cell_labels), path, title=_title(gm), validate=False)


def write_panel_html(maps: Sequence[Any], path: str | Path) -> Path:
    return write_plotly_html(panel_figure(maps), path, title=f"{maps[0].config.get('name')} · layers "
                             + ", ".join(str(m.layer) for m in maps))
