"""Drawing the logit lens: an offline Plotly heatmap (HTML), a matplotlib PNG, and the rank-curve PNG.

Rows are layers (0 = input embeddings at the bottom), columns the prompt's readable tokens; each cell shows
its top-1 decoded token and is coloured by that token's probability, or (``color="rank"``) by log10 of the
rank the text's actual next token has at that layer. Hover shows the top-k with probabilities, the input
token, the next token and its rank. Two models are drawn side by side; when their depths differ, the y axis
is the fraction of depth (layer / n_layers). Every token string goes through
:func:`~embedlens.render.offline.plotly_texts`; nothing here computes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path
from ..errors import EmbedlensError
from .offline import plotly_text, plotly_texts, write_plotly_html

COLORS = ("prob", "rank")
MAX_LABEL_CHARS = 6


def _short(values: np.ndarray, limit: int = MAX_LABEL_CHARS) -> list[str]:
    return [v if len(v) <= limit else v[: limit - 1] + "…" for v in values.tolist()]


def check_color(color: str) -> str:
    if color not in COLORS:
        raise EmbedlensError(f"unknown colour '{color}': use prob (the top-1 probability) or rank (the next token's log rank)")
    return color


def same_depth(results: Sequence[Any]) -> bool:
    return len({r.n_layers for r in results}) == 1


def y_values(result: Any, by_depth: bool) -> list[float]:
    return result.depth().round(6).tolist() if by_depth else [int(v) for v in result.layers]


def cell_values(result: Any, color: str) -> np.ndarray:
    """What colours each cell: the top-1 probability, or log10 of the next token's rank (NaN: no next token)."""
    return result.top_probs[:, :, 0].astype(np.float64) if color == "prob" else result.log_rank()


def _hover(result: Any) -> tuple[np.ndarray, str]:
    """customdata (L, P, 2k + 5) of escaped strings (top-k, their probabilities, input token, next token, its
    rank, the layer: the y axis may be a fraction of depth, the position) and the hover template that reads it."""
    n_l, n_p, k = result.top_ids.shape
    tops = np.asarray(plotly_texts(result.top_display.reshape(-1).tolist()), dtype=object).reshape(n_l, n_p, k)
    probs = np.char.mod("%.4f", result.top_probs.astype(np.float64)).astype(object)
    shown = np.asarray(plotly_texts(list(result.display)), dtype=object)
    pos = result.positions
    inputs = np.broadcast_to(shown[pos][None, :, None], (n_l, n_p, 1))
    nxt_idx = pos + 1
    has_next = nxt_idx < len(shown)
    nxt = np.where(has_next, shown[np.minimum(nxt_idx, len(shown) - 1)], "(end of text)").astype(object)
    nexts = np.broadcast_to(nxt[None, :, None], (n_l, n_p, 1))
    ranks = np.where(result.target_rank > 0, result.target_rank.astype(str), "–").astype(object)[:, :, None]
    layer = np.broadcast_to(np.asarray(result.layers, dtype=object)[:, None, None], (n_l, n_p, 1))
    position = np.broadcast_to(pos.astype(object)[None, :, None], (n_l, n_p, 1))
    custom = np.concatenate([tops, probs, inputs, nexts, ranks, layer, position], axis=2)
    lines = [f"{i + 1}. %{{customdata[{i}]}}  %{{customdata[{i + k}]}}" for i in range(k)]
    template = (f"layer %{{customdata[{2 * k + 3}]}} · position %{{customdata[{2 * k + 4}]}}: %{{customdata[{2 * k}]}}<br>"
                + "<br>".join(lines)
                + f"<br>next token %{{customdata[{2 * k + 1}]}}: rank %{{customdata[{2 * k + 2}]}}<extra></extra>")
    return custom, template


def _heatmap(result: Any, color: str, by_depth: bool, *, coloraxis: str) -> Any:
    import plotly.graph_objects as go

    custom, template = _hover(result)
    n_p = len(result.positions)
    label = np.asarray(plotly_texts(_short(result.top_display[:, :, 0].reshape(-1))), dtype=object)
    z = cell_values(result, color)
    kwargs: dict[str, Any] = {}
    if n_p * len(result.layers) <= 4000:
        kwargs.update(text=label.reshape(len(result.layers), n_p).tolist(), texttemplate="%{text}",
                      textfont={"size": 9 if n_p > 24 else 11})
    return go.Heatmap(z=np.where(np.isnan(z), None, z).tolist(), x=result.positions.tolist(), y=y_values(result, by_depth),
                      customdata=custom.tolist(), hovertemplate=template, coloraxis=coloraxis, xgap=1, ygap=1,
                      name=plotly_text(result.name), **kwargs)


def title(results: Sequence[Any]) -> str:
    names = " vs ".join(r.name for r in results)
    text = results[0].text.replace("\n", " ")
    kind = "tuned lens" if (results[0].settings.get("decoder") or {}).get("kind") == "tuned" else "logit lens"
    return f"{kind} · {names} · “{text[:80]}{'…' if len(text) > 80 else ''}”"


def logit_lens_figure(results: Sequence[Any], *, color: str = "prob") -> Any:
    """Heatmaps of one or more :class:`~embedlens.logitlens.LogitLensResult` side by side (one colour scale)."""
    from plotly.subplots import make_subplots

    color = check_color(color)
    by_depth = not same_depth(results)
    subtitles = [plotly_text(f"{r.name} ({r.n_layers} blocks)") for r in results] if len(results) > 1 else None
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=subtitles, horizontal_spacing=0.06)
    for i, r in enumerate(results, 1):
        fig.add_trace(_heatmap(r, color, by_depth, coloraxis="coloraxis"), row=1, col=i)
        fig.update_xaxes(tickmode="array", tickvals=r.positions.tolist(), tickangle=-60,
                         ticktext=plotly_texts([r.display[p] for p in r.positions.tolist()]),
                         title_text="input token", row=1, col=i)
        fig.update_yaxes(title_text="fraction of depth (layer / blocks)" if by_depth else "layer (0 = embeddings)",
                         row=1, col=i)
    if color == "prob":
        axis = {"colorscale": "Viridis", "cmin": 0.0, "cmax": 1.0, "colorbar": {"title": {"text": "top-1 probability"}}}
    else:
        hi = max(float(np.nanmax(r.log_rank())) if np.isfinite(r.log_rank()).any() else 1.0 for r in results)
        axis = {"colorscale": "Viridis", "reversescale": True, "cmin": 0.0, "cmax": max(hi, 1.0),
                "colorbar": {"title": {"text": "log10 rank of the next token"}}}
    n_p = max(len(r.positions) for r in results)
    n_l = max(len(r.layers) for r in results)
    fig.update_layout(title={"text": plotly_text(title(results))}, coloraxis=axis, template="plotly_white",
                      width=max(700, min(2400, len(results) * (160 + 48 * n_p))), height=max(420, min(1400, 160 + 24 * n_l)),
                      margin={"l": 70, "r": 30, "t": 80, "b": 120})
    return fig


def write_logit_lens_html(results: Sequence[Any], path: str | Path, *, color: str = "prob") -> Path:
    return write_plotly_html(logit_lens_figure(results, color=color), path, title=title(results))


# -- PNG -----------------------------------------------------------------------------------------------------------

def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def write_logit_lens_png(results: Sequence[Any], path: str | Path, *, color: str = "prob", dpi: int = 110) -> Path:
    """Static heatmaps (one per model) with the top-1 token in each cell when the cells are big enough."""
    import matplotlib

    plt = _matplotlib()
    color = check_color(color)
    by_depth = not same_depth(results)
    n_p = max(len(r.positions) for r in results)
    n_l = max(len(r.layers) for r in results)
    fig, axes = plt.subplots(1, len(results), squeeze=False,
                             figsize=(min(40, 1.5 + 0.55 * n_p) * len(results) + 1.5, min(40, 1.5 + 0.32 * n_l)))
    cmap = matplotlib.colormaps["viridis" if color == "prob" else "viridis_r"]
    vmax = 1.0 if color == "prob" else max([1.0] + [float(np.nanmax(r.log_rank())) for r in results
                                                    if np.isfinite(r.log_rank()).any()])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing glyphs for rare token characters
            image = None
            for ax, r in zip(axes[0], results, strict=True):
                z = np.ma.masked_invalid(cell_values(r, color))
                image = ax.imshow(z, origin="lower", aspect="auto", cmap=cmap, vmin=0.0, vmax=vmax,
                                  interpolation="nearest")
                ax.set_xticks(range(len(r.positions)))
                ax.set_xticklabels([r.display[p] for p in r.positions.tolist()], rotation=60, ha="right", fontsize=7)
                ys = y_values(r, by_depth)
                step = max(1, len(ys) // 16)
                ax.set_yticks(range(0, len(ys), step))
                ax.set_yticklabels([f"{v:.2f}" if by_depth else str(v) for v in ys[::step]], fontsize=7)
                ax.set_ylabel("fraction of depth" if by_depth else "layer (0 = embeddings)")
                ax.set_title(f"{r.name} ({r.n_layers} blocks)", fontsize=10, parse_math=False)
                if len(r.positions) * len(r.layers) <= 4000:
                    labels = _short(r.top_display[:, :, 0].reshape(-1))
                    bright = (np.ma.filled(z, 0.0) / vmax).reshape(-1) > 0.6
                    ii, jj = np.divmod(np.arange(len(labels)), len(r.positions))
                    for lab, i, j, b in zip(labels, ii.tolist(), jj.tolist(), bright.tolist(), strict=True):
                        ax.text(j, i, lab, ha="center", va="center", fontsize=5.5, parse_math=False,
                                color=("black" if (b if color == "prob" else not b) else "white"))
            fig.colorbar(image, ax=axes[0].tolist(), fraction=0.025,
                         label="top-1 probability" if color == "prob" else "log10 rank of the next token")
            fig.suptitle(title(results), fontsize=10, parse_math=False)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def write_curve_png(curves: Sequence[Any], path: str | Path, *, dpi: int = 110) -> Path:
    """Mean (solid) and median (dashed) rank of the next token per layer, log scale; x is the fraction of depth
    when several models of different depths are drawn."""
    plt = _matplotlib()
    by_depth = len({c.n_layers for c in curves}) > 1
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, c in enumerate(curves):
                x = c.depth() if by_depth else np.asarray(c.layers)
                col = f"C{i}"
                ax.plot(x, c.mean_rank, "-o", ms=3, color=col, label=f"{c.name}: mean rank")
                ax.plot(x, c.median_rank, "--", color=col, label=f"{c.name}: median rank")
            ax.set_yscale("log")
            ax.set_xlabel("fraction of depth (layer / blocks)" if by_depth else "layer (0 = embeddings)")
            ax.set_ylabel("rank of the actual next token (1 = top prediction)")
            c0 = curves[0]
            ax.set_title(f"logit lens over {c0.n_prompts} prompts, {c0.n_positions} positions", fontsize=10,
                         parse_math=False)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)
