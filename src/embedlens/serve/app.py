"""The ASGI application: a JSON API under ``/api/...`` and the page that uses it.

Models and spaces are fixed when the app is created; no endpoint reads a path the client names.
Every parameter is checked (numbers in range, string lengths, regular expressions time-limited) and a
bad request gets a 4xx with ``{"error": "..."}``; the server keeps serving. Heavy work (projections,
corpus frequencies, grid maps) runs in the background (:mod:`embedlens.serve.jobs`); queries never
wait for it.

Endpoints (GET unless marked; ``space`` is the panel number, 0 or 1):

  /api/info                                         panels (each with its ``default_map``), methods, limits
  /api/points?space=0                               readable tokens, ids, length, whole-word, special, script, pos
  /api/frequency?space=0                            corpus token counts (background job)
  /api/projection?space=0&method=pca&dims=2         projection state (starts the job)
  /api/projection/data?space=0&method=pca&dims=2    the coordinates: float32 little-endian, (n, dims)
  /api/jobs                                         every background job and its progress
  /api/search?space=0&q=list&mode=text|regex        matching rows
  /api/neighbors?space=0&q=list&k=20                ``embedlens neighbors`` as JSON, with map rows
  /api/variants?space=0&q=list                      ``embedlens variants`` as JSON, with map rows
  /api/tokens?space=0&text=...                      the prompt's tokens and their map rows
  /api/trajectory?space=0&text=...&position=0&method=pca&dims=2   per-layer path of one prompt token
  /api/grid?space=0&layer=10&plane=pca&size=32      token grid map (background job)
  /api/logit_lens?space=0&text=...&top_k=5          the prompt's logit lens: every layer x token decoded
  /api/lens_nearest?space=0&text=...&layer=5&position=2&k=20   nearest tokens of that residual state
  /api/clusters?space=0&n=auto                      labelled clusters of the space (background job, on the
                                                    space's cached k-NN graph): each row's cluster id (-1:
                                                    none), each cluster's label, and ``levels`` for the map
  /api/axes?space=0&xa=man&xb=woman[&ya=..&yb=..]   a word-axes map: x = (u - a)·(b - a) / |b - a|^2
  /api/faithfulness?space=0&method=tsne&dims=2      each token's local recall@10 on that map (background job)
  /api/true_neighbors?space=0&row=R&k=10            a row's exact nearest rows in the full space
  /api/compare                                      two panels compared on their shared tokens (background job)
  POST /api/centroid         {"space", "rows", "k", "exclude_selected"}   nearest tokens of the rows' centroid
  POST /api/selection_graph  {"space", "rows", "k", "mutual"}   the k-NN graph around the rows, laid out

POST bodies are JSON objects (``Content-Type: application/json``, at most 2 MB). An API request whose
``Origin`` or ``Sec-Fetch-Site`` says another site sent it is refused (403), GET included: a page elsewhere
can neither post to a local explorer nor start its jobs (projections, grid maps) with an image or a no-cors fetch.
"""

from __future__ import annotations

import contextlib
import logging
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import EmbedlensError
from ..method_names import (
    GRID_PLANES,
    REDUCERS,  # the explorer offers every reducer fitted on the vectors alone
)
from .access import TokenGate
from .explorer import LENS_MAX_TOKENS, LENS_TOP_K, Explorer
from .panels import MAX_K, MAX_QUERY_CHARS, MAX_REGEX_CHARS, MAX_TEXT_CHARS, BadRequest, Panel
from .params import (
    MAX_BODY_BYTES,
    Body,
    choice_param,
    float_param,
    int_param,
    map_params,
    read_json_body,
    text_param,
)
from .selection import (
    SELECTION_GRAPH_K,
    SELECTION_GRAPH_NODES,
    SELECTION_GRAPH_ROWS,
    centroid_neighbors,
    selection_graph,
    true_neighbors,
)

log = logging.getLogger("embedlens")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
GRID_MIN, GRID_MAX = 4, 64
_JS = "text/javascript; charset=utf-8"
STATIC_FILES = {name: _JS for name in ("boot.js", "core.js", "colors.js", "filters.js", "selection.js", "views.js",
                                         "offline.js", "app.js")}
STATIC_FILES["app.css"] = "text/css; charset=utf-8"
COMPONENT_FILES = {"pointcloud.js": _JS}  # the map component shared with the static map pages (render/static)
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def static_dir() -> Path:
    return Path(str(resources.files("embedlens.serve") / "static"))


def component_dir() -> Path:
    return Path(str(resources.files("embedlens.render") / "static"))


def plotly_js_path() -> Path:
    """Plotly's bundle from the installed ``plotly`` package (served locally; no CDN)."""
    try:
        import plotly
    except ImportError:
        raise EmbedlensError("embedlens serve needs plotly: pip install 'embedlens[maps]'") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise EmbedlensError(f"plotly's JavaScript bundle is missing ({path}); reinstall plotly")
    return path


# -- the app ------------------------------------------------------------------------------------------------


def create_app(spaces: list[Any], *, corpus: str | list[str] = "lee", seed: int = 0,
               allowed_hosts: list[str] | None = None, regex_seconds: float | None = None, knn: bool = True,
               token: str | None = None) -> Any:
    """The Starlette app serving one or two spaces.

    Args:
        spaces: one or two spaces (``lens.input``, ``lens.output``), lenses (their input space) or
            :class:`~embedlens.serve.panels.Panel`.
        corpus: corpus spec(s) counted for the colour-by-frequency view (``lee`` by default).
        seed: seed of every projection.
        allowed_hosts: ``Host`` headers accepted (default loopback names only: guards against DNS
            rebinding); ``["*"]`` accepts any.
        regex_seconds: time limit of one regular-expression search.
        knn: answer single-token neighbour queries from a cached exact k-NN graph when there is one.
        token: when given, every request needs it (:class:`~embedlens.serve.access.TokenGate`): what the
            explorer asks for off loopback.
    """
    try:
        from starlette.applications import Starlette
    except ImportError:
        raise EmbedlensError("embedlens serve needs starlette and uvicorn: pip install 'embedlens[serve]'") from None
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    panels: list[Panel] = []
    for i, item in enumerate(spaces):
        if isinstance(item, Panel):
            item.index = i
            panels.append(item)
        else:
            kwargs = {} if regex_seconds is None else {"regex_seconds": regex_seconds}
            panels.append(Panel(item, index=i, **kwargs))
    if not knn:
        for panel in panels:
            panel.use_knn(None)
    explorer = Explorer(panels, corpus=corpus, seed=seed, knn=knn)
    plotly_path = plotly_js_path()
    static = static_dir()
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)

    def guarded(answer):
        """An endpoint around ``answer(request)``: refusals become one-line JSON 4xx, the server keeps serving."""
        async def endpoint(request: Request) -> Response:
            try:
                out = await answer(request)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except EmbedlensError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except MemoryError:
                return JSONResponse({"error": "out of memory: ask for less"}, status_code=503)
            return out if isinstance(out, Response) else JSONResponse(out)

        return endpoint

    def api(fn, fast=None):
        """A GET endpoint: ``fast(params)`` on the event loop when it answers, else ``fn(params)`` on a worker."""
        async def answer(request: Request) -> Any:
            from starlette.concurrency import run_in_threadpool

            check_origin(request.headers)  # a page elsewhere cannot read the answer; it must not start work either
            out = fast(request.query_params) if fast is not None else None
            if out is None:  # the usual path: a worker thread, so the event loop never waits on NumPy
                out = await run_in_threadpool(fn, request.query_params)
            return out

        return guarded(answer)

    def post_api(fn):
        """A POST endpoint: ``fn(body)`` on a worker thread, ``body`` the request's checked JSON object."""
        async def answer(request: Request) -> Any:
            from starlette.concurrency import run_in_threadpool

            check_origin(request.headers)
            return await run_in_threadpool(fn, await read_json_body(request))

        return guarded(answer)

    def info(params: Any) -> dict[str, Any]:
        described = [{**p.describe(), "default_map": explorer.open_panel(p)} for p in panels]
        return {"panels": described, "methods": list(REDUCERS), "dims": [2, 3],
                "seed": explorer.seed, "corpus": explorer.corpus, "grid_planes": list(GRID_PLANES),
                "limits": {"k_max": MAX_K, "query_chars": MAX_QUERY_CHARS, "regex_chars": MAX_REGEX_CHARS,
                           "text_chars": MAX_TEXT_CHARS, "grid_min": GRID_MIN, "grid_max": GRID_MAX,
                           "body_bytes": MAX_BODY_BYTES, "selection_graph_rows": SELECTION_GRAPH_ROWS,
                           "selection_graph_k": SELECTION_GRAPH_K, "selection_graph_nodes": SELECTION_GRAPH_NODES}}

    def points(params: Any) -> Response:
        return Response(explorer.points_json(explorer.panel(params)), media_type="application/json")

    def frequency(params: Any) -> dict[str, Any]:
        return explorer.frequency(explorer.panel(params))

    def projection(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        method, dims = map_params(params)
        out, _ = explorer.projection(panel, method, dims)
        return out

    def projection_data(params: Any) -> Response:
        panel = explorer.panel(params)
        method, dims = map_params(params)
        state, proj = explorer.projection(panel, method, dims, start=False)
        if proj is None:
            raise BadRequest(f"the {method} {dims}D map is not ready ({state['state']}): poll /api/projection", status=409)
        body = np.ascontiguousarray(proj.coords, dtype="<f4").tobytes()
        return Response(body, media_type="application/octet-stream",
                        headers={"X-Shape": f"{proj.coords.shape[0]},{proj.coords.shape[1]}"})

    def jobs(params: Any) -> dict[str, Any]:
        return {"jobs": explorer.jobs.all() + explorer.index_jobs.all()}

    def search(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        mode = choice_param(params, "mode", ("text", "regex"), "text")
        q = text_param(params, "q", MAX_REGEX_CHARS if mode == "regex" else MAX_QUERY_CHARS)
        limit = int_param(params, "limit", len(panel.space), 1, max(len(panel.space), 1))
        return panel.search(q, mode=mode, limit=limit).to_dict(panel.display)

    def neighbors(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        q = text_param(params, "q", MAX_QUERY_CHARS)
        k = int_param(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
        return panel.neighbors(q, k)

    def neighbors_fast(params: Any) -> dict[str, Any] | None:
        """Look-ups that take microseconds (result cache, k-NN graph) are answered on the event loop."""
        panel = explorer.panel(params)
        q = text_param(params, "q", MAX_QUERY_CHARS)
        k = int_param(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
        return panel.neighbors_fast(q, k)

    def variants(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return panel.variants(text_param(params, "q", MAX_QUERY_CHARS))

    def tokens(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return panel.tokens(text_param(params, "text", MAX_TEXT_CHARS))

    def trajectory(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        text = text_param(params, "text", MAX_TEXT_CHARS)
        position = int_param(params, "position", 0, 0, MAX_TEXT_CHARS)
        method, dims = map_params(params)
        return explorer.trajectory(panel, text, position, method, dims)

    def grid(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        n_layers = int(panel.meta.get("n_layers") or 0)
        layer = int_param(params, "layer", n_layers - 1 if n_layers else 0, 0, n_layers)
        plane = choice_param(params, "plane", tuple(GRID_PLANES), "pca")
        size = int_param(params, "size", 32, GRID_MIN, GRID_MAX)
        spacing = float_param(params, "spacing", 0.5, 1e-3, 100.0)
        plane_tokens = None
        if plane == "tokens":
            raw = text_param(params, "plane_tokens", MAX_QUERY_CHARS)
            plane_tokens = [t for t in raw.split(",")]
            if len(plane_tokens) != 3 or not all(plane_tokens):
                raise BadRequest("plane 'tokens' needs plane_tokens=A,B,C (three tokens, comma-separated)")
        return explorer.grid(panel, layer, plane, size, spacing, plane_tokens)

    def clusters(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        raw = params.get("n", "auto") or "auto"
        if raw != "auto":
            raw = str(int_param(params, "n", 2, 2, min(500, max(2, len(panel.space)))))
        return explorer.clusters(panel, raw if raw == "auto" else int(raw))

    def faithfulness(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        method, dims = map_params(params)
        return explorer.faithfulness(panel, method, dims)

    def compare(params: Any) -> dict[str, Any]:
        return explorer.comparison()

    def row_and_k(params: Any) -> tuple[Panel, int, int]:
        panel = explorer.panel(params)
        if not params.get("row"):
            raise BadRequest("parameter 'row' is required")
        row = int_param(params, "row", 0, 0, len(panel.space) - 1)
        return panel, row, int_param(params, "k", 10, 1, min(MAX_K, len(panel.space) - 1))

    def true_neighbors_get(params: Any) -> dict[str, Any]:
        return true_neighbors(*row_and_k(params))

    def true_neighbors_fast(params: Any) -> dict[str, Any] | None:
        """Answered on the event loop when the space's exact graph is in memory (a table look-up)."""
        panel, row, k = row_and_k(params)
        graph = explorer.ready_graph(panel) if explorer.knn else None
        if graph is None or graph.method != "exact" or graph.k < k:
            return None
        return true_neighbors(panel, row, k, index=explorer.ready_graph_index(panel))

    def body_panel(body: Body) -> Panel:
        space = body.body.get("space", 0)
        if isinstance(space, bool) or not isinstance(space, int) or not 0 <= space < len(panels):
            raise BadRequest(f"unknown space {str(space)[:20]!r}: this server shows spaces "
                             f"{', '.join(str(p.index) for p in panels)}", status=404)
        return panels[space]

    def centroid(raw: dict[str, Any]) -> dict[str, Any]:
        body = Body(raw, ("space", "rows", "k", "exclude_selected"))
        panel = body_panel(body)
        n = len(panel.space)
        k = body.int("k", 20, 1, min(MAX_K, n))
        return centroid_neighbors(panel, body.rows("rows", n, n), k,
                                  exclude_selected=body.bool("exclude_selected", False))

    def selection_graph_post(raw: dict[str, Any]) -> dict[str, Any]:
        body = Body(raw, ("space", "rows", "k", "mutual"))
        panel = body_panel(body)
        n = len(panel.space)
        k = body.int("k", 10, 1, min(SELECTION_GRAPH_K, n - 1))
        rows = body.rows("rows", n, SELECTION_GRAPH_ROWS)
        return selection_graph(panel, rows, k, mutual=body.bool("mutual", True), seed=explorer.seed)

    def axes(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        x_axis = (text_param(params, "xa", MAX_QUERY_CHARS), text_param(params, "xb", MAX_QUERY_CHARS))
        ya, yb = params.get("ya") or "", params.get("yb") or ""
        if bool(ya) != bool(yb):
            raise BadRequest("the y axis needs both tokens (ya and yb), or neither")
        y_axis = (text_param(params, "ya", MAX_QUERY_CHARS), text_param(params, "yb", MAX_QUERY_CHARS)) if ya else None
        return explorer.axes(panel, x_axis, y_axis, int_param(params, "dims", 2, 2, 3))

    def logit_lens(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return explorer.logit_lens(panel, text_param(params, "text", MAX_TEXT_CHARS), int_param(params, "top_k", LENS_TOP_K, 1, 20))

    def lens_nearest(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        text = text_param(params, "text", MAX_TEXT_CHARS)
        n_layers = int(panel.meta.get("n_layers") or 0)
        layer = int_param(params, "layer", n_layers, 0, n_layers)
        position = int_param(params, "position", 0, 0, LENS_MAX_TOKENS - 1)
        k = int_param(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
        return explorer.lens_nearest(panel, text, layer, position, k)

    def index_page(request: Request) -> Response:
        return FileResponse(static / "index.html", media_type="text/html; charset=utf-8")

    def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_path, media_type="text/javascript; charset=utf-8",
                                headers={"Cache-Control": "max-age=86400"})
        if name in COMPONENT_FILES:
            return FileResponse(component_dir() / name, media_type=COMPONENT_FILES[name])
        if name not in STATIC_FILES or not (static / name).is_file():  # a fixed list: no client path reaches the disk
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(static / name, media_type=STATIC_FILES[name])

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = getattr(exc, "detail", "not found")
        return JSONResponse({"error": str(detail)}, status_code=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.warning("internal error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    api_routes = {"info": info, "points": points, "frequency": frequency, "projection": projection,
                  "projection/data": projection_data, "jobs": jobs, "search": search, "neighbors": neighbors,
                  "variants": variants, "tokens": tokens, "trajectory": trajectory, "grid": grid,
                  "logit_lens": logit_lens, "lens_nearest": lens_nearest,
                  "clusters": clusters, "axes": axes, "faithfulness": faithfulness,
                  "true_neighbors": true_neighbors_get, "compare": compare}
    fast_routes = {"neighbors": neighbors_fast, "true_neighbors": true_neighbors_fast}
    routes = [Route(f"/api/{name}", api(fn, fast_routes.get(name)), methods=["GET"]) for name, fn in api_routes.items()]
    routes += [Route("/api/centroid", post_api(centroid), methods=["POST"]),
               Route("/api/selection_graph", post_api(selection_graph_post), methods=["POST"])]
    routes += [Route("/", index_page, methods=["GET"]), Route("/static/{name}", static_file, methods=["GET"]),
               Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"])]

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_SecurityHeaders)]
    if token is not None:
        middleware.append(Middleware(TokenGate, token=token))
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        explorer.jobs.shutdown()
        explorer.index_jobs.shutdown()

    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: not_found, 500: server_error}, lifespan=lifespan)
    app.state.explorer = explorer
    return app


class _SecurityHeaders:
    """Adds a strict Content-Security-Policy (only this server's own scripts and data) and no-store on the API."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                if is_api:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def check_origin(headers: Any) -> None:
    """Refuse (403) a request a browser sent from another site: its ``Origin`` (or ``Sec-Fetch-Site``) says so.

    The ``Host`` check stops DNS rebinding; this stops a page elsewhere from posting to the explorer
    (a JSON content type already needs a CORS preflight, which this server never grants).
    """
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise BadRequest("cross-site requests are refused", status=403)
    origin = headers.get("origin")
    if origin is None:
        return
    host = headers.get("host", "")
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        netloc = ""
    if origin == "null" or netloc != host:  # the Host itself was checked by TrustedHostMiddleware
        raise BadRequest(f"requests from {origin[:60]!r} are refused (not this server's own page)", status=403)
