"""Write a laid-out graph: ``graph.html``, ``graph.json`` (node-link), ``graph.graphml`` and ``manifest.json``.

Every file is written to a temporary name and renamed, so an interrupted run leaves no half file.
GraphML is XML 1.0, which cannot hold most control characters: a raw token that has one is written
in its readable form there (``graph.json`` always keeps the raw token).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..cache import atomic_path, ensure_writable_dir, write_json_atomic, write_text_atomic
from ..errors import require
from ..render.graph_html import write_graph_html

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FILES = ("graph.html", "graph.json", "graph.graphml", "manifest.json")


def graph_json(graph: Any) -> str:
    """``graph.json``'s text: node-link data (nodes: id, token, display, is_seed...; edges: source, target, score)."""
    return json.dumps(graph.node_link(), ensure_ascii=False, indent=1) + "\n"


def graphml_graph(graph: Any) -> Any:
    """A networkx graph whose attributes GraphML can hold (scalars only, XML-safe strings)."""
    nx = require("networkx", "GraphML export", extra="graph")
    g = nx.Graph()
    for key, value in graph.node_link()["graph"].items():
        if isinstance(value, str | int | float | bool):
            g.graph[key] = value
    for i, nd in enumerate(graph.nodes):
        attrs: dict[str, Any] = {
            "token": nd.display if _XML_BAD.search(nd.token) else nd.token,
            "display": _XML_BAD.sub("\ufffd", nd.display),
            "is_seed": bool(nd.is_seed),
            "kind": nd.kind,
            "token_ids": " ".join(map(str, nd.token_ids)),
        }
        if nd.best_score is not None:
            attrs["best_score"] = float(nd.best_score)
        if graph.positions is not None:
            attrs["x"], attrs["y"] = float(graph.positions[i, 0]), float(graph.positions[i, 1])
        g.add_node(nd.id, **attrs)
    for e in graph.edges:
        g.add_edge(e.source, e.target, score=float(e.score), kind=e.kind)
    return g


def write_graph(graph: Any, out: str | Path, *, manifest: dict[str, Any] | None = None,
                title: str | None = None) -> dict[str, Path]:
    """Write the four files into ``out`` (created if needed); returns their paths by name."""
    nx = require("networkx", "GraphML export", extra="graph")

    folder = ensure_writable_dir(out)
    paths = {name: folder / name for name in FILES}
    write_graph_html(graph, paths["graph.html"], title=title)
    write_text_atomic(paths["graph.json"], graph_json(graph))
    with atomic_path(paths["graph.graphml"]) as tmp:
        nx.write_graphml(graphml_graph(graph), str(tmp), encoding="utf-8")
    write_json_atomic(paths["manifest.json"], {
        **(manifest or {}),
        "stats": graph.stats.to_dict(),
        "parameters": dict(graph.params),
        "seeds_from": dict(graph.origin),
        "space": graph.space,
        "knn_source": graph.knn_source,
        "layout": dict(graph.layout),
        "notes": list(graph.notes),
        "timings": {k: round(v, 4) for k, v in graph.timings.items()},
        "files": list(FILES),
    })
    return paths
