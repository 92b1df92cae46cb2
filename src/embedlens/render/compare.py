"""``compare.html``: two spaces side by side, from a :class:`~embedlens.comparison.Comparison`.

One self-contained page, no network: the global figures beside their permutation control, two linked
maps drawn by embedlens's WebGL map component (``static/pointcloud.js``): the shared tokens on A's map and
on B's, both coloured by each token's neighbourhood overlap; hovering or clicking a token on either map
rings it on both and shows its neighbours gained and lost. Below, a sortable, filterable table of every
shared token. Token strings reach the page only through :func:`~embedlens.render.offline.json_for_script`
and ``textContent``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from .pointcloud import VIRIDIS, component_page, viridis_rgb

FIGURE_NAMES = {"cka": "linear CKA", "knn_overlap": "k-NN overlap (Jaccard)",
                "procrustes_residual": "Procrustes residual", "acc1": "translation accuracy@1",
                "acc10": "translation accuracy@10"}
FIGURE_HINTS = {"cka": "1: one space is a rotation of the other", "knn_overlap": "mean over tokens; 1: same neighbours",
                "procrustes_residual": "0: aligned exactly; lower is better",
                "acc1": "share of tokens whose aligned row is nearest its counterpart",
                "acc10": "share of tokens whose counterpart is among the 10 nearest"}

_CSS = """
html, body { margin: 0; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
header { padding: 10px 14px 4px; }
h1 { font-size: 17px; margin: 0 0 4px; font-weight: 600; }
.sub { color: #555; font-size: 12px; }
#figures { border-collapse: collapse; margin: 8px 14px; }
#figures td, #figures th { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
#figures td:first-child, #figures th:first-child { text-align: left; }
#figures .hint { color: #777; font-size: 11px; text-align: left; }
#notes { margin: 4px 14px; color: #555; font-size: 12px; }
#maps { display: flex; gap: 10px; padding: 6px 14px; }
.panel { flex: 1; min-width: 0; }
.panel-title { font-weight: 600; margin-bottom: 3px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.map { position: relative; height: 440px; border: 1px solid #ccc; }
#legend { padding: 2px 14px; display: flex; align-items: center; gap: 8px; font-size: 12px; color: #444; }
#ramp { width: 180px; height: 10px; border: 1px solid #aaa; }
#detail { margin: 6px 14px; padding: 6px 10px; border: 1px solid #ddd; border-radius: 4px; min-height: 3.2em; }
#detail .tok, td.tok { font-family: monospace; white-space: pre; }
#detail .row { margin: 2px 0; }
#detail .label { color: #666; }
#tools { padding: 6px 14px; display: flex; gap: 12px; align-items: center; }
#filter { width: 220px; font-family: monospace; }
#shown { color: #666; }
#tokens { border-collapse: collapse; margin: 0 14px 20px; font-size: 12px; }
#tokens th { cursor: pointer; background: #f3f3f3; padding: 4px 8px; position: sticky; top: 0; text-align: left; user-select: none; }
#tokens th.sorted-asc::after { content: " \\25B2"; } #tokens th.sorted-desc::after { content: " \\25BC"; }
#tokens td { padding: 2px 8px; border-bottom: 1px solid #eee; max-width: 360px; overflow: hidden; text-overflow: ellipsis; }
#tokens td.num { text-align: right; font-variant-numeric: tabular-nums; }
#tokens tr.picked td { background: #fde8e8; }
#tokens tbody tr { cursor: pointer; }
"""

_BODY = """
<noscript>This page needs JavaScript; tokens.parquet beside it holds the same data.</noscript>
<header><h1 id="title"></h1><div class="sub" id="subtitle"></div></header>
<table id="figures"><thead><tr><th>figure</th><th>A vs B</th><th>control (shuffled pairs)</th><th></th></tr></thead>
<tbody></tbody></table>
<div id="notes"></div>
<div id="maps"></div>
<div id="legend"></div>
<div id="detail"><span class="label">hover or click a token on a map or in the table</span></div>
<div id="tools"><label>find token <input id="filter" type="search" spellcheck="false" autocomplete="off"></label>
<span id="shown"></span></div>
<table id="tokens"><thead><tr></tr></thead><tbody></tbody></table>
"""


def _map_title(result: Any, side: str) -> str:
    info = result.maps.get(side, {})
    space = getattr(result, side)
    method = str(info.get("method", "")).upper() if info.get("method") == "pca" else str(info.get("method", ""))
    return f"{side.upper()}: {space['name']} — {method} map of its whole space" + (
        " (computed now; no t-SNE/UMAP map cached)" if info.get("computed_now") else "")


def _packed(array: np.ndarray) -> str:
    """An array's bytes as base64 (the page reads them with ``EmbedlensMap.bytes``)."""
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def page_data(result: Any) -> dict[str, Any]:
    """Everything the page shows, tokens in the result's order (position i is the same token on both maps)."""
    figures = [{"name": FIGURE_NAMES[name], "hint": FIGURE_HINTS[name], "value": value, "mean": mean, "std": std}
               for name, value, mean, std in result.figure_lines()]
    data: dict[str, Any] = {
        "n": result.n_shared, "k": result.k,
        "title": f"{result.a['name']} vs {result.b['name']}",
        "subtitle": (f"{result.n_shared:,} shared tokens ({result.match} match) · {result.only_a:,} only in A · "
                     f"{result.only_b:,} only in B · k = {result.k} · control: {result.params.get('control_runs')} "
                     f"seeded permutations of the pairs"),
        "figures": figures, "notes": list(result.notes),
        "display_a": list(result.display_a), "display_b": list(result.display_b),
        "ids_a": np.asarray(result.ids_a, dtype=np.int64).tolist(), "ids_b": np.asarray(result.ids_b, dtype=np.int64).tolist(),
        "overlap": _packed(np.asarray(result.overlap, dtype=np.float32)),
        "displacement": _packed(np.asarray(result.displacement, dtype=np.float32)),
        "gained": _packed(np.asarray(result.gained, dtype=np.int32)), "lost": _packed(np.asarray(result.lost, dtype=np.int32)),
        "counts": None if result.counts is None else np.asarray(result.counts, dtype=np.int64).tolist(),
        "maps": None,
    }
    if result.coords_a is not None and result.coords_b is not None:
        data["maps"] = {"a": {"title": _map_title(result, "a"), "coords": _packed(np.asarray(result.coords_a, np.float32))},
                        "b": {"title": _map_title(result, "b"), "coords": _packed(np.asarray(result.coords_b, np.float32))},
                        "rgb": _packed(viridis_rgb(np.asarray(result.overlap), 0.0, 1.0)),
                        # changed tokens on top: drawn last
                        "order": _packed(np.argsort(-np.asarray(result.overlap), kind="stable").astype(np.int32)),
                        "ramp": list(VIRIDIS)}
    return data


def compare_html(result: Any) -> str:
    """The complete ``compare.html`` page of a :class:`~embedlens.comparison.Comparison`."""
    data = page_data(result)
    return component_page(data["title"], _CSS, _BODY, data, ("pointcloud.js", "compare_page.js"))
