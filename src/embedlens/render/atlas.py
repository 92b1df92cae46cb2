"""Drawing a vocabulary atlas: an interactive Plotly figure (WebGL) and a static matplotlib PNG.

Takes an :class:`~embedlens.atlas.AtlasResult` and computes nothing but colours and sizes. Token
strings are untrusted: everything Plotly draws as text goes through :func:`~embedlens.render.offline.plotly_text`
(Plotly understands a few tags such as ``<br>`` in text and decodes entities, so an escaped ``<script>``
token shows literally), and matplotlib text is drawn with math parsing off (a ``$`` token stays a ``$``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .framing import bulk_bounds
from .labels import BESIDE, RINGS, place_labels
from .offline import plotly_text, plotly_texts

COLORSCALE = "Viridis"
_AXIS_NAMES = {"pca": "PC", "tsne": "t-SNE ", "umap": "UMAP "}


def color_values(result: Any) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Marker colours (one float per point) and the colour bar settings for ``result.color``.

    ``faithfulness`` colours by each point's local recall (0: none of its true neighbours nearby on the map,
    1: all); without a measured local recall, and ``frequency`` without counts, fall back to token length.
    """
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
    if result.color == "faithfulness" and getattr(result, "local_recall", None) is not None:
        k = (result.params.get("local_recall") or {}).get("k", 10)
        return np.asarray(result.local_recall, dtype=np.float32), {"title": {"text": f"local recall@{k}"},
                                                                    "range": (0.0, 1.0)}
    if result.color in ("frequency", "length", "faithfulness"):
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


def category_groups(result: Any) -> list[tuple[str, str, np.ndarray]]:
    """``(class name, colour, point indices)`` of each class present of a categorical colouring (writing
    system, part of speech: :meth:`~embedlens.atlas.AtlasResult.categories`), in class order."""
    _, names, colors, classes = result.categories()
    order = np.argsort(classes, kind="stable")
    bounds = np.searchsorted(classes[order], np.arange(len(names) + 1))
    return [(names[c], colors[c], order[bounds[c]: bounds[c + 1]])
            for c in range(len(names)) if bounds[c + 1] > bounds[c]]


def axis_titles(result: Any) -> list[str]:
    """Plain-text axis titles: ``UMAP 1``..., or for word axes ``␣man → ␣woman`` (not escaped)."""
    if result.method == "axes":
        axes = result.params.get("axes", {})
        return [f"{axes[a]['display'][0]} → {axes[a]['display'][1]}" if a in axes else
                "principal direction of the rest" for a in "xyz"[: result.dims]]
    axis = _AXIS_NAMES.get(result.method, "dim ")
    return [f"{axis}{k + 1}" for k in range(result.dims)]


def hover_texts(result: Any) -> np.ndarray:
    """Each point's escaped readable token (and, on a clustered map, its cluster's label), an object array."""
    text = np.asarray(plotly_texts(list(result.display)), dtype=object)
    clustering = getattr(result, "clustering", None)
    if clustering is not None and len(clustering):
        names = np.asarray(["", *plotly_texts([f"cluster {c.id}: {c.label}" for c in clustering.clusters])], dtype=object)
        lines = names[np.asarray(clustering.assignment, dtype=np.int64) + 1]
        text = np.where(lines == "", text, text + "<br>" + lines)
    return text


def hover(result: Any, rows: np.ndarray | None = None, texts: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray, str]:
    """Hover text (:func:`hover_texts`, or ``texts`` already made), custom data (id[, frequency]) and the
    hover template, for the points ``rows`` (default all).

    The text is an object array, not a list: Plotly validates and deep-copies a list string by string
    (most of a second for 49k tokens), an array in one go.
    """
    rows = np.arange(len(result.ids)) if rows is None else rows
    text = (hover_texts(result) if texts is None else texts)[rows]
    ids = np.asarray(result.ids, dtype=np.int64)[rows]
    if result.frequencies is not None:
        custom = np.column_stack([ids, np.asarray(result.frequencies, dtype=np.int64)[rows]])
        template = "%{text}<br>id %{customdata[0]}<br>frequency %{customdata[1]:,}<extra></extra>"
    else:
        custom = ids.reshape(-1, 1)
        template = "%{text}<br>id %{customdata[0]}<extra></extra>"
    return text, custom, template


# nominal size of the Plotly plot area (px): where cluster labels are placed so they do not overlap
PLOT_WIDTH, PLOT_HEIGHT, LABEL_FONT = 1040, 700, 12
MAX_3D_LABELS = 20


def cluster_label_boxes(result: Any, *, width: float = PLOT_WIDTH, height: float = PLOT_HEIGHT,
                        font: float = LABEL_FONT) -> tuple[np.ndarray, float, np.ndarray]:
    """Placed label boxes (m, 4) in nominal plot pixels (NaN: dropped), pixels per map unit, framed minimum.

    The Plotly map keeps x and y at one scale and frames the bulk of the points (:func:`bulk_bounds`), so a
    map unit is ``scale`` pixels on both axes; text width is estimated at 0.6 em per character. A label
    sits on its cluster's median or, where that is taken, close by (with a leader line).
    """
    clustering = result.clustering
    bounds = bulk_bounds(np.asarray(result.coords, dtype=np.float64)[:, :2])
    lo, span = bounds[:, 0], np.maximum(bounds[:, 1] - bounds[:, 0], 1e-12)
    scale = float(min(width / span[0], height / span[1]))
    centres = np.array([c.center[:2] for c in clustering.clusters], dtype=np.float64).reshape(-1, 2)
    anchors = (centres - lo) * scale
    sizes = np.array([[0.6 * font * max(len(c.label), 1) + 8, 1.6 * font] for c in clustering.clusters]).reshape(-1, 2)
    boxes = place_labels(anchors, sizes, candidates=[RINGS] * len(anchors), bounds=(0, 0, span[0] * scale, span[1] * scale))
    return boxes, scale, lo


def cluster_annotations(result: Any) -> list[dict[str, Any]]:
    """Plotly annotations naming the clusters at their centres (2-D: placed so that none overlap)."""
    clustering = getattr(result, "clustering", None)
    if clustering is None or not len(clustering):
        return []
    style = {"showarrow": False, "font": {"size": LABEL_FONT, "color": "#111"}, "bgcolor": "rgba(255,255,255,0.78)",
             "bordercolor": "rgba(80,80,80,0.5)", "borderwidth": 1, "borderpad": 2}
    if result.dims == 3:
        return [{"x": c.center[0], "y": c.center[1], "z": c.center[2], "text": plotly_text(c.label), **style}
                for c in clustering.clusters[:MAX_3D_LABELS]]
    boxes, scale, lo = cluster_label_boxes(result)
    out = []
    for c, box in zip(clustering.clusters, boxes, strict=True):  # a loop over clusters
        if np.isnan(box[0]):
            continue
        centre = lo + np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) / scale
        note = {"x": float(centre[0]), "y": float(centre[1]), "xref": "x", "yref": "y", "text": plotly_text(c.label),
                **style}
        anchor = (np.asarray(c.center[:2]) - lo) * scale
        if not (box[0] <= anchor[0] <= box[2] and box[1] <= anchor[1] <= box[3]):  # displaced: a leader line
            note.update(showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor="rgba(60,60,60,0.7)", axref="x",
                        ayref="y", ax=float(centre[0]), ay=float(centre[1]), x=float(c.center[0]), y=float(c.center[1]))
        out.append(note)
    return out


def atlas_figure(result: Any) -> Any:
    """The interactive map: ``Scattergl`` in 2-D, ``Scatter3d`` in 3-D, hover = token, id, frequency, cluster;
    cluster labels as annotations; a categorical colouring (``script``, ``pos``) draws one trace (and legend
    entry) per class."""
    import plotly.graph_objects as go

    xyz = np.asarray(result.coords, dtype=np.float32)
    three_d = xyz.shape[1] == 3
    sizes = marker_sizes(result, three_d=three_d)
    groups: list[tuple[str, Any, np.ndarray]]
    categories = result.categories()
    if categories is not None:
        groups = [(name, color, rows) for name, color, rows in category_groups(result)]
    else:
        groups = [("tokens", None, np.arange(xyz.shape[0]))]
    fig = go.Figure()
    texts = hover_texts(result)
    for name, color, rows in groups:
        marker: dict[str, Any] = {"size": sizes if np.ndim(sizes) == 0 else np.asarray(sizes)[rows], "opacity": 0.8,
                                  "line": {"width": 0}}
        if color is not None:
            marker["color"] = color
        else:
            colors, colorbar = color_values(result)
            if colors is not None:
                bar = {k: v for k, v in colorbar.items() if k != "range"}
                marker.update(color=colors, colorscale=COLORSCALE, showscale=True, colorbar=bar)
                if "range" in colorbar:
                    marker.update(cmin=colorbar["range"][0], cmax=colorbar["range"][1])
            else:
                marker.update(color="#3b6ea8")
        text, custom, template = hover(result, rows, texts)
        common = {"mode": "markers", "marker": marker, "text": text, "customdata": custom, "hovertemplate": template,
                  "name": plotly_text(name)}
        if three_d:
            fig.add_trace(go.Scatter3d(x=xyz[rows, 0], y=xyz[rows, 1], z=xyz[rows, 2], **common))
        else:
            fig.add_trace(go.Scattergl(x=xyz[rows, 0], y=xyz[rows, 1], **common))
    line1, line2 = result.title_lines()
    titles = [plotly_text(t) for t in axis_titles(result)]
    ticks = result.method in ("pca", "axes")
    fig.update_layout(
        title={"text": f"{plotly_text(line1)}<br><sup>{plotly_text(line2)}</sup>", "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=820,
        margin={"l": 30, "r": 30, "t": 80, "b": 30},
        hovermode="closest",
        hoverlabel={"font": {"family": "monospace"}},
        showlegend=len(groups) > 1,
        legend={"itemsizing": "constant", "title": {"text": categories[0] if categories else ""}}
        if len(groups) > 1 else None,
    )
    notes = cluster_annotations(result)
    if three_d:
        fig.update_layout(scene={"xaxis": {"title": {"text": titles[0]}}, "yaxis": {"title": {"text": titles[1]}},
                                 "zaxis": {"title": {"text": titles[2]}}, "aspectmode": "data",
                                 "annotations": notes})
    else:
        frame = bulk_bounds(xyz[:, :2]) if len(xyz) else np.array([[-1.0, 1.0], [-1.0, 1.0]])
        fig.update_xaxes(title={"text": titles[0]}, zeroline=False, showticklabels=ticks, range=frame[0].tolist())
        fig.update_yaxes(title={"text": titles[1]}, zeroline=False, scaleanchor="x", scaleratio=1,
                         showticklabels=ticks, range=frame[1].tolist())
        fig.update_layout(annotations=notes)
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


def _label_anchors(fig: Any, ax: Any, points: np.ndarray) -> np.ndarray:
    """Display-pixel positions (m, 2) of map points (2-D or 3-D) on ``ax`` as it will be drawn."""
    if points.shape[1] == 3:
        from mpl_toolkits.mplot3d import proj3d

        x, y, _ = proj3d.proj_transform(points[:, 0], points[:, 1], points[:, 2], ax.get_proj())
        return ax.transData.transform(np.column_stack([x, y]))
    return ax.transData.transform(points[:, :2])


def _place_png_labels(fig: Any, ax: Any, result: Any, xyz: np.ndarray, dpi: int) -> tuple[list[Any], np.ndarray]:
    """Cluster labels (bold, centred, largest cluster first) then the top tokens, placed by one collision
    pass in display pixels: a label that would overlap one already placed moves, or is left out.

    Returns the drawn ``Text`` artists and their boxes (display pixels, x0, y0, x1, y1).
    """
    from matplotlib.lines import Line2D
    from matplotlib.transforms import IdentityTransform

    items: list[tuple[str, np.ndarray, dict[str, Any], tuple]] = []
    clustering = getattr(result, "clustering", None)
    if clustering is not None and len(clustering):
        centres = np.array([c.center for c in clustering.clusters], dtype=np.float64)
        for c, anchor in zip(clustering.clusters, centres, strict=True):
            items.append((c.label, anchor, {"fontsize": 9, "fontweight": "bold"}, RINGS))
    for r in label_rows(result):
        items.append((result.display[r], xyz[r].astype(np.float64), {"fontsize": 8}, BESIDE))
    if not items:
        return [], np.zeros((0, 4))
    if xyz.shape[1] == 2:
        ax.apply_aspect()
    renderer = fig.canvas.get_renderer()
    anchors = _label_anchors(fig, ax, np.array([it[1] for it in items]))
    texts, sizes = [], []
    pad = 0.2
    for text, _, style, _ in items:  # a loop over labels (clusters + 25 tokens)
        t = fig.text(0, 0, text, transform=IdentityTransform(), ha="center", va="center", parse_math=False,
                     bbox={"boxstyle": f"round,pad={pad}", "fc": "white", "ec": "#999", "lw": 0.4, "alpha": 0.85},
                     **style)
        extent = t.get_window_extent(renderer)
        grow = 2 * pad * style["fontsize"] * dpi / 72  # the bbox patch around the text
        texts.append(t)
        sizes.append((extent.width + grow, extent.height + grow))
    frame = ax.get_window_extent(renderer)
    # a label whose anchor (cluster median, token) lies outside the framed view is left out
    outside = ((anchors[:, 0] < frame.x0) | (anchors[:, 0] > frame.x1) | (anchors[:, 1] < frame.y0)
               | (anchors[:, 1] > frame.y1))
    anchors = np.where(outside[:, None], np.nan, anchors)
    boxes = place_labels(anchors, np.array(sizes), candidates=[it[3] for it in items],
                         bounds=(frame.x0, frame.y0, frame.x1, frame.y1), pad=2.0)
    drawn, kept = [], []
    for t, box, anchor, item in zip(texts, boxes, anchors, items, strict=True):  # a loop over labels
        if np.isnan(box[0]):
            t.remove()
            continue
        t.set_position(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
        if item[3] is RINGS and not (box[0] <= anchor[0] <= box[2] and box[1] <= anchor[1] <= box[3]):
            end = np.clip(anchor, box[:2], box[2:])  # displaced: a leader line from the median to the box
            fig.add_artist(Line2D([anchor[0], end[0]], [anchor[1], end[1]], transform=IdentityTransform(),
                                  color="#555", lw=0.6, alpha=0.8))
        drawn.append(t)
        kept.append(box)
    return drawn, np.array(kept).reshape(-1, 4)


def draw_atlas(result: Any, *, dpi: int = 150) -> tuple[Any, list[Any], np.ndarray]:
    """The static picture as a matplotlib ``Figure`` (Agg), with its label artists and their placed boxes."""
    # The object-oriented API with the Agg canvas: no pyplot (saves its import and any GUI backend).
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xyz = np.asarray(result.coords, dtype=np.float32)
    three_d = xyz.shape[1] == 3
    sizes = marker_sizes(result, three_d=three_d)
    fig = Figure(figsize=(11, 9), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=0.92)
    if three_d:
        import mpl_toolkits.mplot3d  # noqa: F401  (registers the 3d projection)
    ax = fig.add_subplot(projection="3d") if three_d else fig.add_subplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs (CJK, emoji) in the default font
        categories = result.categories()
        if categories is not None:
            style = {"linestyle": "none", "marker": "o", "markeredgewidth": 0, "alpha": 0.75, "rasterized": True}
            for name, color, rows in category_groups(result):  # a loop over classes
                ax.plot(*(xyz[rows, i] for i in range(xyz.shape[1])), color=color, label=name,
                        markersize=float(np.mean(sizes)) * 0.7, **style)
            ax.legend(loc="upper right", fontsize=8, markerscale=3, title=categories[0], framealpha=0.85)
        else:
            colors, colorbar = color_values(result)
            _draw_points(fig, ax, xyz, colors, colorbar, sizes)
        line1, line2 = result.title_lines()
        ax.set_title("\n".join([line1, *textwrap.wrap(line2, 100)]), fontsize=11, loc="left", parse_math=False)
        titles = axis_titles(result)
        ax.set_xlabel(titles[0], parse_math=False)
        ax.set_ylabel(titles[1], parse_math=False)
        frame = bulk_bounds(xyz)  # the bulk of the points, as the interactive map frames it
        ax.set_xlim(*frame[0])
        ax.set_ylim(*frame[1])
        if three_d:
            ax.set_zlim(*frame[2])
            ax.set_zlabel(titles[2], parse_math=False)
        elif result.method == "pca":
            ax.set_aspect("equal", adjustable="datalim")
        texts, boxes = _place_png_labels(fig, ax, result, xyz, dpi)
    return fig, texts, boxes


def atlas_png(result: Any, path: str | Path, *, dpi: int = 150) -> Path:
    """A static picture of the map (matplotlib, Agg): points coloured as in the HTML, clusters and top
    tokens named without overlapping labels."""
    fig, _, _ = draw_atlas(result, dpi=dpi)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.savefig(path, format="png", dpi=dpi)  # no bbox_inches="tight": it draws everything twice
    finally:
        fig.clear()
    return Path(path)
