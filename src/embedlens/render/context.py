"""Figures of a :class:`~embedlens.contextual.mapping.ContextMap`: Plotly (HTML) and matplotlib (PNG).

Points are coloured by text (or, for corpus occurrences, by how the word is written), labelled with
readable tokens, and the ``--focus`` word is drawn larger with an outline. With several layers there is
one map per model with a layer slider, and each token's path through the layers is a thin line. Every
string that comes from a tokenizer or a corpus goes through :func:`~embedlens.render.offline.plotly_text`.
Rendering never computes anything: it only draws the coordinates it is given.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

from .offline import plotly_text, plotly_texts


class DrawnPanel(Protocol):
    """What a figure reads of one model's map (a :class:`~embedlens.contextual.mapping.ContextPanel` is one):
    its point table (layer-major), the coordinates of its rows, and how many points each layer has."""

    table: dict[str, Any]
    coords: np.ndarray

    @property
    def n_per_layer(self) -> int: ...

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
LABEL_LIMIT = 150  # points per panel and layer above which tokens are shown on hover only
_SNIPPET_SIDE = 70


def _groups(cmap: Any) -> list[str]:
    seen: dict[str, None] = {}
    for p in cmap.panels:
        for g in p.table["group"][: p.n_per_layer]:
            seen.setdefault(g, None)
    return list(seen)


def group_colors(cmap: Any) -> dict[str, str]:
    """Each group's (text's, or written form's) colour, in order of first appearance."""
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(_groups(cmap))}


def _wrap(text: str, width: int = 80) -> str:
    """Escaped text with ``<br>`` between lines of about ``width`` characters (hover boxes stay narrow)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "<br>".join(plotly_text(x) for x in lines)


def _snippet(snippet: str, start: int, end: int) -> str:
    """The snippet around ``snippet[start:end]`` (the word, shown bold), escaped and wrapped."""
    lo, hi = max(0, start - _SNIPPET_SIDE), min(len(snippet), end + _SNIPPET_SIDE)
    left = ("…" if lo > 0 else "") + snippet[lo:start]
    right = snippet[end:hi] + ("…" if hi < len(snippet) else "")
    marker = "\x00"
    wrapped = _wrap(re.sub(r"\s+", " ", left + marker + snippet[start:end] + marker + right))
    parts = wrapped.split(marker)
    if len(parts) == 3:
        return f"{parts[0]}<b>{parts[1]}</b>{parts[2]}"
    return wrapped.replace(marker, "")


def point_hover_parts(cmap: Any, panel: DrawnPanel) -> tuple[list[str], list[str], list[str]]:
    """What a point's hover text says on every layer (escaped): the part before the layer number, the
    part after it, and the snippet. Built once per point, not once per point and layer."""
    t = panel.table
    before, after, snips = [], [], []
    for r in range(panel.n_per_layer):  # rows of the first layer: one per point
        before.append(f"<b>{plotly_text(t['display'][r])}</b> · layer ")
        if cmap.kind == "occurrences":
            after.append(f" · occurrence {int(t['text'][r]) + 1}")
        else:
            after.append(f" · text {int(t['text'][r]) + 1} · position {int(t['position'][r])} · id {int(t['token_id'][r])}")
        snips.append(_snippet(t["snippet"][r], int(t["snippet_start"][r]), int(t["snippet_end"][r])))
    return before, after, snips


def hover_texts(cmap: Any, panel: DrawnPanel, rows: np.ndarray,
                parts: tuple[list[str], list[str], list[str]] | None = None) -> list[str]:
    """Hover text of the given rows of a panel's table (escaped); ``parts`` from :func:`point_hover_parts`."""
    t = panel.table
    before, after, snips = parts or point_hover_parts(cmap, panel)
    n = panel.n_per_layer
    decoded = decoded_lines(t, rows)
    out = []
    for j, r in enumerate(rows.tolist()):  # rows are layer-major: row r is point r % n
        i = r % n
        stability = f" · stability {float(t['stability'][r]):.2f}" if "stability" in t else ""
        out.append(f"{before[i]}{int(t['layer'][r])}{after[i]}{stability}{decoded[j]}<br>{snips[i]}")
    return out


def decoded_lines(table: dict[str, Any], rows: np.ndarray) -> list[str]:
    """``<br>logit lens: a 0.41 · b 0.12 · c 0.05`` per row (escaped): what the point decodes to at its layer
    (see :mod:`embedlens.contextual.decoded_top`); empty strings when the table has no decoded columns."""
    if "decoded_display" not in table:
        return [""] * len(rows)
    shown = np.asarray(plotly_texts(table["decoded_display"][rows].reshape(-1).tolist()), dtype=object)
    probs = np.char.mod("%.2f", table["decoded_probs"][rows].astype(np.float64).reshape(-1)).astype(object)
    cells = (shown + " " + probs).reshape(len(rows), -1)
    name = "tuned lens" if "decoded_tuned" in table and bool(np.any(table["decoded_tuned"])) else "logit lens"
    return [f"<br>{name}: " + " · ".join(c) for c in cells.tolist()]


def _scatter(dims: int, coords: np.ndarray, **kw: Any) -> Any:
    import plotly.graph_objects as go

    if dims == 3:
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **kw)
    return go.Scattergl(x=coords[:, 0], y=coords[:, 1], **kw) if len(coords) > 2000 else go.Scatter(
        x=coords[:, 0], y=coords[:, 1], **kw)


def _trajectories(panel: DrawnPanel, rows_by_point: np.ndarray) -> np.ndarray:
    """Coordinates of every point's path through the layers, paths separated by NaN rows."""
    n_l, n = rows_by_point.shape
    c = panel.coords[rows_by_point.T.reshape(-1)].reshape(n, n_l, -1)
    gap = np.full((n, 1, c.shape[2]), np.nan, dtype=np.float32)
    return np.concatenate([c, gap], axis=1).reshape(-1, c.shape[2])


def context_figure(cmap: Any) -> Any:
    """The interactive figure: one panel per model, a layer slider when several layers are kept."""
    from plotly.subplots import make_subplots

    dims = cmap.dims
    n_panels = len(cmap.panels)
    titles = _panel_titles(cmap)
    specs = [[{"type": "scene" if dims == 3 else "xy"} for _ in range(n_panels)]]
    fig = make_subplots(rows=1, cols=n_panels, specs=specs, subplot_titles=titles if n_panels > 1 else None,
                        horizontal_spacing=0.04)
    groups = _groups(cmap)
    color = group_colors(cmap)
    n_slots = max(len(p.layers) for p in cmap.panels)
    slot_traces: list[list[int]] = [[] for _ in range(n_slots)]
    always: list[int] = []
    legend_done: set[str] = set()
    for pi, p in enumerate(cmap.panels):
        t = p.table
        n = p.n_per_layer
        grp = np.asarray(t["group"][:n], dtype=object)
        focus = np.asarray(t["focus"][:n], dtype=bool)
        rows_by_point = np.arange(len(p.layers) * n).reshape(len(p.layers), n)
        cell = {"row": 1, "col": pi + 1}
        parts = point_hover_parts(cmap, p)
        if len(p.layers) > 1:
            paths = _trajectories(p, rows_by_point)
            for g in groups:
                sel = np.flatnonzero(grp == g)
                if sel.size == 0:
                    continue
                seg = paths.reshape(n, len(p.layers) + 1, -1)[sel].reshape(-1, paths.shape[1])
                fig.add_trace(_scatter(dims, seg, mode="lines", line={"color": color[g], "width": 1}, opacity=0.35,
                                       hoverinfo="skip", showlegend=False, legendgroup=plotly_text(g),
                                       name=plotly_text(f"{g} path")), **cell)
                always.append(len(fig.data) - 1)
        for s in range(n_slots):
            li = min(s, len(p.layers) - 1)
            rows = rows_by_point[li]
            label = n <= LABEL_LIMIT
            for g in groups:
                sel = rows[grp == g]
                if sel.size == 0:
                    continue
                show = g not in legend_done
                legend_done.add(g)
                fig.add_trace(_scatter(
                    dims, p.coords[sel], mode="markers+text" if label else "markers",
                    marker={"color": color[g], "size": 7 if dims == 2 else 4, "opacity": 0.85},
                    text=[plotly_text(x) for x in (t["display"][i] for i in sel.tolist())] if label else None,
                    textposition="top center", textfont={"size": 10},
                    hovertext=hover_texts(cmap, p, sel, parts), hovertemplate="%{hovertext}<extra></extra>",
                    name=plotly_text(g), legendgroup=plotly_text(g), showlegend=show, visible=(s == 0)), **cell)
                slot_traces[s].append(len(fig.data) - 1)
            if cmap.focus and focus.any():
                sel = rows[focus]
                fig.add_trace(_scatter(
                    dims, p.coords[sel], mode="markers",
                    marker={"size": 13 if dims == 2 else 7, "color": "rgba(0,0,0,0)",
                            "line": {"color": "black", "width": 2}, "symbol": "circle-open" if dims == 3 else "circle"},
                    hoverinfo="skip", name=plotly_text(f"focus: {cmap.focus}"), legendgroup="focus",
                    showlegend=("focus" not in legend_done), visible=(s == 0)), **cell)
                legend_done.add("focus")
                slot_traces[s].append(len(fig.data) - 1)
    if n_slots > 1:
        fig.update_layout(sliders=[_layer_slider(cmap, len(fig.data), always, slot_traces)])
    fig.update_layout(
        title={"text": f"{plotly_text(cmap.title())}<br><sup>{plotly_text(cmap.subtitle())}</sup>"},
        template="plotly_white", height=720 if dims == 3 else 640, legend={"itemsizing": "constant"},
        margin={"l": 40, "r": 20, "t": 90, "b": 40},
    )
    return fig


def _panel_titles(cmap: Any) -> list[str]:
    """Each panel's title (escaped): the model's alias, and with several models how it was aligned."""
    titles = []
    for p in cmap.panels:
        al = p.alignment or {}
        extra = "" if len(cmap.panels) == 1 else (
            " (reference)" if al.get("reference") else
            f" (aligned to {al.get('aligned_to')})" if al.get("aligned") else " (unaligned)")
        titles.append(plotly_text(p.alias + extra))
    return titles


def _layer_slider(cmap: Any, n_traces: int, always: list[int], slot_traces: list[list[int]]) -> dict[str, Any]:
    """A slider with one step per layer slot: it shows the ``always`` traces and that slot's, hides the rest."""
    steps = []
    for s, shown in enumerate(slot_traces):
        visible = [False] * n_traces
        for i in always + shown:
            visible[i] = True
        label = " / ".join(str(p.layers[min(s, len(p.layers) - 1)]) for p in cmap.panels)
        steps.append({"method": "update", "label": label, "args": [{"visible": visible}]})
    return {"active": 0, "steps": steps, "currentvalue": {"prefix": "layer "}, "pad": {"t": 40}}


def _png_slots(n_layers: int, limit: int = 6) -> list[int]:
    if n_layers <= limit:
        return list(range(n_layers))
    return sorted(set(np.linspace(0, n_layers - 1, limit).round().astype(int).tolist()))


def context_png(cmap: Any, path: Any) -> None:
    """A static PNG (matplotlib Agg): small multiples of a few layers per model, paths as lines."""
    import warnings

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = _groups(cmap)
    color = group_colors(cmap)
    n_panels = len(cmap.panels)
    slots = _png_slots(max(len(p.layers) for p in cmap.panels))
    nrows, ncols = n_panels, len(slots)
    proj = "3d" if cmap.dims == 3 else None
    fig = plt.figure(figsize=(4.2 * ncols + 1.5, 4.0 * nrows + 0.8), dpi=110)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs for rare token characters
        for pi, p in enumerate(cmap.panels):
            t = p.table
            n = p.n_per_layer
            grp = np.asarray(t["group"][:n], dtype=object)
            focus = np.asarray(t["focus"][:n], dtype=bool)
            rows_by_point = np.arange(len(p.layers) * n).reshape(len(p.layers), n)
            for si, s in enumerate(slots):
                li = min(s, len(p.layers) - 1)
                ax = fig.add_subplot(nrows, ncols, pi * ncols + si + 1, projection=proj)
                rows = rows_by_point[li]
                c = p.coords
                if len(p.layers) > 1:
                    upto = rows_by_point[: li + 1]  # the path so far
                    paths = c[upto.T.reshape(-1)].reshape(n, li + 1, -1)
                    for g in groups:
                        for line in paths[grp == g][:400]:
                            ax.plot(*[line[:, k] for k in range(cmap.dims)], color=color[g], lw=0.5, alpha=0.3)
                for g in groups:
                    sel = rows[grp == g]
                    if sel.size:
                        ax.scatter(*[c[sel, k] for k in range(cmap.dims)], s=12 if n > LABEL_LIMIT else 22,
                                   color=color[g], alpha=0.8, label=g.replace("$", r"\$") if (pi == 0 and si == 0) else None)
                if focus.any() and cmap.focus:
                    sel = rows[focus]
                    ax.scatter(*[c[sel, k] for k in range(cmap.dims)], s=70, facecolors="none", edgecolors="black",
                               linewidths=1.2)
                if n <= 60:
                    for r in rows.tolist():
                        ax_text = (c[r, 0], c[r, 1]) if cmap.dims == 2 else (c[r, 0], c[r, 1], c[r, 2])
                        ax.text(*ax_text, t["display"][r], fontsize=7, parse_math=False)
                name = p.alias if len(slots) == 1 else f"{p.alias} · layer {p.layers[li]}"
                ax.set_title(name, fontsize=9, parse_math=False)
                ax.tick_params(labelsize=7)
        if len(groups) <= 12:
            fig.legend(loc="lower center", ncol=min(len(groups), 6), fontsize=8, frameon=False)
        fig.suptitle(f"{cmap.title()}\n{cmap.subtitle()}", fontsize=9, parse_math=False)
        fig.tight_layout(rect=(0, 0.05, 1, 0.94))
        fig.savefig(path, format="png")
    plt.close(fig)
