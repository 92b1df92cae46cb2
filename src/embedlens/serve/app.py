"""The ASGI application: a JSON API under ``/api/...`` and the page that uses it.

The API is the table :data:`embedlens.serve.endpoints.ENDPOINTS` (path, method, answer, parser);
:func:`create_app` only wires it into Starlette with the static files and the error answers.

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
  /api/logit_lens?space=0&text=...&top_k=5&decoder=logit   the prompt's logit lens: every layer x token decoded
                                                    (``decoder=tuned``: with the model's cached tuned lens)
  /api/layer_nearest?space=0&text=...&layer=5&position=2&k=20&decoder=logit   nearest tokens of that layer's
                                                    residual state, and what the decoder reads there
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
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import EmbedlensError
from ..lens import Lens, SpaceView
from .access import TokenGate
from .endpoints import ENDPOINTS, Coordinates, Endpoint
from .explorer import Explorer
from .panels import BadRequest, Panel
from .params import read_json_body

log = logging.getLogger("embedlens")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_JS = "text/javascript; charset=utf-8"
# boot.js (a classic script: starts the big downloads at once) and the page's ES modules, main.js first.
PAGE_MODULES = ("main.js", "state.js", "dom.js", "api.js", "offline.js", "maps.js", "colors.js", "filters.js",
                "selection.js", "token.js", "search.js", "clusters.js", "prompt.js", "jobs.js", "views.js", "layers.js",
                "grid.js", "graph.js")
STATIC_FILES = {name: _JS for name in ("boot.js", *PAGE_MODULES)}
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


def create_app(spaces: list[Lens | SpaceView | Panel], *, corpus: str | list[str] = "lee", seed: int = 0,
               allowed_hosts: list[str] | None = None, regex_seconds: float | None = None, knn: bool = True,
               token: str | None = None) -> Any:
    """The Starlette app serving one or two spaces: the routes of :data:`~embedlens.serve.endpoints.ENDPOINTS`,
    the page's static files, and every refusal as one-line JSON.

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
    from starlette.responses import Response
    from starlette.routing import Route

    explorer = Explorer(make_panels(spaces, regex_seconds, knn), corpus=corpus, seed=seed, knn=knn)
    routes = [Route(f"/api/{e.path}", api_endpoint(explorer, e), methods=[e.method]) for e in ENDPOINTS]
    routes += [Route("/", index_page, methods=["GET"]), Route("/static/{name}", static_file(plotly_js_path()), methods=["GET"]),
               Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"])]
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_SecurityHeaders)]
    if token is not None:
        middleware.append(Middleware(TokenGate, token=token))

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        # Stopped, not waited for: waiting here would block the event loop and with it a second Ctrl+C. The
        # process joins the job threads at exit, which now lasts until the next checkpoint, not the job's end.
        explorer.jobs.shutdown()
        explorer.index_jobs.shutdown()

    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={HTTPException: not_found, 500: server_error}, lifespan=lifespan)
    app.state.explorer = explorer
    return app


def make_panels(spaces: list[Lens | SpaceView | Panel], regex_seconds: float | None, knn: bool) -> list[Panel]:
    """One :class:`Panel` per space, numbered in order (a given panel is renumbered)."""
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
    return panels


def api_endpoint(explorer: Explorer, endpoint: Endpoint) -> Any:
    """The Starlette endpoint of one table row: origin checked, request parsed, answered off the event loop
    (unless ``endpoint.fast`` answers at once), refusals as one-line JSON 4xx; the server keeps serving."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    async def answer(request: Request) -> Any:
        check_origin(request.headers)  # a page elsewhere cannot read the answer; it must not start work either
        if endpoint.method == "POST":
            raw: Any = await read_json_body(request)
            args = await run_in_threadpool(endpoint.parse, explorer, raw)
        else:
            args = endpoint.parse(explorer, request.query_params)
        out = endpoint.fast(explorer, args) if endpoint.fast is not None else None
        if out is None:  # the usual path: a worker thread, so the event loop never waits on NumPy
            out = await run_in_threadpool(endpoint.answer, explorer, args)
        return out

    async def respond(request: Request) -> Response:
        try:
            out = await answer(request)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except EmbedlensError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except MemoryError:
            return JSONResponse({"error": "out of memory: ask for less"}, status_code=503)
        return as_response(out)

    return respond


def as_response(out: Any) -> Any:
    """An endpoint's answer as a response: a dict as JSON, bytes as JSON already encoded, coordinates raw."""
    from starlette.responses import JSONResponse, Response

    if isinstance(out, bytes):
        return Response(out, media_type="application/json")
    if isinstance(out, Coordinates):
        body = np.ascontiguousarray(out.coords, dtype="<f4")
        return Response(body.tobytes(), media_type="application/octet-stream",
                        headers={"X-Shape": f"{body.shape[0]},{body.shape[1]}"})
    return JSONResponse(out)


def index_page(request: Any) -> Any:
    from starlette.responses import FileResponse

    return FileResponse(static_dir() / "index.html", media_type="text/html; charset=utf-8")


def static_file(plotly_path: Path) -> Any:
    """The endpoint of ``/static/{name}``: a fixed list of files, so no client path reaches the disk."""
    from starlette.responses import FileResponse, JSONResponse

    static = static_dir()

    def endpoint(request: Any) -> Any:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_path, media_type="text/javascript; charset=utf-8",
                                headers={"Cache-Control": "max-age=86400"})
        if name in COMPONENT_FILES:
            return FileResponse(component_dir() / name, media_type=COMPONENT_FILES[name])
        if name not in STATIC_FILES or not (static / name).is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(static / name, media_type=STATIC_FILES[name])

    return endpoint


async def not_found(request: Any, exc: Exception) -> Any:
    from starlette.responses import JSONResponse

    status = getattr(exc, "status_code", 404)
    detail = getattr(exc, "detail", "not found")
    return JSONResponse({"error": str(detail)}, status_code=status)


async def server_error(request: Any, exc: Exception) -> Any:
    from starlette.responses import JSONResponse

    log.warning("internal error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


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


def check_origin(headers: Mapping[str, str]) -> None:
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
