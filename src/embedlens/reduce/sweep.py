"""A t-SNE perplexity sweep: one map per perplexity, from the same seed and the same k-NN graph.

Perplexity balances local against global structure: a small one keeps each point's few nearest
neighbours together, a large one keeps larger groups in place. A sweep shows that balance: the k-NN
graph is built once, for the largest perplexity (``3 x perplexity`` neighbours per point,
:func:`sweep_graph`), and each map takes the first ``3 x p`` columns of it, so each map is exactly the one
a single t-SNE run at that perplexity and seed makes (an exact graph's first columns are the smaller
exact graph). Each map's faithfulness (neighbour recall@10 and trustworthiness,
:mod:`embedlens.reduce.quality`) is measured against that same graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..neighbors.knn import KnnGraph
from ..timing import Timings
from .knn import map_graph
from .options import ReduceOptions
from .quality import projection_quality
from .tsne import TSNEReducer, clamp_perplexity

QUALITY_K, QUALITY_SAMPLE = 10, 2000


def check_perplexities(perplexities: Sequence[float]) -> list[float]:
    """The perplexities of a sweep as floats, in the given order: at least one, each positive, no repeats."""
    values = list(perplexities)
    if not values:
        raise EmbedlensError("a perplexity sweep needs at least one perplexity")
    for p in values:
        clamp_perplexity(p, 10**9)  # the reducer's own check: a positive finite number
    values = [float(p) for p in values]
    if len(set(values)) != len(values):
        raise EmbedlensError(f"perplexities must differ, got {', '.join(f'{p:g}' for p in values)}")
    return values


def neighbors_needed(perplexities: Sequence[float], n: int) -> int:
    """Neighbours per point of the graph every map of the sweep can start from (that of the largest perplexity)."""
    return max(TSNEReducer(perplexity=p).neighbors_needed(n) for p in perplexities)


def sweep_graph(X: np.ndarray, perplexities: Sequence[float], *, metric: str = "cosine", seed: int = 0,
                n_jobs: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The one k-NN graph of a sweep: the rows of ``X`` (n, d) and their ``3 x max(perplexities)`` nearest.

    Found as a single map finds its graph (:func:`~embedlens.reduce.knn.map_graph`: cached, exact, or
    approximate with its recall measured). Returns ``(graph, info)``: a
    :class:`~embedlens.neighbors.knn.KnnGraph` (its ``method`` tells the reducers whether it is exact, so
    an exact one also serves as the truth of the quality figures) and what the manifest records.
    """
    k = neighbors_needed(perplexities, X.shape[0])
    timings = Timings()
    nb, info, notes = map_graph(X, k, metric=metric, seed=seed, n_jobs=n_jobs, route="auto")
    exact = "knn_recall" not in info
    graph = KnnGraph(nb.indices, nb.scores, "exact" if exact else "approx", str(info.get("knn_method", "")),
                     1.0 if exact else float(info["knn_recall"]), metric=metric, seed=seed)
    return graph, {**info, "k": k, "notes": notes, "seconds": round(timings.since_start(), 4)}


@dataclass
class SweepMap:
    """One map of a sweep: the perplexity asked for, the coordinates (n, dims) float32, the reducer's
    ``params_`` (the perplexity used, after clamping), its notes, the quality figures and seconds per stage."""

    perplexity: float
    coords: np.ndarray
    params: dict[str, Any]
    notes: list[str]
    quality: Any
    timings: dict[str, float]

    def quality_text(self) -> str:
        """``recall@10 0.312 · trustworthiness 0.915``, or that it was not measured."""
        q = self.quality
        if q is None:
            return "quality not measured (too few points)"
        return f"recall@{q.k} {q.neighbor_recall:.3f} · trustworthiness {q.trustworthiness:.3f}"


@dataclass
class PerplexitySweep:
    """t-SNE maps of the same points at several perplexities (:func:`perplexity_sweep`)."""

    maps: list[SweepMap]
    graph: dict[str, Any]
    seed: int
    metric: str
    dims: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def perplexities(self) -> list[float]:
        return [m.perplexity for m in self.maps]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the coordinates."""
        return {"kind": "embedlens-perplexity-sweep", "perplexities": self.perplexities, "seed": self.seed,
                "metric": self.metric, "dims": self.dims, "graph": self.graph,
                "maps": [{"perplexity": m.perplexity, "params": m.params, "notes": m.notes,
                          "quality": None if m.quality is None else m.quality.to_dict(), "timings": m.timings}
                         for m in self.maps],
                "timings": dict(self.timings)}


def perplexity_sweep(X: np.ndarray, perplexities: Sequence[float], options: ReduceOptions | None = None, *,
                     neighbors: Any = None, quality: bool = True) -> PerplexitySweep:
    """t-SNE maps of ``X`` (n, d) at each of ``perplexities``, same seed, one k-NN graph.

    Args:
        X: the vectors, array of shape (n_points, n_dims).
        perplexities: the perplexities, in the order the maps are wanted.
        options: the t-SNE settings every map shares (:class:`~embedlens.reduce.options.ReduceOptions`: dimensions,
            metric, seed, iterations, threads...; its method and perplexity are set per map); default t-SNE's.
        neighbors: the k-NN graph of ``X``'s rows when the caller has one with enough neighbours (a
            :class:`~embedlens.neighbors.knn.KnnGraph`); default :func:`sweep_graph`.
        quality: measure each map's neighbour recall@10 and trustworthiness.
    """
    values = check_perplexities(perplexities)
    base = (options or ReduceOptions("tsne")).replace(method="tsne")
    metric, seed = base.metric, base.seed
    timings = Timings()
    with timings.stage("knn"):
        if neighbors is None:
            graph, info = sweep_graph(X, values, metric=metric, seed=seed, n_jobs=base.n_jobs)
        else:
            graph, info = neighbors, {"knn_source": "given", "k": int(neighbors.k)}
    truth = graph.neighbors() if getattr(graph, "method", "") == "exact" else None
    maps = []
    for p in values:
        map_timings = Timings()
        with map_timings.stage("fit"):
            reducer = base.replace(perplexity=p).reducer()
            coords = reducer.fit_transform(X, graph)
        q = None
        if quality and X.shape[0] > QUALITY_K + 1:
            with map_timings.stage("quality"):
                q = projection_quality(X, coords, k=QUALITY_K, sample=QUALITY_SAMPLE, seed=seed, metric=metric,
                                       space_neighbors=truth)
        maps.append(SweepMap(p, coords, dict(reducer.params_), list(reducer.notes_), q, dict(map_timings)))
    timings["total"] = timings.since_start()
    return PerplexitySweep(maps, info, seed, metric, base.n_components, dict(timings))
