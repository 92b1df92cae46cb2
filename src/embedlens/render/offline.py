"""Self-contained, offline HTML, safe for untrusted token strings.

Three rules keep a vocabulary's ``<script>``, ``</div>`` or ``<br>`` tokens inert and visible:
  * Text that Plotly draws (hover text, labels, titles) goes through :func:`plotly_text`: Plotly renders
    a subset of HTML tags in text (``<br>``, ``<b>``...) and decodes only a few entities, so exactly
    ``&``, ``<`` and ``>`` are escaped; an escaped quote (``&quot;``) would show as the entity itself.
  * Text written into an HTML document (element text, attribute values) goes through :func:`html_text`.
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
_PLOTLY_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def html_text(value: str) -> str:
    """Escape a string for HTML element text or a quoted attribute value (shown literally, never as markup)."""
    return str(value).translate(_ENTITIES)


def plotly_text(value: str) -> str:
    """Escape a string for a Plotly text field (hover, label, title): only ``&``, ``<`` and ``>``."""
    return str(value).translate(_PLOTLY_ENTITIES)


def plotly_texts(strings: list[str]) -> list[str]:
    """:func:`plotly_text` over many strings at once (one C-level pass instead of a Python loop)."""
    if not strings:
        return []
    escaped = plotly_text("\x00".join(strings)).split("\x00")
    if len(escaped) != len(strings):  # a string held a NUL itself: fall back to one at a time
        return [plotly_text(s) for s in strings]
    return escaped


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, ``<!--`` or entity can break out."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace(
        "\u2028", "\\u2028").replace("\u2029", "\\u2029")


def plotly_html(fig: Any, *, title: str | None = None, validate: bool = True) -> str:
    """A complete HTML document with Plotly's JS embedded (no CDN, works offline); ``validate=False`` takes a
    figure dict as Plotly made it (``fig.to_dict()``) without checking it again."""
    import plotly.io as pio

    html = pio.to_html(fig, include_plotlyjs=True, full_html=True, config={"displaylogo": False, "responsive": True},
                       validate=validate)
    if title:
        html = html.replace("<head>", f"<head><meta charset=\"utf-8\"><title>{html_text(title)}</title>", 1)
    return html


def write_plotly_html(fig: Any, path: str | Path, *, title: str | None = None, validate: bool = True) -> Path:
    """Write :func:`plotly_html` atomically."""
    return write_text_atomic(path, plotly_html(fig, title=title, validate=validate))
