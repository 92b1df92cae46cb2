"""Drawing a vocabulary atlas: an interactive Plotly figure (WebGL) and a static matplotlib PNG.

Takes an :class:`~embedlens.atlas.AtlasResult` and computes nothing but colours and sizes. Token
strings are untrusted: everything Plotly draws as text goes through :func:`~embedlens.render.offline.html_text`
(Plotly understands a few tags such as ``<br>`` in text and decodes entities, so an escaped ``<script>``
token shows literally), and matplotlib text is drawn with math parsing off (a ``$`` token stays a ``$``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .offline import html_text

COLORSCALE = "Viridis"
_AXIS_NAMES = {"pca": "PC", "tsne": "t-SNE ", "umap": "UMAP "}


def escape_all(strings: list[str]) -> list[str]:
    """:func:`html_text` over many strings at once (one C-level pass instead of a Python loop)."""
    if not strings:
        return []
    joined = "\x00".join(strings)
    escaped = html_text(joined).split("\x00")
    if len(escaped) != len(strings):  # a string held a NUL itself: fall back to one at a time
        return [html_text(s) for s in strings]
    return escaped


def color_values(result: Any) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Marker colours (one float per point) and the colour bar settings for ``result.color``."""
    if result.color == "frequency" and result.frequencies is not None:
        f = np.asarray(result.frequencies, dtype=np.float64)
        values = np.log10(1.0 + f).astype(np.float32)
        low, high = (float(f.min()), float(f.max())) if f.size else (0.0, 1.0)
        ticks = [t for t in [0] + [10**k for k in range(0, 16)] if low <= t <= high] or [int(low)]
        return values, {
            "title": {"text": "frequency"},
            "tickvals": np.log10(1.0 + np.asarray(ticks, dtype=np.float64)).tolist(),
            "ticktext": [f"{t:,}" for t in ticks],
        }
    if result.color in ("frequency", "length"):
        lengths = np.fromiter(map(len, result.display), dtype=np.float32, count=len(result.display))
        top = float(np.percentile(lengths, 99)) if lengths.size else 1.0  # a few 80-character tokens would flatten the rest
        return lengths, {"title": {"text": "characters"}, "range": (1.0, max(top, 2.0))}
    return None, {}


def marker_sizes(result: Any, *, three_d: bool) -> np.ndarray | float:
    n = len(result.ids)
    base = 2.0 if n > 20_000 else 3.5 if n > 2_000 else 6.0
    if three_d:
        base = max(base - 1.0, 1.5)
    if not (result.size_by_frequency and result.frequencies is not None):
        return base
    f = np.log10(1.0 + np.asarray(result.frequencies, dtype=np.float64))
    scale = f / max(float(f.max()), 1e-9)
    return (base + 4.0 * base * scale).astype(np.float32)


def hover(result: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """Hover text (escaped readable tokens), custom data (id[, frequency]) and the hover template.

    The text is an object array, not a list: Plotly validates and deep-copies a list string by string
    (most of a second for 49k tokens), an array in one go.
    """
    text = np.asarray(escape_all(list(result.display)), dtype=object)
    if result.frequencies is not None:
        custom = np.column_stack([np.asarray(result.ids, dtype=np.int64), np.asarray(result.frequencies, dtype=np.int64)])
        template = "%{text}<br>id %{customdata[0]}<br>frequency %{customdata[1]:,}<extra></extra>"
    else:
        custom = np.asarray(result.ids, dtype=np.int64).reshape(-1, 1)
        template = "%{text}<br>id %{customdata[0]}<extra></extra>"
    return text, custom, template


def atlas_figure(result: Any) -> Any:
    """The interactive map: ``Scattergl`` in 2-D, ``Scatter3d`` in 3-D, hover = token, id, frequency."""
    import plotly.graph_objects as go

    xyz = np.asarray(result.coords, dtype=np.float32)
    three_d = xyz.shape[1] == 3
    colors, colorbar = color_values(result)
    marker: dict[str, Any] = {"size": marker_sizes(result, three_d=three_d), "opacity": 0.8, "line": {"width": 0}}
    if colors is not None:
        bar = {k: v for k, v in colorbar.items() if k != "range"}
        marker.update(color=colors, colorscale=COLORSCALE, showscale=True, colorbar=bar)
        if "range" in colorbar:
            marker.update(cmin=colorbar["range"][0], cmax=colorbar["range"][1])
    else:
        marker.update(color="#3b6ea8")
    text, custom, template = hover(result)
    common = {"mode": "markers", "marker": marker, "text": text, "customdata": custom, "hovertemplate": template,
              "name": "tokens"}
    if three_d:
        trace = go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], **common)
    else:
        trace = go.Scattergl(x=xyz[:, 0], y=xyz[:, 1], **common)
    fig = go.Figure(trace)
    line1, line2 = result.title_lines()
    axis = _AXIS_NAMES.get(result.method, "dim ")
    fig.update_layout(
        title={"text": f"{html_text(line1)}<br><sup>{html_text(line2)}</sup>", "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=820,
        margin={"l": 30, "r": 30, "t": 80, "b": 30},
        hovermode="closest",
        hoverlabel={"font": {"family": "monospace"}},
        showlegend=False,
    )
    if three_d:
        fig.update_layout(scene={"xaxis": {"title": {"text": f"{axis}1"}}, "yaxis": {"title": {"text": f"{axis}2"}},
                                 "zaxis": {"title": {"text": f"{axis}3"}}, "aspectmode": "data"})
    else:
        fig.update_xaxes(title={"text": f"{axis}1"}, zeroline=False, showticklabels=result.method == "pca")
        fig.update_yaxes(title={"text": f"{axis}2"}, zeroline=False, scaleanchor="x", scaleratio=1,
                         showticklabels=result.method == "pca")
    return fig


def label_rows(result: Any, n: int = 25, *, min_gap: float = 0.035) -> np.ndarray:
    """Which points the PNG names: the most frequent tokens (or a seeded sample when there are no counts),
    skipping any that would sit within ``min_gap`` (share of the plot's extent) of one already named."""
    total = len(result.ids)
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    if result.frequencies is not None and np.any(np.asarray(result.frequencies) > 0):
        f = np.asarray(result.frequencies)
        candidates = np.argsort(-f, kind="stable")[: 20 * n]
        candidates = candidates[f[candidates] > 0]
    else:
        candidates = np.random.default_rng(result.seed).permutation(total)[: 20 * n]
    xy = np.asarray(result.coords, dtype=np.float64)[:, :2]
    span = np.maximum(xy.max(axis=0) - xy.min(axis=0), 1e-12)
    pos = (xy[candidates] - xy.min(axis=0)) / span
    kept: list[int] = []
    for j in range(len(candidates)):  # at most 20 * n candidates, not a loop over the vocabulary
        if not kept or np.min(np.linalg.norm(pos[kept] - pos[j], axis=1)) >= min_gap:
            kept.append(j)
            if len(kept) == n:
                break
    return candidates[np.asarray(kept, dtype=np.int64)]


def _draw_points(fig: Any, ax: Any, xyz: np.ndarray, colors: np.ndarray | None, colorbar: dict[str, Any],
                 sizes: np.ndarray | float, n_bins: int = 24) -> None:
    """Points as a few marker lines, one per colour bin, low values first (frequent tokens on top).

    Agg stamps one cached marker per point for a line's markers, several times faster than a scatter
    with a colour per point; 24 colour steps are indistinguishable from a continuous scale at this size.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    columns = [xyz[:, i] for i in range(xyz.shape[1])]
    style = {"linestyle": "none", "marker": "o", "markeredgewidth": 0, "alpha": 0.75, "rasterized": True}
    if colors is None:
        ax.plot(*columns, color="#3b6ea8", markersize=float(np.mean(sizes)) * 0.7, **style)
        return
    low, high = colorbar.get("range", (float(colors.min()), float(colors.max())))
    high = max(high, low + 1e-9)
    norm, cmap = Normalize(low, high), colormaps["viridis"]
    bins = np.clip(((np.asarray(colors, dtype=np.float64) - low) / (high - low) * n_bins).astype(np.int64), 0, n_bins - 1)
    sizes_arr = np.broadcast_to(np.asarray(sizes, dtype=np.float32), bins.shape)
    order = np.argsort(bins, kind="stable")
    edges = np.searchsorted(bins[order], np.arange(n_bins + 1))
    for b in range(n_bins):  # a loop over colour bins, not over points
        idx = order[edges[b]: edges[b + 1]]
        if idx.size:
            ax.plot(*(c[idx] for c in columns), color=cmap((b + 0.5) / n_bins),
                    markersize=float(sizes_arr[idx].mean()) * 0.7, **style)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, pad=0.02)
    bar.set_label(colorbar["title"]["text"])
    if "tickvals" in colorbar:
        bar.set_ticks(colorbar["tickvals"], labels=colorbar["ticktext"])


def atlas_png(result: Any, path: str | Path, *, dpi: int = 150) -> Path:
    """A static picture of the map (matplotlib, Agg): points coloured as in the HTML, top tokens named."""
    # The object-oriented API with the Agg canvas: no pyplot (saves its import and any GUI backend).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xyz = np.asarray(result.coords, dtype=np.float32)
    three_d = xyz.shape[1] == 3
    colors, colorbar = color_values(result)
    sizes = marker_sizes(result, three_d=three_d)
    fig = Figure(figsize=(11, 9), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=0.92)
    if three_d:
        import mpl_toolkits.mplot3d  # noqa: F401  (registers the 3d projection)
    try:
        ax = fig.add_subplot(projection="3d") if three_d else fig.add_subplot()
        _draw_points(fig, ax, xyz, colors, colorbar, sizes)
        rows = label_rows(result)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing glyphs (CJK, emoji) in the default font
            for r in rows:
                pos = xyz[r]
                style = {"fontsize": 8, "parse_math": False,
                         "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7}}
                if three_d:
                    ax.text(float(pos[0]), float(pos[1]), float(pos[2]), result.display[r], **style)
                else:
                    ax.annotate(result.display[r], (float(pos[0]), float(pos[1])), xytext=(3, 3),
                                textcoords="offset points", **style)
            import textwrap

            line1, line2 = result.title_lines()
            ax.set_title("\n".join([line1, *textwrap.wrap(line2, 100)]), fontsize=11, loc="left", parse_math=False)
            axis = _AXIS_NAMES.get(result.method, "dim ")
            ax.set_xlabel(f"{axis}1")
            ax.set_ylabel(f"{axis}2")
            if three_d:
                ax.set_zlabel(f"{axis}3")
            elif result.method == "pca":
                ax.set_aspect("equal", adjustable="datalim")
            fig.savefig(path, format="png", dpi=dpi)  # no bbox_inches="tight": it draws everything twice
    finally:
        fig.clear()
    return Path(path)
