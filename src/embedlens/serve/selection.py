"""What the explorer answers about chosen rows: a token's true neighbours, a selection's centroid, its graph.

Each answer is the library's: neighbours come from the panel's one index (its exact k-NN graph in front
of an exact scan, :meth:`~embedlens.serve.panels.Panel.neighbor_index`), the selection graph from
:func:`embedlens.graph.build_graph` (seeds = the selected rows) laid out by
:func:`embedlens.graph.layout_graph`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graph import build_graph, layout_graph
from ..graph.seeds import seeds_from_rows
from ..neighbors.exact import normalized_rows
from ..neighbors.index import NeighborIndex
from .panels import BadRequest, Panel

SELECTION_GRAPH_ROWS = 500
SELECTION_GRAPH_K = 50
# The layout is a dense n^2 pass per iteration: ~5 s at 5,500 nodes on two cores. Seeds x (k + 1) bounds the nodes.
SELECTION_GRAPH_NODES = 6000


def _neighbor_rows(panel: Panel, rows: np.ndarray, scores: np.ndarray, selected: np.ndarray | None = None,
                   ) -> list[dict[str, Any]]:
    sp = panel.space
    ids = np.asarray(sp.ids)[rows].tolist()
    chosen = np.isin(rows, selected) if selected is not None else None
    out = []
    for j, (r, i, s) in enumerate(zip(rows.tolist(), ids, scores.tolist(), strict=True)):
        item = {"row": r, "id": int(i), "display": panel.display[r], "score": round(float(s), 6)}
        if chosen is not None:
            item["selected"] = bool(chosen[j])
        out.append(item)
    return out


def true_neighbors(panel: Panel, row: int, k: int, *, index: NeighborIndex | None = None) -> dict[str, Any]:
    """The ``k`` nearest rows (cosine, in the full space) of one row, itself excluded: exact.

    ``index``: the one to ask (default the panel's, :meth:`~embedlens.serve.panels.Panel.neighbor_index`).
    """
    index = panel.neighbor_index() if index is None else index
    nb = index.query(np.array([row], dtype=np.int64), k, exclude_self=True)
    rows, scores = nb.indices[0], nb.scores[0]
    return {"row": int(row), "id": int(panel.space.ids[row]), "k": int(k), "rows": rows.tolist(),
            "scores": [round(float(s), 6) for s in scores], "display": [panel.display[r] for r in rows.tolist()]}


def centroid_neighbors(panel: Panel, rows: np.ndarray, k: int, *, exclude_selected: bool = False) -> dict[str, Any]:
    """Nearest tokens (cosine) of the mean direction of ``rows``: each row L2-normalised, then averaged.

    With ``exclude_selected`` the selected rows themselves are not returned.
    """
    sp = panel.space
    ordered = np.sort(rows)  # a memory-mapped matrix reads in row order
    centroid = normalized_rows(np.asarray(sp.vectors[ordered], dtype=np.float32)).mean(axis=0, dtype=np.float64)
    norm = float(np.linalg.norm(centroid))
    if not np.isfinite(norm) or norm <= 1e-12:
        raise BadRequest("the selected vectors cancel out (their mean direction is zero): select other tokens",
                         status=422)
    left = len(sp) - (rows.size if exclude_selected else 0)
    if left < 1:
        raise BadRequest("every token is selected: there is nothing else to return", status=422)
    k = min(k, left)
    query = (centroid / norm).astype(np.float32)[None, :]
    nb = panel.neighbor_index().query(query, k, exclude=[ordered.tolist()] if exclude_selected else None)
    found, scores = nb.indices[0], nb.scores[0]
    return {"n_selected": int(rows.size), "k": int(k), "exclude_selected": exclude_selected,
            "rows": found.tolist(), "neighbors": _neighbor_rows(panel, found, scores, ordered),
            "note": "centroid = mean of the selected rows after L2 normalisation; scores are cosines to it"}


def selection_graph(panel: Panel, rows: np.ndarray, k: int, *, mutual: bool = True, seed: int = 0) -> dict[str, Any]:
    """The k-NN graph around the selected rows (:func:`embedlens.graph.build_graph`), laid out; ``.to_dict()``
    plus ``rows``: the map row of each node."""
    if rows.size * (k + 1) > SELECTION_GRAPH_NODES:
        raise BadRequest(f"{rows.size} rows x (k + 1) = {rows.size * (k + 1):,} possible nodes; the limit is "
                         f"{SELECTION_GRAPH_NODES:,} (select fewer tokens or lower k)", status=413)
    graph = build_graph(panel.view, seeds_from_rows(panel.view, rows), k=k, mutual=mutual)
    layout_graph(graph, seed=seed)
    row_of_id = panel.space.row_of_id
    return {**graph.to_dict(), "rows": [int(row_of_id.get(nd.id, -1)) if nd.kind == "token" else -1
                                        for nd in graph.nodes]}
