"""The explorer's state: its panels, the background jobs, and what the page asks of a whole space.

What a page needs when it opens (:meth:`Explorer.open_panel`), in the order it needs it:

1. a map at once: a cached t-SNE (or UMAP) 2-D projection of the space when there is one (``embedlens
   map --all`` and earlier explorers write them, :mod:`embedlens.atlas.projection`); else PCA, computed
   in about a second;
2. the space's k-NN graph (:func:`embedlens.neighbors.knn.cached_knn`, else built and cached): up to
   :data:`~embedlens.neighbors.index.EXACT_MAX` rows the exact graph of :data:`GRAPH_K` neighbours
   (:func:`~embedlens.neighbors.knn.build_knn`), which serves the t-SNE (perplexity 30 needs 90), the clusters
   (15), faithfulness (10) and neighbour look-ups; above, the graph the t-SNE map itself finds
   (:func:`~embedlens.reduce.knn.map_knn_graph`: 30 neighbours by NN-descent, its recall measured), which the
   map and the clusters share;
3. the labelled clusters, found on that graph (Leiden: about a second, no new search);
4. the t-SNE map, which starts from the same graph; the page swaps it in when it is ready.

Steps 2-4 run on the long-job queue, lowest priority last: clusters and faithfulness go ahead of a
queued t-SNE. Nothing here computes what the library does not: maps are
:func:`~embedlens.atlas.pipeline.compute_projection`, clusters
:func:`~embedlens.atlas.clusters.find_clusters`, faithfulness :func:`~embedlens.reduce.quality.local_recall`.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..atlas.clusters import CLUSTER_K, Clustering, find_clusters, label_levels
from ..atlas.default_map import CACHED_METHODS  # the cached maps a space opens on, best first
from ..atlas.pipeline import QUALITY_SAMPLE, add_local_recall, compute_projection, reduce_stage
from ..atlas.projection import Projection, load_projection, projection_path, save_projection
from ..comparison import Comparison, compare
from ..contextual import hidden_states
from ..corpus.frequencies import TokenFrequencies, token_frequencies
from ..errors import EmbedlensError
from ..grid import EmbeddingGridVisualizer, GridMap
from ..logitlens import logit_lens
from ..logitlens.compute import context_limit
from ..logitlens.result import LogitLensResult
from ..logitlens.tuned_files import WEIGHTS_FILE, cached_folder
from ..neighbors.exact import topk_cosine
from ..neighbors.index import EXACT_MAX, PrecomputedIndex
from ..neighbors.knn import KnnGraph, build_knn, cached_knn
from ..reduce.axes import formula, resolve_axes
from ..reduce.knn import map_knn_graph
from ..reduce.options import ReduceOptions
from ..reduce.quality import sample_indices
from .jobs import Job, JobManager, job_answer
from .panels import MAX_K, BadRequest, Panel

LOGIT_LENS_MAX_TOKENS = 128  # the explorer's logit lens reads at most this many tokens of a prompt (a note says so)
LOGIT_LENS_TOP_K = 5
GRAPH_K = 100  # neighbours per row of the space's graph: t-SNE's 90 (30 from 100,001 rows), clusters' 15, recall's 10
FAITH_K = 10  # local recall@10, the k of every map's recall figure
MIN_TSNE_POINTS = 50  # below this a t-SNE map says little: the page stays on PCA
# Long-job priorities (lower first): what the page waits for on screen goes ahead of the default t-SNE.
PRIORITY_GRAPH, PRIORITY_PAGE, PRIORITY_BACKGROUND = 0, 1, 2


# -- what a long-work endpoint answers once its job is ready (jobs.job_answer puts the job beside it) ------------


def projection_answer(proj: Projection) -> dict[str, Any]:
    """``/api/projection``: the projection's metadata (what its ``.npz`` file holds beside the coordinates) and
    ``n``, its number of rows (the coordinates themselves come from ``/api/projection/data``)."""
    return {"result": proj.info(), "n": int(proj.coords.shape[0])}


def frequency_answer(freqs: TokenFrequencies) -> dict[str, Any]:
    """``/api/frequency``: ``TokenFrequencies.to_dict()`` and ``counts``, each row's count."""
    return {"result": freqs.to_dict(), "counts": freqs.counts.tolist()}


def clusters_answer(found: Clustering) -> dict[str, Any]:
    """``/api/clusters``: ``Clustering.to_dict()`` (a map's manifest block) and the per-point columns a map keeps
    in ``points.parquet``: ``assignment`` (each row's cluster, -1 none) and the label ``levels``."""
    return {"result": found.to_dict(), "assignment": found.assignment.tolist(), "levels": label_levels(found, found.sub)}


def result_answer(result: GridMap | Comparison) -> dict[str, Any]:
    """``/api/grid``, ``/api/compare``: the result's ``to_dict()``, nothing beside it."""
    return {"result": result.to_dict()}


def faithfulness_answer(measured: dict[str, Any]) -> dict[str, Any]:
    """``/api/faithfulness``: the map's local recall (:meth:`Explorer.map_faithfulness`)."""
    return {"result": measured}


class Explorer:
    """The server's state: the panels, the background jobs and the settings."""

    def __init__(self, panels: list[Panel], *, corpus: str | list[str] = "lee", seed: int = 0, workers: int = 1,
                 knn: bool = True) -> None:
        if not 1 <= len(panels) <= 2:
            raise EmbedlensError(f"the explorer shows one or two spaces side by side, got {len(panels)}")
        self.panels = panels
        self.corpus = corpus
        self.seed = int(seed)
        self.jobs = JobManager(workers)
        self.index_jobs = JobManager(1)  # k-NN graphs, clusters, faithfulness, the default t-SNE (by priority)
        self.knn = bool(knn)  # neighbour look-ups may read the space's graph
        self._graphs: dict[int, KnnGraph] = {}
        self._graph_indexes: dict[int, PrecomputedIndex] = {}
        self._graph_lock = threading.Lock()
        # A map's key may be queued on either queue (a page's ask, the default t-SNE): find-or-submit is one step
        self._projection_lock = threading.Lock()
        self._points_json: dict[int, bytes] = {}
        self._model_lock = threading.Lock()
        self._grid_viz: dict[int, EmbeddingGridVisualizer] = {}
        self._logit_lens_results: dict[tuple, LogitLensResult] = {}  # the last few logit lenses (with their states), for clicks

    # -- parameters --------------------------------------------------------------------------------------

    def panel(self, params: Mapping[str, str]) -> Panel:
        raw = params.get("space", "0")
        if raw not in {str(p.index) for p in self.panels}:
            raise BadRequest(f"unknown space {raw[:20]!r}: this server shows spaces "
                             f"{', '.join(str(p.index) for p in self.panels)}", status=404)
        return self.panels[int(raw)]

    def projection_key(self, panel: Panel, method: str, dims: int) -> str:
        return f"projection:{panel.content_key}-{method}-{dims}-{self.seed}"

    def job(self, key: str) -> Job | None:
        """The job of ``key`` on either queue."""
        return self.jobs.get(key) or self.index_jobs.get(key)

    # -- projections ---------------------------------------------------------------------------------------

    def projection(self, panel: Panel, method: str, dims: int, *, start: bool = True) -> tuple[dict[str, Any], Projection | None]:
        """The map's answer (:func:`projection_answer` once ready; state ``absent`` when no job exists and
        ``start`` is False) and the :class:`Projection` when it is ready, else None."""
        with self._projection_lock:
            job = self._projection_job(panel, method, dims, start)
        if job is None:
            absent = Job(self.projection_key(panel, method, dims), "projection",
                         self._projection_label(panel, method, dims), state="absent")
            return job_answer(absent, projection_answer), None
        return job_answer(job, projection_answer), job.result if job.state == "ready" else None

    @staticmethod
    def _projection_label(panel: Panel, method: str, dims: int) -> str:
        return f"{method.upper() if method == 'pca' else method} {dims}D map of {panel.title} ({len(panel.space):,} tokens)"

    def _projection_job(self, panel: Panel, method: str, dims: int, start: bool) -> Job | None:
        """The map's job on either queue, else one for the cached file, else (``start``) a new one; else None."""
        key = self.projection_key(panel, method, dims)
        job = self.job(key)
        label = self._projection_label(panel, method, dims)
        if job is None:
            path = projection_path(panel.content_key, method, dims, self.seed)
            found = load_projection(path, len(panel.space))
            if found is not None:
                job = self.jobs.done(key, found, "projection", label)
            elif start:
                def work() -> Projection:
                    if method in CACHED_METHODS:  # t-SNE and UMAP start from the space's graph: cached for the rest
                        self.space_graph(panel, self.map_neighbors(panel, method, dims))
                    proj = compute_projection(panel.view, ReduceOptions(method, dims, seed=self.seed))
                    save_projection(path, proj)
                    return proj

                job = self.jobs.submit(key, "projection", label, work)
        return job

    def points_json(self, panel: Panel) -> bytes:
        if panel.index not in self._points_json:
            self._points_json[panel.index] = json.dumps(panel.points(), ensure_ascii=False,
                                                        separators=(",", ":")).encode("utf-8")
        return self._points_json[panel.index]

    def frequencies(self, panel: Panel) -> TokenFrequencies:
        """Each row's count in the explorer's corpus (computed now)."""
        return token_frequencies(panel.view, self.corpus, progress=False)

    def frequency(self, panel: Panel) -> dict[str, Any]:
        """:meth:`frequencies` as a job: :func:`frequency_answer` once ready."""
        job = self.jobs.submit(f"frequency:{panel.index}", "frequency",
                               f"token frequencies of {panel.title} in {self.corpus}",
                               lambda: self.frequencies(panel), retry_failed=False)
        return job_answer(job, frequency_answer)

    # -- what the page needs when it opens ----------------------------------------------------------------

    def open_panel(self, panel: Panel) -> dict[str, Any]:
        """The panel's ``default_map``; queues what the page asks next (graph, clusters, pending t-SNE).

        Returns ``{"method", "dims": 2, "pending"}``: a cached t-SNE/UMAP map when there is one (pending
        None); else ``pca`` (its job started now) and ``pending="tsne"`` while a t-SNE job is queued
        or running (None if it cannot run: too few points, or it failed).
        """
        for method in CACHED_METHODS:
            _, proj = self.projection(panel, method, 2, start=False)
            if proj is not None:
                return {"method": method, "dims": 2, "pending": None}
        self.projection(panel, "pca", 2)
        pending = None
        if len(panel.space) >= MIN_TSNE_POINTS:
            self.graph_job(panel, self.map_neighbors(panel, "tsne", 2))  # what the t-SNE needs serves the rest
            self.clusters_job(panel, "auto")
            job = self.tsne_job(panel)
            pending = "tsne" if job.state in ("queued", "running") else None
        return {"method": "pca", "dims": 2, "pending": pending}

    def tsne_job(self, panel: Panel) -> Job:
        """The 2-D t-SNE map of the space, after its graph (so it starts from the cached exact graph)."""
        key = self.projection_key(panel, "tsne", 2)
        path = projection_path(panel.content_key, "tsne", 2, self.seed)

        def work() -> Projection:
            self.space_graph(panel, self.map_neighbors(panel, "tsne", 2))  # build_atlas's reducer reads it
            proj = compute_projection(panel.view, ReduceOptions("tsne", 2, seed=self.seed))
            save_projection(path, proj)
            return proj

        label = f"t-SNE 2D map of {panel.title} ({len(panel.space):,} tokens)"
        with self._projection_lock:
            asked = self.jobs.get(key)  # the page asked for this map before it opened (a link): that job is it
            if asked is not None:
                return asked
            return self.index_jobs.submit(key, "projection", label, work, retry_failed=False,
                                          priority=PRIORITY_BACKGROUND)

    # -- the space's k-NN graph ----------------------------------------------------------------------------

    def graph_k(self, panel: Panel) -> int:
        return max(1, min(GRAPH_K, len(panel.space) - 1))

    def map_neighbors(self, panel: Panel, method: str, dims: int) -> int:
        """Neighbours per row a whole-space ``method`` map starts from (by default t-SNE 90, or 30 from 100,001
        rows; UMAP 14)."""
        reducer = ReduceOptions(method, dims, seed=self.seed).reducer()
        return max(1, reducer.neighbors_needed(len(panel.space)))

    def space_graph(self, panel: Panel, k: int | None = None) -> KnnGraph:
        """The space's :class:`~embedlens.neighbors.knn.KnnGraph` with >= ``k`` neighbours (default
        :data:`GRAPH_K`): kept in memory, else any cached one wide enough (``embedlens knn``), else built and
        cached, so one build serves every later ask: up to ``EXACT_MAX`` rows the exact graph of
        :data:`GRAPH_K` neighbours, which neighbour look-ups read too (unless the explorer has ``knn=False``);
        above, the t-SNE map's own graph (:func:`~embedlens.reduce.knn.map_knn_graph`, at least the map's k)."""
        want = self.graph_k(panel) if k is None else max(1, min(int(k), len(panel.space) - 1))
        with self._graph_lock:  # one build per space, whichever queue asks first
            graph = self._graphs.get(panel.index)
            if graph is not None and graph.k >= want:
                return graph
            big = len(panel.space) > EXACT_MAX
            # A big space's graph is the one its t-SNE map finds (NN-descent at the map's k, ~70 s on Gemma's
            # 262,144 rows), not 100 neighbours through bfloat16 products (~440 s) that no map or look-up reads.
            widest = max(want, self.map_neighbors(panel, "tsne", 2) if big else self.graph_k(panel))
            graph = cached_knn(panel.view, widest) or (cached_knn(panel.view, want) if want < widest else None)
            if graph is None and big:
                graph = map_knn_graph(np.asarray(panel.space.vectors), widest, seed=self.seed)
            elif graph is None:
                graph, _, _ = build_knn(panel.view, widest, method="exact")
            self._graphs[panel.index] = graph
            self._graph_indexes[panel.index] = graph.index()
        if self.knn and graph.method == "exact":
            panel.use_knn(graph if graph.k <= MAX_K else graph.truncate(MAX_K))
        return graph

    def ready_graph(self, panel: Panel) -> KnnGraph | None:
        """The graph when it is already in memory, else None (never waits)."""
        return self._graphs.get(panel.index)

    def ready_graph_index(self, panel: Panel) -> PrecomputedIndex | None:
        """That graph as a :class:`~embedlens.neighbors.index.PrecomputedIndex` (rows up to its k), or None."""
        return self._graph_indexes.get(panel.index)

    def graph_job(self, panel: Panel, k: int | None = None) -> Job:
        """:meth:`space_graph` as a long job (``embedlens serve --knn build`` queues it at start-up)."""
        kk = self.graph_k(panel) if k is None else max(1, min(int(k), len(panel.space) - 1))

        def work() -> str:
            graph = self.space_graph(panel, kk)
            return f"{graph.method} {graph.k}-NN graph ({graph.backend})"

        return self.index_jobs.submit(f"knn:{panel.index}", "knn", f"{kk}-NN graph of {panel.title}", work,
                                      priority=PRIORITY_GRAPH)

    # -- clusters and faithfulness -------------------------------------------------------------------------

    def clusters_job(self, panel: Panel, n: str | int) -> Job:
        """Labelled clusters of the whole space (:func:`embedlens.atlas.clusters.find_clusters`) and their
        sub-clusters, on the space's k-NN graph (:meth:`space_graph`: no new search when it is cached), with
        both as the map's label levels (:func:`~embedlens.atlas.clusters.label_levels`)."""
        key = f"clusters:{panel.content_key}:{n}:{self.seed}"
        return self.index_jobs.submit(key, "clusters", f"clusters of {panel.title} ({n})",
                                      lambda: self.space_clusters(panel, n), priority=PRIORITY_PAGE)

    def space_clusters(self, panel: Panel, n: str | int) -> Clustering:
        """The space's labelled clusters and sub-clusters (computed now) on its k-NN graph."""
        graph = self.space_graph(panel, CLUSTER_K)
        vectors = panel.space.vectors
        # no map coordinates: the page places labels on its own map
        found = find_clusters(vectors, clusters=n, metric="cosine", seed=self.seed, display=panel.display,
                              indices=graph.indices[:, :CLUSTER_K], sub=True)
        stored = graph.params.get("truncated_from", graph.k)
        found.params["knn_source"] = f"the space's cached {graph.method} {stored}-NN graph ({graph.backend})"
        return found

    def clusters(self, panel: Panel, n: str | int) -> dict[str, Any]:
        """:meth:`clusters_job`'s answer: :func:`clusters_answer` once ready."""
        return job_answer(self.clusters_job(panel, n), clusters_answer)

    # -- two panels side by side ----------------------------------------------------------------------------

    def comparison(self) -> dict[str, Any]:
        """The two panels compared (:func:`embedlens.comparison.compare`: the shared tokens' rows in each panel,
        each token's neighbourhood overlap, the figures and their control), as a job; ``Comparison.to_dict()``
        as its result once ready."""
        if len(self.panels) != 2:
            raise BadRequest("a comparison needs two spaces side by side (serve -m A -m B)")
        a, b = self.panels

        def work() -> Comparison:
            return compare(a.view, b.view, maps=False, seed=self.seed)

        job = self.index_jobs.submit(f"compare:{a.content_key}:{b.content_key}:{self.seed}", "compare",
                                     f"{a.title} compared with {b.title}", work, priority=PRIORITY_PAGE)
        return job_answer(job, result_answer)

    def faithfulness(self, panel: Panel, method: str, dims: int) -> dict[str, Any]:
        """Local recall@10 of each token on a map (:attr:`Projection.local_recall
        <embedlens.atlas.projection.Projection.local_recall>`), as a job.

        A t-SNE/UMAP projection carries it; a PCA map gets it from
        :func:`~embedlens.atlas.pipeline.add_local_recall` (its truth: the space's k-NN graph, which
        :meth:`space_graph` caches first) and is saved again with it. ``recall`` is the mean over the map
        recall's seeded query rows: the map's recall@10. Waits (job state ``waiting``, ``waiting_for`` the map's
        job key) for the map; :func:`faithfulness_answer` once ready.
        """
        state, proj = self.projection(panel, method, dims, start=False)
        key = f"faithfulness:{panel.content_key}-{method}-{dims}-{self.seed}"
        label = f"local recall@{FAITH_K} of the {method} {dims}D map of {panel.title}"
        if proj is None:
            mapped = state["job"]
            if mapped["state"] in ("absent", "error"):
                raise BadRequest(f"there is no {method} {dims}D map of {panel.title} "
                                 f"({mapped['error'] or 'ask /api/projection for it first'})", status=409)
            waiting = job_answer(Job(key, "faithfulness", label, state="waiting"), faithfulness_answer)
            waiting["job"]["waiting_for"] = mapped["key"]
            return waiting
        job = self.index_jobs.submit(key, "faithfulness", label, lambda: self.map_faithfulness(panel, method, dims, proj),
                                     priority=PRIORITY_PAGE)
        return job_answer(job, faithfulness_answer)

    def map_faithfulness(self, panel: Panel, method: str, dims: int, proj: Projection) -> dict[str, Any]:
        """The local recall of each token on the map ``proj`` and the map's recall (computed now; the projection
        is saved again with its local recall when it had none)."""
        measured = proj
        if measured.local_recall is None or len(measured.local_recall) != len(panel.space):
            # The shared graph is the truth: on a big space the exhaustive search a new truth needs would take
            # minutes ahead of the t-SNE; the recall's query rows are searched exactly whatever the graph.
            measured = add_local_recall(panel.view, proj, graph=self.space_graph(panel, FAITH_K))
            save_projection(projection_path(panel.content_key, method, dims, self.seed), measured)
            job = self.job(self.projection_key(panel, method, dims))
            if job is not None and job.result is proj:
                job.result = measured
        local = measured.local_recall
        about = measured.params.get("local_recall", {})
        k = int(about.get("k", FAITH_K))
        rows = sample_indices(len(panel.space), QUALITY_SAMPLE, self.seed)
        hits = np.rint(np.asarray(local, dtype=np.float64) * k)  # whole neighbours: the recall adds them up
        return {"k": k, "local_recall": (hits / k).tolist(), "recall": float(hits[rows].sum() / (rows.size * k)),
                "queries": int(rows.size), "truth": about.get("truth"), "method": method, "dims": dims}

    def axes(self, panel: Panel, x_axis: tuple[str, str], y_axis: tuple[str, str] | None, dims: int) -> dict[str, Any]:
        """A word-axes map of the whole space (:class:`embedlens.reduce.axes.AxesReducer`); a second or two."""
        def compute() -> dict[str, Any]:
            resolved = resolve_axes(panel.view, [x_axis, y_axis, None])  # the map's own reducer stage
            reducer, coords = reduce_stage(panel.view, np.asarray(panel.space.vectors, dtype=np.float32), True,
                                           ReduceOptions("axes", dims, seed=self.seed, x_axis=x_axis, y_axis=y_axis),
                                           axes=resolved)
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

        def work() -> GridMap:
            with self._model_lock:
                viz = self._grid_viz.get(panel.index)
                if viz is None:
                    viz = self._grid_viz[panel.index] = EmbeddingGridVisualizer(panel.lens)
                return viz.compute_map(size, spacing, plane, layer_idx=layer, plane_tokens=plane_tokens, progress=False)

        job = self.jobs.submit(key, "grid", f"grid map of {panel.title}, layer {layer}, {plane}, {size}x{size}", work)
        return job_answer(job, result_answer)


    # -- the logit lens of a prompt ------------------------------------------------------------------------

    def decoders(self, panel: Panel) -> dict[str, Any] | None:
        """How the panel's layers can be read: ``{"tuned": bool, "train": command}``; None without an LM head.

        ``tuned`` says whether the model's cache entry holds a tuned lens (``embedlens lens train`` keeps one
        there, :func:`~embedlens.logitlens.tuned_files.cached_folder`); ``train`` is the command that trains one.
        """
        if not panel.causal:
            return None
        has = (cached_folder(panel.lens) / WEIGHTS_FILE).exists()
        return {"tuned": bool(has), "train": f"embedlens lens train -m {shlex.quote(panel.lens.source.spec)}"}

    def _logit_lens_result(self, panel: Panel, text: str, top_k: int, decoder: str = "logit") -> LogitLensResult:
        if not panel.causal:
            raise BadRequest(f"{panel.title}: the logit lens needs a causal language model with an LM head")
        key = (panel.index, text, top_k, decoder)
        with self._model_lock:  # one forward pass at a time: the model is shared
            result = self._logit_lens_results.get(key)
            if result is None:
                cap = min(LOGIT_LENS_MAX_TOKENS, context_limit(panel.lens) or LOGIT_LENS_MAX_TOKENS)
                result = logit_lens(panel.lens, text, top_k=top_k, max_tokens=cap, keep_states=True, decoder=decoder)
                while len(self._logit_lens_results) >= 4:
                    self._logit_lens_results.pop(next(iter(self._logit_lens_results)))
                self._logit_lens_results[key] = result
        return result

    def logit_lens(self, panel: Panel, text: str, top_k: int, decoder: str = "logit") -> dict[str, Any]:
        """``LogitLensResult.to_dict()`` of ``text``, each layer read with ``decoder`` (``logit`` or ``tuned``)."""
        return self._logit_lens_result(panel, text, top_k, decoder).to_dict()

    def layer_nearest(self, panel: Panel, text: str, layer: int, position: int, k: int,
                      decoder: str = "logit") -> dict[str, Any]:
        """The nearest tokens (cosine, in this panel's space) of the residual state at (layer, position), and
        what ``decoder`` reads there."""
        r = self._logit_lens_result(panel, text, LOGIT_LENS_TOP_K, decoder)
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
