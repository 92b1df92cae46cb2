"""Figures of :class:`~embedlens.tunedlens.DecoderEval`: per layer, one curve per decoder (as in the tuned-lens
paper): KL to the model's final distribution, top-1 agreement with it, cross-entropy of the next token."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_path
from .logit_lens import _matplotlib
from .offline import plotly_text, write_plotly_html

PANELS = (("kl_bits", "KL to the final distribution (bits)"), ("top1_agreement", "top-1 agreement with the final"),
          ("ce_bits", "next-token cross-entropy (bits)"))


def short_name(name: str) -> str:
    """A legend entry: a tuned lens's path by its folder name (the hover shows the whole path)."""
    return Path(name).name if "/" in name else name


def title(ev: Any) -> str:
    return f"lens quality · {ev.model.get('name')} · {ev.n_tokens:,} held-out tokens"


def eval_figure(ev: Any) -> Any:
    """Plotly figure: three panels side by side, layers on x, one line per decoder."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in PANELS], horizontal_spacing=0.07)
    x = np.arange(ev.n_layers + 1)
    for i, name in enumerate(ev.decoders):
        for j, (key, label) in enumerate(PANELS, 1):
            fig.add_trace(go.Scatter(x=x, y=getattr(ev, key)[i], mode="lines+markers", name=plotly_text(short_name(name)),
                                     legendgroup=str(i), showlegend=j == 1, line={"color": f"hsl({(i * 137) % 360},60%,45%)"},
                                     hovertemplate=f"{plotly_text(name)}<br>layer %{{x}}<br>{label}: %{{y:.4g}}<extra></extra>"),
                          row=1, col=j)
    for j in range(1, 4):
        fig.update_xaxes(title_text="layer (0 = embeddings)", dtick=max(1, ev.n_layers // 10), row=1, col=j)
    fig.update_yaxes(type="log", row=1, col=1)  # the last layer's KL is 0 for every decoder: off a log axis
    fig.update_annotations(font_size=12)
    fig.update_layout(title=plotly_text(title(ev)), height=460, width=1300, template="plotly_white",
                      legend={"orientation": "h", "y": -0.25})
    return fig


def write_eval_html(ev: Any, path: str | Path) -> Path:
    return write_plotly_html(eval_figure(ev), path, title=title(ev))


def write_eval_png(ev: Any, path: str | Path, *, dpi: int = 110) -> Path:
    plt = _matplotlib()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = np.arange(ev.n_layers + 1)
            for i, name in enumerate(ev.decoders):
                for ax, (key, label) in zip(axes, PANELS, strict=True):
                    y = getattr(ev, key)[i].astype(float)
                    if key == "kl_bits":  # 0 at the last layer for every decoder: left off the log axis
                        y = np.where(y > 0, y, np.nan)
                    ax.plot(x, y, "-o", ms=3, color=f"C{i}", label=short_name(name).replace("$", r"\$"))
                    ax.set_title(label, fontsize=10, parse_math=False)
                    ax.set_xlabel("layer (0 = embeddings)")
                    ax.grid(True, alpha=0.3)
            if (ev.kl_bits[:, :-1] > 0).all():
                axes[0].set_yscale("log")
            axes[0].legend(fontsize=8)
            fig.suptitle(title(ev), fontsize=11)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)
