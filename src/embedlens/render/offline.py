"""Self-contained, offline HTML, safe for untrusted token strings.

Two rules keep a vocabulary's ``<script>``, ``</div>`` or ``<br>`` tokens inert and visible:
  * Text that Plotly draws (hover text, labels, titles) goes through :func:`html_text`: Plotly renders a
    subset of HTML tags in text (``<br>``, ``<b>``...), but decodes entities, so ``&lt;br&gt;`` shows
    ``<br>`` literally.
  * Data embedded in a ``<script>`` element goes through :func:`json_for_script`, which escapes ``<``,
    ``>`` and ``&`` so no token can close the script. Pages insert token strings with ``textContent``,
    never ``innerHTML``.
Plotly's JavaScript bundle is embedded in every file, so pages open with no network at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cache import write_text_atomic

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def html_text(value: str) -> str:
    """Escape a string for HTML text or for Plotly text fields (shown literally, never as markup)."""
    return str(value).translate(_ENTITIES)


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, ``<!--`` or entity can break out."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace(
        "\u2028", "\\u2028").replace("\u2029", "\\u2029")


def plotly_html(fig: Any, *, title: str | None = None) -> str:
    """A complete HTML document with Plotly's JS embedded (no CDN, works offline)."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True})
    if title:
        html = html.replace("<head>", f"<head><meta charset=\"utf-8\"><title>{html_text(title)}</title>", 1)
    return html


def write_plotly_html(fig: Any, path: str | Path, *, title: str | None = None) -> Path:
    """Write :func:`plotly_html` atomically."""
    return write_text_atomic(path, plotly_html(fig, title=title))
