"""Results that show themselves in Jupyter: ``_repr_html_`` with the interactive figure, offline.

Plotly's JavaScript (from the installed ``plotly`` package, never a CDN) is embedded in the first
result shown by a Python process and only referenced after that, so a notebook carries the 4.6 MB bundle
once. (A notebook whose first embedlens output was cleared needs that cell run again.) Maps above
``WEBGL_ABOVE`` points (or with ``renderer="webgl"``) show the WebGL map page instead, inside an ``<iframe srcdoc>``. Every string
written into the page goes through :func:`~embedlens.render.offline.html_text`; Plotly text was escaped
with ``plotly_text`` when the figure was built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .offline import html_text

_STATE = {"plotly_sent": False}
_CONFIG = {"displaylogo": False, "responsive": True}


def reset() -> None:
    """Embed Plotly's JavaScript again with the next result (e.g. after clearing every output)."""
    _STATE["plotly_sent"] = False


def _plotly_script() -> str:
    if _STATE["plotly_sent"]:
        return ""
    from plotly.offline import get_plotlyjs

    _STATE["plotly_sent"] = True
    return f"<script type=\"text/javascript\">{get_plotlyjs()}</script>"


def header_html(title: str, lines: Sequence[str]) -> str:
    body = "".join(f"<div style=\"color:#444;font-size:12px;white-space:pre-wrap\">{html_text(x)}</div>" for x in lines)
    return (f"<div class=\"embedlens-result\" style=\"font-family:system-ui,sans-serif;margin:4px 0\">"
            f"<div style=\"font-weight:600\">{html_text(title)}</div>{body}</div>")


def result_html(fig: Any, title: str, lines: Sequence[str] = ()) -> str:
    """The title, the quality lines and the interactive Plotly figure as one notebook output."""
    import plotly.io as pio

    figure = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=_CONFIG)
    return f"<div>{header_html(title, lines)}{_plotly_script()}{figure}</div>"


def page_html(page: str, title: str, lines: Sequence[str] = (), *, height: int = 760) -> str:
    """A complete page (the WebGL map) shown in an iframe under the title and quality lines."""
    return (f"<div>{header_html(title, lines)}<iframe srcdoc=\"{html_text(page)}\" "
            f"style=\"width:100%;height:{height}px;border:0\" sandbox=\"allow-scripts allow-downloads\"></iframe></div>")
