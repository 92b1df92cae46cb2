"""The ASGI application: a JSON API under ``/api/...`` and the page that uses it.

Models and spaces are fixed when the app is created; no endpoint reads a path the client names.
Every parameter is checked (numbers in range, string lengths, regular expressions time-limited) and a
bad request gets a 4xx with ``{"error": "..."}``; the server keeps serving. Heavy work (projections,
corpus frequencies, grid maps) runs in the background (:mod:`embedlens.serve.jobs`); queries never
wait for it.

Endpoints (all GET; ``space`` is the panel number, 0 or 1):

  /api/info                                         panels, methods, limits
  /api/points?space=0                               readable tokens, ids, length, whole-word, special
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
  /api/clusters?space=0&n=auto                      labelled clusters of the space (background job):
                                                    each row's cluster id (-1: none) and each cluster's label
  /api/axes?space=0&xa=man&xb=woman[&ya=..&yb=..]   a word-axes map: x = (u - a)·(b - a) / |b - a|^2
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..atlas.projection import (
    Projection,
    compute_projection,
    load_projection,
    projection_path,
    save_projection,
)
from ..errors import EmbedlensError
from ..method_names import (
    REDUCERS as METHODS,  # the explorer offers every reducer fitted on the vectors alone
)
from .jobs import JobManager
from .panels import MAX_K, MAX_QUERY_CHARS, MAX_REGEX_CHARS, MAX_TEXT_CHARS, BadRequest, Panel

log = logging.getLogger("embedlens")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
GRID_MIN, GRID_MAX = 4, 64
LENS_MAX_TOKENS = 128  # the explorer's logit lens reads at most this many tokens of a prompt (a note says so)
LENS_TOP_K = 5
_INTEGER = re.compile(r"-?[0-9]{1,12}")
_JS = "text/javascript; charset=utf-8"
STATIC_FILES = {name: _JS for name in ("boot.js", "core.js", "colors.js", "filters.js", "selection.js", "views.js", "app.js")}
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


class Explorer:
    """The server's state: the panels, the background jobs and the settings."""

    def __init__(self, panels: list[Panel], *, corpus: str | list[str] = "lee", seed: int = 0, workers: int = 1) -> None:
        if not 1 <= len(panels) <= 2:
            raise EmbedlensError(f"the explorer shows one or two spaces side by side, got {len(panels)}")
        self.panels = panels
        self.corpus = corpus
        self.seed = int(seed)
        self.jobs = JobManager(workers)
        self.index_jobs = JobManager(1)  # k-NN graphs: long, optional, never ahead of a projection
        self._points_json: dict[int, bytes] = {}
        self._model_lock = threading.Lock()
        self._grid_viz: dict[int, Any] = {}
        self._lens_results: dict[tuple, Any] = {}  # the last few logit lenses (with their states), for clicks

    # -- parameters --------------------------------------------------------------------------------------

    def panel(self, params: Any) -> Panel:
        raw = params.get("space", "0")
        if raw not in {str(p.index) for p in self.panels}:
            raise BadRequest(f"unknown space {raw[:20]!r}: this server shows spaces "
                             f"{', '.join(str(p.index) for p in self.panels)}", status=404)
        return self.panels[int(raw)]

    def projection_key(self, panel: Panel, method: str, dims: int) -> str:
        return f"projection:{panel.content_key}-{method}-{dims}-{self.seed}"

    # -- projections ---------------------------------------------------------------------------------------

    def projection(self, panel: Panel, method: str, dims: int, *, start: bool = True) -> tuple[dict[str, Any], Projection | None]:
        key = self.projection_key(panel, method, dims)
        job = self.jobs.get(key)
        label = f"{method.upper() if method == 'pca' else method} {dims}D map of {panel.title} ({len(panel.space):,} tokens)"
        if job is None:
            path = projection_path(panel.content_key, method, dims, self.seed)
            found = load_projection(path, len(panel.space))
            if found is not None:
                job = self.jobs.done(key, found, "projection", label)
            elif start:
                def work() -> Projection:
                    proj = compute_projection(panel.view, method, dims, self.seed)
                    save_projection(path, proj)
                    return proj

                job = self.jobs.submit(key, "projection", label, work)
            else:
                return {"state": "absent", "label": label}, None
        out = job.to_dict()
        proj = job.result if job.state == "ready" else None
        if proj is not None:
            out.update(proj.info(), n=int(proj.coords.shape[0]))
        return out, proj

    def points_json(self, panel: Panel) -> bytes:
        if panel.index not in self._points_json:
            import json

            self._points_json[panel.index] = json.dumps(panel.points(), ensure_ascii=False,
                                                        separators=(",", ":")).encode("utf-8")
        return self._points_json[panel.index]

    def frequency(self, panel: Panel) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            from ..corpus.frequencies import token_frequencies

            freqs = token_frequencies(panel.view, self.corpus, progress=False)
            return {"counts": freqs.counts.tolist(), **freqs.to_dict()}

        job = self.jobs.submit(f"frequency:{panel.index}", "frequency",
                               f"token frequencies of {panel.title} in {self.corpus}", work, retry_failed=False)
        out = job.to_dict()
        if job.state == "ready":
            out.update(job.result)
        return out

    # -- clusters and word axes ---------------------------------------------------------------------------

    def clusters(self, panel: Panel, n: str | int) -> dict[str, Any]:
        """Labelled clusters of the whole space (:func:`embedlens.atlas.clusters.find_clusters`), as a job."""
        key = f"clusters:{panel.content_key}:{n}:{self.seed}"

        def work() -> dict[str, Any]:
            from ..atlas.clusters import find_clusters

            vectors = np.asarray(panel.space.vectors, dtype=np.float32)
            found = find_clusters(vectors, clusters=n, metric="cosine", seed=self.seed, display=list(panel.display),
                                  coords=np.zeros((vectors.shape[0], 2), dtype=np.float32))
            block = found.to_dict()
            for c in block["clusters"]:
                c.pop("center", None)  # the page places labels on its own map
            return {**block, "assignment": found.assignment.tolist()}

        job = self.index_jobs.submit(key, "clusters", f"clusters of {panel.title} ({n})", work)
        out = job.to_dict()
        if job.state == "ready":
            out.update(job.result)
        return out

    def axes(self, panel: Panel, x_axis: tuple[str, str], y_axis: tuple[str, str] | None, dims: int) -> dict[str, Any]:
        """A word-axes map of the whole space (:class:`embedlens.reduce.axes.AxesReducer`); a second or two."""
        def compute() -> dict[str, Any]:
            from ..atlas.pipeline import reduce_stage
            from ..reduce.axes import formula, resolve_axes

            resolved = resolve_axes(panel.view, [x_axis, y_axis, None])  # the map's own reducer stage
            reducer, coords = reduce_stage(panel.view, np.asarray(panel.space.vectors, dtype=np.float32), True,
                                           method="axes", dims=dims, metric="cosine", seed=self.seed, axes=resolved)
            names = [f"{a['display'][0]} → {a['display'][1]}" for a in resolved if a is not None]
            names += ["principal direction of the rest"] * (dims - len(names))
            return {"dims": dims, "titles": names, "formula": formula("cosine"), "notes": reducer.notes_,
                    "coords": np.round(coords.astype(np.float64), 6).tolist(),
                    "ends": [{"axis": "xyz"[j], "rows": a["rows"], "display": a["display"]}
                             for j, a in enumerate(resolved) if a is not None]}

        return panel._cached(("axes", x_axis, y_axis, dims), compute)

    # -- contextual trajectory and grid ----------------------------------------------------------------

    def trajectory(self, panel: Panel, text: str, position: int, method: str, dims: int) -> dict[str, Any]:
        if not panel.causal or panel.which != "input":
            raise BadRequest(f"{panel.title}: trajectories are shown for the input space of a causal language model")
        _, proj = self.projection(panel, method, dims, start=False)
        if proj is None:
            raise BadRequest(f"the {method} {dims}D map of {panel.title} is not ready yet", status=409)
        if not proj.can_transform:
            raise BadRequest(f"a {method} map cannot place new points (t-SNE and UMAP maps are fitted to the "
                             "vocabulary only); switch the map to PCA to see the trajectory", status=422)
        from ..contextual import hidden_states
        from ..neighbors.exact import topk_cosine

        with self._model_lock:  # one forward pass at a time: the model is shared
            hs = hidden_states(panel.lens, text, layers="all")
        ts = hs.texts[0]
        if not 0 <= position < len(ts.ids):
            raise BadRequest(f"position must be 0..{len(ts.ids) - 1} (the prompt's non-special tokens), got {position}")
        states = np.ascontiguousarray(ts.states[:, position, :], dtype=np.float32)  # (n_layers + 1, d_model)
        coords = proj.transform(states)
        sp = panel.space
        nearest = topk_cosine(sp.vectors, states, 1, norms=sp.norms)
        rows = nearest.indices[:, 0]
        return {
            "text": text, "position": position, "id": int(ts.ids[position]), "display": ts.display[position],
            "tokens": [{"id": int(i), "display": d} for i, d in zip(ts.ids.tolist(), ts.display, strict=True)],
            "layers": list(hs.layers), "coords": coords.tolist(),
            "nearest": [{"row": int(r), "id": int(sp.ids[r]), "display": sp.display[r], "score": float(s)}
                        for r, s in zip(rows, nearest.scores[:, 0], strict=True)],
            "note": (f"hidden states projected with the map's PCA (fitted on the {panel.which} embeddings); "
                     "rows L2-normalised first, as for the map"),
        }

    def grid(self, panel: Panel, layer: int, plane: str, size: int, spacing: float,
             plane_tokens: list[str] | None) -> dict[str, Any]:
        if not panel.causal:
            raise BadRequest(f"{panel.title}: the grid map needs a causal language model with an LM head")
        key = f"grid:{panel.index}:{layer}:{plane}:{size}:{spacing}:{','.join(plane_tokens or [])}"

        def work() -> dict[str, Any]:
            from ..grid import EmbeddingGridVisualizer

            with self._model_lock:
                viz = self._grid_viz.get(panel.index)
                if viz is None:
                    viz = self._grid_viz[panel.index] = EmbeddingGridVisualizer(panel.lens)
                gm = viz.compute_map(size, spacing, plane, layer_idx=layer, plane_tokens=plane_tokens, progress=False)
            g = gm.grid_size
            return {"grid_size": g, "layer": gm.layer, "method": gm.method,
                    "x": gm.x[:g].tolist(), "y": gm.y[::g].tolist(),
                    "probs": gm.as_grid(gm.probs).tolist(),
                    "top5_display": np.asarray(gm.top5_display).tolist(),
                    "top5_ids": np.asarray(gm.top5_ids).tolist(),
                    "top5_probs": np.round(np.asarray(gm.top5_probs, dtype=np.float64), 5).tolist(),
                    "semantics": gm.config.get("semantics")}

        job = self.jobs.submit(key, "grid", f"grid map of {panel.title}, layer {layer}, {plane}, {size}x{size}", work)
        out = job.to_dict()
        if job.state == "ready":
            out["grid"] = job.result
        return out


    # -- the logit lens of a prompt ------------------------------------------------------------------------

    def _lens_result(self, panel: Panel, text: str, top_k: int) -> Any:
        if not panel.causal:
            raise BadRequest(f"{panel.title}: the logit lens needs a causal language model with an LM head")
        key = (panel.index, text, top_k)
        with self._model_lock:  # one forward pass at a time: the model is shared
            result = self._lens_results.get(key)
            if result is None:
                from ..logitlens import logit_lens
                from ..logitlens.compute import context_limit

                cap = min(LENS_MAX_TOKENS, context_limit(panel.lens) or LENS_MAX_TOKENS)
                result = logit_lens(panel.lens, text, top_k=top_k, max_tokens=cap, keep_states=True)
                while len(self._lens_results) >= 4:
                    self._lens_results.pop(next(iter(self._lens_results)))
                self._lens_results[key] = result
        return result

    def logit_lens(self, panel: Panel, text: str, top_k: int) -> dict[str, Any]:
        r = self._lens_result(panel, text, top_k)
        ranks = r.target_rank.astype(object)
        ranks[r.target_rank <= 0] = None
        return {"text": r.text, "layers": list(r.layers), "n_layers": r.n_layers, "positions": r.positions.tolist(),
                "ids": r.token_ids.tolist(), "display": list(r.display), "top_ids": r.top_ids.tolist(),
                "top_display": r.top_display.tolist(),
                "top_probs": np.round(r.top_probs.astype(np.float64), 5).tolist(), "target_rank": ranks.tolist(),
                "notes": list(r.notes), "semantics": r.settings.get("semantics"), "dtype": r.settings.get("dtype")}

    def lens_nearest(self, panel: Panel, text: str, layer: int, position: int, k: int) -> dict[str, Any]:
        """The nearest tokens (cosine, in this panel's space) of the residual state at (layer, position)."""
        r = self._lens_result(panel, text, LENS_TOP_K)
        if layer not in r.layers:
            raise BadRequest(f"layer must be 0..{r.n_layers}, got {layer}")
        if not 0 <= position < len(r.positions):
            raise BadRequest(f"position must be 0..{len(r.positions) - 1}, got {position}")
        li = r.layers.index(layer)
        sp = panel.space
        nb = panel.scan_index.query(np.asarray(r.states[li, position], dtype=np.float32)[None, :], k)
        rows = nb.indices[0]
        return {"layer": layer, "position": position, "display": r.display[int(r.positions[position])],
                "neighbors": [{"id": int(sp.ids[i]), "display": sp.display[i], "score": float(s)}
                              for i, s in zip(rows, nb.scores[0], strict=True)],
                "rows": [int(i) for i in rows], "space": sp.name,
                "top": [{"id": int(t), "display": d, "prob": float(p)} for t, d, p in
                        zip(r.top_ids[li, position].tolist(), r.top_display[li, position].tolist(),
                            r.top_probs[li, position].tolist(), strict=True)]}


# -- request parsing ----------------------------------------------------------------------------------


def _text(params: Any, name: str, max_chars: int, *, default: str | None = None) -> str:
    value = params.get(name, default)
    if value is None or value == "":
        raise BadRequest(f"parameter '{name}' is required")
    if len(value) > max_chars:
        raise BadRequest(f"parameter '{name}' is {len(value)} characters long; the limit is {max_chars}", status=413)
    if "\x00" in value:
        raise BadRequest(f"parameter '{name}' contains a NUL character")
    return value


def _int(params: Any, name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"parameter '{name}' must be an integer, got {raw[:20]!r}")
    value = int(raw)
    if not lo <= value <= hi:
        raise BadRequest(f"parameter '{name}' must be between {lo} and {hi}, got {value}")
    return value


def _float(params: Any, name: str, default: float, lo: float, hi: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw) if len(raw) <= 20 else float("nan")
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or not lo <= value <= hi:
        raise BadRequest(f"parameter '{name}' must be a number between {lo:g} and {hi:g}, got {raw[:20]!r}")
    return value


def _choice(params: Any, name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in choices:
        raise BadRequest(f"parameter '{name}' must be one of {', '.join(choices)}, got {value[:20]!r}")
    return value


def _map_params(params: Any) -> tuple[str, int]:
    return _choice(params, "method", METHODS, "pca"), _int(params, "dims", 2, 2, 3)


# -- the app ------------------------------------------------------------------------------------------------


def create_app(spaces: list[Any], *, corpus: str | list[str] = "lee", seed: int = 0,
               allowed_hosts: list[str] | None = None, regex_seconds: float | None = None, knn: bool = True) -> Any:
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
    explorer = Explorer(panels, corpus=corpus, seed=seed)
    plotly_path = plotly_js_path()
    static = static_dir()

    def api(fn, fast=None):
        async def endpoint(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            try:
                out = fast(request.query_params) if fast is not None else None
                if out is None:  # the usual path: a worker thread, so the event loop never waits on NumPy
                    out = await run_in_threadpool(fn, request.query_params)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except EmbedlensError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except MemoryError:
                return JSONResponse({"error": "out of memory: ask for less"}, status_code=503)
            return out if isinstance(out, Response) else JSONResponse(out)

        return endpoint

    def info(params: Any) -> dict[str, Any]:
        from ..grid import METHODS as GRID_PLANES

        return {"panels": [p.describe() for p in panels], "methods": list(METHODS), "dims": [2, 3],
                "seed": explorer.seed, "corpus": explorer.corpus, "grid_planes": list(GRID_PLANES),
                "limits": {"k_max": MAX_K, "query_chars": MAX_QUERY_CHARS, "regex_chars": MAX_REGEX_CHARS,
                           "text_chars": MAX_TEXT_CHARS, "grid_min": GRID_MIN, "grid_max": GRID_MAX}}

    def points(params: Any) -> Response:
        return Response(explorer.points_json(explorer.panel(params)), media_type="application/json")

    def frequency(params: Any) -> dict[str, Any]:
        return explorer.frequency(explorer.panel(params))

    def projection(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        method, dims = _map_params(params)
        out, _ = explorer.projection(panel, method, dims)
        return out

    def projection_data(params: Any) -> Response:
        panel = explorer.panel(params)
        method, dims = _map_params(params)
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
        mode = _choice(params, "mode", ("text", "regex"), "text")
        q = _text(params, "q", MAX_REGEX_CHARS if mode == "regex" else MAX_QUERY_CHARS)
        limit = _int(params, "limit", len(panel.space), 1, max(len(panel.space), 1))
        return panel.search(q, mode=mode, limit=limit).to_dict(panel.display)

    def neighbors(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        q = _text(params, "q", MAX_QUERY_CHARS)
        k = _int(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
        return panel.neighbors(q, k)

    def neighbors_fast(params: Any) -> dict[str, Any] | None:
        """Look-ups that take microseconds (result cache, k-NN graph) are answered on the event loop."""
        panel = explorer.panel(params)
        q = _text(params, "q", MAX_QUERY_CHARS)
        k = _int(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
        return panel.neighbors_fast(q, k)

    def variants(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return panel.variants(_text(params, "q", MAX_QUERY_CHARS))

    def tokens(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return panel.tokens(_text(params, "text", MAX_TEXT_CHARS))

    def trajectory(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        text = _text(params, "text", MAX_TEXT_CHARS)
        position = _int(params, "position", 0, 0, MAX_TEXT_CHARS)
        method, dims = _map_params(params)
        return explorer.trajectory(panel, text, position, method, dims)

    def grid(params: Any) -> dict[str, Any]:
        from ..grid import METHODS as GRID_PLANES

        panel = explorer.panel(params)
        n_layers = int(panel.meta.get("n_layers") or 0)
        layer = _int(params, "layer", n_layers - 1 if n_layers else 0, 0, n_layers)
        plane = _choice(params, "plane", tuple(GRID_PLANES), "pca")
        size = _int(params, "size", 32, GRID_MIN, GRID_MAX)
        spacing = _float(params, "spacing", 0.5, 1e-3, 100.0)
        plane_tokens = None
        if plane == "tokens":
            raw = _text(params, "plane_tokens", MAX_QUERY_CHARS)
            plane_tokens = [t for t in raw.split(",")]
            if len(plane_tokens) != 3 or not all(plane_tokens):
                raise BadRequest("plane 'tokens' needs plane_tokens=A,B,C (three tokens, comma-separated)")
        return explorer.grid(panel, layer, plane, size, spacing, plane_tokens)

    def clusters(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        raw = params.get("n", "auto") or "auto"
        if raw != "auto":
            raw = str(_int(params, "n", 2, 2, min(500, max(2, len(panel.space)))))
        return explorer.clusters(panel, raw if raw == "auto" else int(raw))

    def axes(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        x_axis = (_text(params, "xa", MAX_QUERY_CHARS), _text(params, "xb", MAX_QUERY_CHARS))
        ya, yb = params.get("ya") or "", params.get("yb") or ""
        if bool(ya) != bool(yb):
            raise BadRequest("the y axis needs both tokens (ya and yb), or neither")
        y_axis = (_text(params, "ya", MAX_QUERY_CHARS), _text(params, "yb", MAX_QUERY_CHARS)) if ya else None
        return explorer.axes(panel, x_axis, y_axis, _int(params, "dims", 2, 2, 3))

    def logit_lens(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        return explorer.logit_lens(panel, _text(params, "text", MAX_TEXT_CHARS), _int(params, "top_k", LENS_TOP_K, 1, 20))

    def lens_nearest(params: Any) -> dict[str, Any]:
        panel = explorer.panel(params)
        text = _text(params, "text", MAX_TEXT_CHARS)
        n_layers = int(panel.meta.get("n_layers") or 0)
        layer = _int(params, "layer", n_layers, 0, n_layers)
        position = _int(params, "position", 0, 0, LENS_MAX_TOKENS - 1)
        k = _int(params, "k", 20, 1, min(MAX_K, len(panel.space) - 1))
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
        if name not in STATIC_FILES:  # a fixed list: no path from the client ever reaches the file system
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
                  "clusters": clusters, "axes": axes}
    fast_routes = {"neighbors": neighbors_fast}
    routes = [Route(f"/api/{name}", api(fn, fast_routes.get(name)), methods=["GET"]) for name, fn in api_routes.items()]
    routes += [Route("/", index_page, methods=["GET"]), Route("/static/{name}", static_file, methods=["GET"]),
               Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"])]

    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_SecurityHeaders)]
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
