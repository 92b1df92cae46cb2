"""``graph.html``: an embedding graph as one self-contained, offline Plotly page.

Nodes are drawn at their layout positions with their readable token as label (escaped with
:func:`~embedlens.render.offline.plotly_text`, so ``<script>`` or ``[/b]`` tokens show literally); seeds
are larger and red. Edge width grows with the cosine (edges are bucketed into a few widths, one trace
each, since a Plotly line has one width); hovering a node shows its token, id and best edge score, and
hovering the middle of an edge shows both ends and the score. Drag pans, the wheel zooms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..cache import write_text_atomic
from ..errors import EmbedlensError
from .offline import html_text, plotly_text

WIDTHS = (0.6, 1.2, 2.0, 3.0, 4.2)
SEED_COLOR, NODE_COLOR, EDGE_COLOR, MUTUAL_COLOR = "#d62728", "#1f77b4", "rgba(90,90,90,0.45)", "rgba(44,160,44,0.55)"


def graph_figure(graph: Any, *, title: str | None = None) -> Any:
    """A ``plotly.graph_objects.Figure`` of a laid-out :class:`~embedlens.graph.build.TokenGraph`."""
    import plotly.graph_objects as go

    if graph.positions is None:
        raise EmbedlensError("the graph has no layout yet; call embedlens.graph.layout_graph first")
    pos = np.asarray(graph.positions, dtype=float)
    index = {nd.id: i for i, nd in enumerate(graph.nodes)}
    label = [plotly_text(nd.display) for nd in graph.nodes]
    fig = go.Figure()

    if graph.edges:
        src = np.array([index[e.source] for e in graph.edges])
        dst = np.array([index[e.target] for e in graph.edges])
        score = np.array([e.score for e in graph.edges], dtype=float)
        mutual = np.array([e.kind == "mutual" for e in graph.edges])
        lo, hi = float(score.min()), float(score.max())
        bucket = np.zeros(score.size, dtype=int) if hi - lo < 1e-9 else np.minimum(
            ((score - lo) / (hi - lo) * len(WIDTHS)).astype(int), len(WIDTHS) - 1)
        shown: set[bool] = set()
        for is_mutual in (False, True):
            for b, width in enumerate(WIDTHS):
                sel = np.flatnonzero((bucket == b) & (mutual == is_mutual))
                if sel.size == 0:
                    continue
                xs = np.full(sel.size * 3, np.nan)
                ys = np.full(sel.size * 3, np.nan)
                xs[0::3], xs[1::3] = pos[src[sel], 0], pos[dst[sel], 0]
                ys[0::3], ys[1::3] = pos[src[sel], 1], pos[dst[sel], 1]
                fig.add_trace(go.Scatter(
                    x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=is_mutual not in shown,
                    name="mutual top-k" if is_mutual else "seed → neighbour (wider: higher cosine)",
                    line={"width": width, "color": MUTUAL_COLOR if is_mutual else EDGE_COLOR},
                    legendgroup="mutual" if is_mutual else "edges",
                ))
                shown.add(is_mutual)
        mid = (pos[src] + pos[dst]) / 2
        fig.add_trace(go.Scatter(
            x=mid[:, 0], y=mid[:, 1], mode="markers", marker={"size": 6, "opacity": 0}, showlegend=False,
            name="edges", hoverinfo="text",
            hovertext=[f"{label[a]} — {label[b]}<br>cosine {s:.4f} ({e.kind})"
                       for a, b, s, e in zip(src, dst, score, graph.edges, strict=True)],
        ))

    seeds = np.array([nd.is_seed for nd in graph.nodes], dtype=bool)
    for is_seed in (False, True):
        sel = np.flatnonzero(seeds == is_seed)
        if sel.size == 0:
            continue
        hover = []
        for i in sel:
            nd = graph.nodes[i]
            ident = f"id {nd.id}" if nd.kind == "token" else "ids " + ", ".join(map(str, nd.token_ids))
            best = "" if nd.best_score is None else f"<br>best edge cosine {nd.best_score:.4f}"
            hover.append(f"{label[i]}<br>{ident}{'<br>seed' if is_seed else ''}{best}")
        fig.add_trace(go.Scatter(
            x=pos[sel, 0], y=pos[sel, 1], mode="markers+text", name="seeds" if is_seed else "neighbours",
            text=[f"<b>{label[i]}</b>" if is_seed else label[i] for i in sel], textposition="top center",
            textfont={"size": 13 if is_seed else 10, "color": SEED_COLOR if is_seed else "#333"},
            marker={"size": 14 if is_seed else 7, "color": SEED_COLOR if is_seed else NODE_COLOR,
                    "line": {"width": 1, "color": "white"}},
            hoverinfo="text", hovertext=hover,
        ))
    st = graph.stats
    heading = title or f"{graph.space}: {st.seeds} seeds, {st.nodes} nodes, {st.edges} edges (k={graph.params.get('k')})"
    fig.update_layout(
        title={"text": plotly_text(heading)}, dragmode="pan", hovermode="closest", template="plotly_white",
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
        legend={"orientation": "h", "y": -0.02}, margin={"l": 10, "r": 10, "t": 50, "b": 10}, height=850,
    )
    return fig


def write_graph_html(graph: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Write ``graph.html`` atomically (Plotly's JS embedded: opens offline)."""
    import plotly.io as pio

    fig = graph_figure(graph, title=title)
    html = pio.to_html(fig, include_plotlyjs=True, full_html=True,
                       config={"displaylogo": False, "responsive": True, "scrollZoom": True})
    page_title = html_text(title or f"embedlens graph · {graph.space}")
    html = html.replace("<head>", f"<head><meta charset=\"utf-8\"><title>{page_title}</title>", 1)
    return write_text_atomic(path, html)
