"""The demo report: a small static HTML page of token and neighbour tables (escaped, offline)."""

from __future__ import annotations

from typing import Any

from .offline import html_text

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
table{border-collapse:collapse;margin:0 0 1.5rem}td,th{border:1px solid #ccc;padding:.2rem .6rem}
th{background:#f3f3f3}td.tok{font-family:ui-monospace,monospace;white-space:pre}td.num{text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:1.5rem}.note{color:#666}
"""


def _neighbor_table(result: Any) -> str:
    rows = "".join(
        f"<tr><td class=num>{i}</td><td class=num>{n.id}</td><td class=tok>{html_text(n.display)}</td>"
        f"<td class=num>{n.score:.3f}</td></tr>"
        for i, n in enumerate(result.neighbors, 1)
    )
    note = f"<p class=note>{html_text(result.note)}</p>" if result.note else ""
    return (f"<div><h3>{html_text(repr(result.query))}</h3>{note}<table><tr><th>#</th><th>id</th><th>token</th>"
            f"<th>cosine</th></tr>{rows}</table></div>")


def demo_report(*, title: str, manifest: dict, tokens: Any, neighbors: list, variants: Any,
                map_link: str | None, map_summary: str | None) -> str:
    """HTML for the quick-start report. Every token string is escaped: it is shown, never interpreted."""
    token_rows = "".join(
        f"<tr><td class=num>{r.position}</td><td class=num>{r.id}</td><td class=tok>{html_text(r.display)}</td>"
        f"<td class=tok>{html_text(r.token)}</td><td class=tok>{' '.join(f'{v:+.4f}' for v in r.head)} … "
        f"{' '.join(f'{v:+.4f}' for v in r.tail)}</td></tr>"
        for r in tokens.rows
    )
    m = manifest["model"]
    facts = (f"{html_text(str(m.get('spec')))} · {html_text(str(m.get('model_type')))} · vocabulary {m.get('n_vocab'):,} · "
             f"d_model {m.get('d_model')} · {m.get('n_layers')} layers · hash {str(m.get('content_hash'))[:12]}")
    atlas = ""
    if map_link:
        atlas = (f"<h2>Vocabulary atlas</h2><p>{html_text(map_summary or '')}</p>"
                 f"<p><a href=\"{html_text(map_link)}\">Open the interactive map</a></p>"
                 f"<img src=\"{html_text(map_link.replace('.html', '.png'))}\" alt=\"vocabulary map\" style=\"max-width:100%\">")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title><style>{_STYLE}</style></head>
<body><h1>{html_text(title)}</h1><p>{facts}</p>
<h2>Tokens of {html_text(repr(tokens.text))}</h2>
<table><tr><th>pos</th><th>id</th><th>token</th><th>raw</th><th>input embedding (first 3 … last 3)</th></tr>{token_rows}</table>
<h2>Nearest tokens (cosine, input embeddings)</h2><div class=grid>{''.join(_neighbor_table(r) for r in neighbors)}</div>
<h2>Variants of {html_text(repr(variants.query))}</h2><div class=grid>{_neighbor_table(variants)}</div>
{atlas}
<p class=note>Made by embedlens {html_text(manifest['versions'].get('embedlens', ''))}; manifest.json beside this file records every parameter.</p>
</body></html>
"""
