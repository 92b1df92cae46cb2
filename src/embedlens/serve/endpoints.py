"""The explorer's API as one table: each endpoint is a parser and a function of the :class:`Explorer`.

A row of :data:`ENDPOINTS` names the path, the HTTP method, the function that answers and the parser that
reads the request. The parser turns the raw query string (GET) or JSON body (POST) into checked arguments
(a :class:`BadRequest` for anything out of range); the function answers with the library's result as JSON,
``result.to_dict()`` (the shape its file on disk has), plus the map rows the page needs, under their own
keys. Long work (projection, frequency, grid, clusters, faithfulness, compare) answers one shape,
:func:`embedlens.serve.jobs.job_answer`: ``{"job": Job.to_dict(), "result": null}`` until the job is ready,
then ``"result"``: the library result's ``to_dict()``, with the per-row columns the page needs beside it. :func:`embedlens.serve.app.create_app` only wires these rows into Starlette.

A function answers a ``dict`` (sent as JSON), ``bytes`` (JSON already encoded) or a :class:`Coordinates`
(a float32 array sent as raw little-endian bytes). A ``fast`` function answers on the event loop when it
can (a cached result, a table look-up) and returns None otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..logitlens.tuned_files import DECODERS
from ..method_names import GRID_PLANES, REDUCERS
from .explorer import LOGIT_LENS_MAX_TOKENS, LOGIT_LENS_TOP_K, Explorer
from .panels import MAX_K, MAX_QUERY_CHARS, MAX_REGEX_CHARS, MAX_TEXT_CHARS, BadRequest, Panel
from .params import MAX_BODY_BYTES, Body, choice_param, float_param, int_param, map_params, text_param
from .selection import (
    SELECTION_GRAPH_K,
    SELECTION_GRAPH_NODES,
    SELECTION_GRAPH_ROWS,
    centroid_neighbors,
    selection_graph,
    true_neighbors,
)

GRID_MIN, GRID_MAX = 4, 64
Args = dict[str, Any]


@dataclass(frozen=True)
class Coordinates:
    """A map's coordinates, answered as raw float32 little-endian bytes with their shape in ``X-Shape``."""

    coords: np.ndarray


@dataclass(frozen=True)
class Endpoint:
    """One row of the API: ``answer(explorer, parse(explorer, raw))``; ``raw`` the query or the JSON body."""

    path: str
    method: str
    answer: Callable[[Explorer, Args], Any]
    parse: Callable[[Explorer, Any], Args]
    fast: Callable[[Explorer, Args], Any] | None = None


# -- parsers: raw request -> checked arguments -----------------------------------------------------------------


def no_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    return {}


def panel_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    return {"panel": explorer.panel(raw)}


def map_of_panel(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    method, dims = map_params(raw)
    return {"panel": explorer.panel(raw), "method": method, "dims": dims}


def search_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    mode = choice_param(raw, "mode", ("text", "regex"), "text")
    q = text_param(raw, "q", MAX_REGEX_CHARS if mode == "regex" else MAX_QUERY_CHARS)
    n = len(panel.space)
    return {"panel": panel, "q": q, "mode": mode, "limit": int_param(raw, "limit", n, 1, max(n, 1))}


def query_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    return {"panel": panel, "q": text_param(raw, "q", MAX_QUERY_CHARS),
            "k": int_param(raw, "k", 20, 1, min(MAX_K, len(panel.space) - 1))}


def word_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    return {"panel": explorer.panel(raw), "q": text_param(raw, "q", MAX_QUERY_CHARS)}


def text_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    return {"panel": explorer.panel(raw), "text": text_param(raw, "text", MAX_TEXT_CHARS)}


def trajectory_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    args = {**text_params(explorer, raw), "position": int_param(raw, "position", 0, 0, MAX_TEXT_CHARS)}
    method, dims = map_params(raw)
    return {**args, "method": method, "dims": dims}


def _n_layers(panel: Panel) -> int:
    return int(panel.meta.get("n_layers") or 0)


def grid_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    n_layers = _n_layers(panel)
    args = {"panel": panel, "layer": int_param(raw, "layer", n_layers - 1 if n_layers else 0, 0, n_layers),
            "plane": choice_param(raw, "plane", tuple(GRID_PLANES), "pca"),
            "size": int_param(raw, "size", 32, GRID_MIN, GRID_MAX),
            "spacing": float_param(raw, "spacing", 0.5, 1e-3, 100.0), "plane_tokens": None}
    if args["plane"] == "tokens":
        plane_tokens = text_param(raw, "plane_tokens", MAX_QUERY_CHARS).split(",")
        if len(plane_tokens) != 3 or not all(plane_tokens):
            raise BadRequest("plane 'tokens' needs plane_tokens=A,B,C (three tokens, comma-separated)")
        args["plane_tokens"] = plane_tokens
    return args


def clusters_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    n: str | int = raw.get("n", "auto") or "auto"
    if n != "auto":
        n = int_param(raw, "n", 2, 2, min(500, max(2, len(panel.space))))
    return {"panel": panel, "n": n}


def axes_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    x_axis = (text_param(raw, "xa", MAX_QUERY_CHARS), text_param(raw, "xb", MAX_QUERY_CHARS))
    ya, yb = raw.get("ya") or "", raw.get("yb") or ""
    if bool(ya) != bool(yb):
        raise BadRequest("the y axis needs both tokens (ya and yb), or neither")
    y_axis = (text_param(raw, "ya", MAX_QUERY_CHARS), text_param(raw, "yb", MAX_QUERY_CHARS)) if ya else None
    return {"panel": panel, "x_axis": x_axis, "y_axis": y_axis, "dims": int_param(raw, "dims", 2, 2, 3)}


def row_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    panel = explorer.panel(raw)
    if not raw.get("row"):
        raise BadRequest("parameter 'row' is required")
    n = len(panel.space)
    return {"panel": panel, "row": int_param(raw, "row", 0, 0, n - 1), "k": int_param(raw, "k", 10, 1, min(MAX_K, n - 1))}


def decoder_param(raw: Mapping[str, str]) -> str:
    """``decoder`` (logit or tuned); the name it had before, ``lens``, is refused rather than ignored."""
    if "lens" in raw:
        raise BadRequest("parameter 'lens' is now called 'decoder' (logit or tuned)")
    return choice_param(raw, "decoder", DECODERS, "logit")


def logit_lens_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    return {**text_params(explorer, raw), "top_k": int_param(raw, "top_k", LOGIT_LENS_TOP_K, 1, 20),
            "decoder": decoder_param(raw)}


def layer_nearest_params(explorer: Explorer, raw: Mapping[str, str]) -> Args:
    args = text_params(explorer, raw)
    panel = args["panel"]
    return {**args, "layer": int_param(raw, "layer", _n_layers(panel), 0, _n_layers(panel)),
            "position": int_param(raw, "position", 0, 0, LOGIT_LENS_MAX_TOKENS - 1),
            "k": int_param(raw, "k", 20, 1, min(MAX_K, len(panel.space) - 1)),
            "decoder": decoder_param(raw)}


def _body_panel(explorer: Explorer, body: Body) -> Panel:
    space = body.body.get("space", 0)
    panels = explorer.panels
    if isinstance(space, bool) or not isinstance(space, int) or not 0 <= space < len(panels):
        raise BadRequest(f"unknown space {str(space)[:20]!r}: this server shows spaces "
                         f"{', '.join(str(p.index) for p in panels)}", status=404)
    return panels[space]


def centroid_params(explorer: Explorer, raw: dict[str, Any]) -> Args:
    body = Body(raw, ("space", "rows", "k", "exclude_selected"))
    panel = _body_panel(explorer, body)
    n = len(panel.space)
    return {"panel": panel, "rows": body.rows("rows", n, n), "k": body.int("k", 20, 1, min(MAX_K, n)),
            "exclude_selected": body.bool("exclude_selected", False)}


def selection_graph_params(explorer: Explorer, raw: dict[str, Any]) -> Args:
    body = Body(raw, ("space", "rows", "k", "mutual"))
    panel = _body_panel(explorer, body)
    n = len(panel.space)
    return {"panel": panel, "k": body.int("k", 10, 1, min(SELECTION_GRAPH_K, n - 1)),
            "rows": body.rows("rows", n, SELECTION_GRAPH_ROWS), "mutual": body.bool("mutual", True)}


# -- answers: (explorer, arguments) -> JSON ------------------------------------------------------------------


def info(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The panels (each with its ``default_map`` and its decoders), the methods and every limit."""
    described = [{**p.describe(), "default_map": explorer.open_panel(p), "decoders": explorer.decoders(p)}
                 for p in explorer.panels]
    return {"panels": described, "methods": list(REDUCERS), "dims": [2, 3],
            "seed": explorer.seed, "corpus": explorer.corpus, "grid_planes": list(GRID_PLANES),
            "limits": {"k_max": MAX_K, "query_chars": MAX_QUERY_CHARS, "regex_chars": MAX_REGEX_CHARS,
                       "text_chars": MAX_TEXT_CHARS, "grid_min": GRID_MIN, "grid_max": GRID_MAX,
                       "body_bytes": MAX_BODY_BYTES, "selection_graph_rows": SELECTION_GRAPH_ROWS,
                       "selection_graph_k": SELECTION_GRAPH_K, "selection_graph_nodes": SELECTION_GRAPH_NODES}}


def points(explorer: Explorer, a: Args) -> bytes:
    return explorer.points_json(a["panel"])


def frequency(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job; once ready, ``result``: ``TokenFrequencies.to_dict()``, and ``counts``, each row's count."""
    return explorer.frequency(a["panel"])


def projection(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job; once ready, ``result``: the projection's metadata (its file's), and ``n``, its rows."""
    return explorer.projection(a["panel"], a["method"], a["dims"])[0]


def projection_data(explorer: Explorer, a: Args) -> Coordinates:
    method, dims = a["method"], a["dims"]
    state, proj = explorer.projection(a["panel"], method, dims, start=False)
    if proj is None:
        raise BadRequest(f"the {method} {dims}D map is not ready ({state['job']['state']}): poll /api/projection",
                         status=409)
    return Coordinates(proj.coords)


def jobs(explorer: Explorer, a: Args) -> dict[str, Any]:
    return {"jobs": explorer.jobs.all() + explorer.index_jobs.all()}


def search(explorer: Explorer, a: Args) -> dict[str, Any]:
    panel = a["panel"]
    return panel.search(a["q"], mode=a["mode"], limit=a["limit"]).to_dict(panel.display)


def neighbors(explorer: Explorer, a: Args) -> dict[str, Any]:
    """``NeighborResult.to_dict()`` of ``lens.nearest(q, k)``, plus ``rows``, ``query_rows``, ``query_display``."""
    return a["panel"].neighbors(a["q"], a["k"])


def neighbors_fast(explorer: Explorer, a: Args) -> dict[str, Any] | None:
    """Look-ups that take microseconds (result cache, k-NN graph) are answered on the event loop."""
    return a["panel"].neighbors_fast(a["q"], a["k"])


def variants(explorer: Explorer, a: Args) -> dict[str, Any]:
    return a["panel"].variants(a["q"])


def tokens(explorer: Explorer, a: Args) -> dict[str, Any]:
    return a["panel"].tokens(a["text"])


def trajectory(explorer: Explorer, a: Args) -> dict[str, Any]:
    return explorer.trajectory(a["panel"], a["text"], a["position"], a["method"], a["dims"])


def grid(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job; once ready, ``result``: ``GridMap.to_dict()``."""
    return explorer.grid(a["panel"], a["layer"], a["plane"], a["size"], a["spacing"], a["plane_tokens"])


def clusters(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job; once ready, ``result``: ``Clustering.to_dict()``, and ``assignment`` and ``levels`` beside it."""
    return explorer.clusters(a["panel"], a["n"])


def faithfulness(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job (``waiting`` for the map first); once ready, ``result``: each token's local recall, the map's recall."""
    return explorer.faithfulness(a["panel"], a["method"], a["dims"])


def compare(explorer: Explorer, a: Args) -> dict[str, Any]:
    """The job; once ready, ``result``: ``Comparison.to_dict()``."""
    return explorer.comparison()


def true_neighbors_get(explorer: Explorer, a: Args) -> dict[str, Any]:
    return true_neighbors(a["panel"], a["row"], a["k"])


def true_neighbors_fast(explorer: Explorer, a: Args) -> dict[str, Any] | None:
    """Answered on the event loop when the space's exact graph is in memory (a table look-up)."""
    panel, k = a["panel"], a["k"]
    graph = explorer.ready_graph(panel) if explorer.knn else None
    if graph is None or graph.method != "exact" or graph.k < k:
        return None
    return true_neighbors(panel, a["row"], k, index=explorer.ready_graph_index(panel))


def axes(explorer: Explorer, a: Args) -> dict[str, Any]:
    return explorer.axes(a["panel"], a["x_axis"], a["y_axis"], a["dims"])


def logit_lens(explorer: Explorer, a: Args) -> dict[str, Any]:
    """``LogitLensResult.to_dict()`` of the prompt, read with ``decoder`` (logit or tuned)."""
    return explorer.logit_lens(a["panel"], a["text"], a["top_k"], a["decoder"])


def layer_nearest(explorer: Explorer, a: Args) -> dict[str, Any]:
    return explorer.layer_nearest(a["panel"], a["text"], a["layer"], a["position"], a["k"], a["decoder"])


def centroid(explorer: Explorer, a: Args) -> dict[str, Any]:
    return centroid_neighbors(a["panel"], a["rows"], a["k"], exclude_selected=a["exclude_selected"])


def selection_graph_post(explorer: Explorer, a: Args) -> dict[str, Any]:
    """``GraphResult.to_dict()`` of the laid-out graph, plus ``rows``: each node's map row."""
    return selection_graph(a["panel"], a["rows"], a["k"], mutual=a["mutual"], seed=explorer.seed)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("info", "GET", info, no_params),
    Endpoint("points", "GET", points, panel_params),
    Endpoint("frequency", "GET", frequency, panel_params),
    Endpoint("projection", "GET", projection, map_of_panel),
    Endpoint("projection/data", "GET", projection_data, map_of_panel),
    Endpoint("jobs", "GET", jobs, no_params),
    Endpoint("search", "GET", search, search_params),
    Endpoint("neighbors", "GET", neighbors, query_params, fast=neighbors_fast),
    Endpoint("variants", "GET", variants, word_params),
    Endpoint("tokens", "GET", tokens, text_params),
    Endpoint("trajectory", "GET", trajectory, trajectory_params),
    Endpoint("grid", "GET", grid, grid_params),
    Endpoint("logit_lens", "GET", logit_lens, logit_lens_params),
    Endpoint("layer_nearest", "GET", layer_nearest, layer_nearest_params),
    Endpoint("clusters", "GET", clusters, clusters_params),
    Endpoint("axes", "GET", axes, axes_params),
    Endpoint("faithfulness", "GET", faithfulness, map_of_panel),
    Endpoint("true_neighbors", "GET", true_neighbors_get, row_params, fast=true_neighbors_fast),
    Endpoint("compare", "GET", compare, no_params),
    Endpoint("centroid", "POST", centroid, centroid_params),
    Endpoint("selection_graph", "POST", selection_graph_post, selection_graph_params),
)
