"""Seeded force-directed layout of a :class:`~embedlens.graph.build.TokenGraph`.

The layout is Fruchterman-Reingold exactly as ``networkx.spring_layout``'s dense solver runs it
(repulsion k²/d, attraction w·d²/k with w the cosine, linear cooling, 50 iterations), vectorised in
float32 over row chunks so a few thousand nodes take about a second; start positions are drawn from
the seed, so the same graph and seed always give the same layout. ``networkx.spring_layout`` itself
switches to a slower L-BFGS "energy" solver at 500 nodes and above (several times slower on a
50-seed, k=20 graph, see ``benchmarks/bench_graph.py``); it stays available as ``method="networkx"``.
igraph is not a dependency and is not used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from ..timing import Timings

_CHUNK_ELEMS = 1 << 22
GRAVITY = 0.05


def _adjacency(graph: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {nd.id: i for i, nd in enumerate(graph.nodes)}
    src = np.array([index[e.source] for e in graph.edges], dtype=np.int64)
    dst = np.array([index[e.target] for e in graph.edges], dtype=np.int64)
    w = np.array([max(e.score, 1e-3) for e in graph.edges], dtype=np.float32)
    return src, dst, w


def fruchterman_reingold(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, *, seed: int = 0,
                         iterations: int = 50, threshold: float = 1e-4, gravity: float = GRAVITY) -> np.ndarray:
    """Positions (n, 2) in [-1, 1] for an undirected weighted edge list; same seed same result."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    if n <= 1:
        return np.zeros((n, 2))
    k = np.float32(np.sqrt(1.0 / n))
    t = float(max(np.ptp(pos[:, 0]), np.ptp(pos[:, 1]))) * 0.1
    dt = t / (iterations + 1)
    chunk = max(1, _CHUNK_ELEMS // n)
    disp = np.empty((n, 2), dtype=np.float32)
    for _ in range(iterations):
        x, y = pos[:, 0], pos[:, 1]
        for s in range(0, n, chunk):  # repulsion between all pairs, a row chunk at a time
            dx = x[s : s + chunk, None] - x[None, :]
            dy = y[s : s + chunk, None] - y[None, :]
            d2 = np.maximum(dx * dx + dy * dy, np.float32(1e-4))  # distance >= 0.01, as networkx
            f = (k * k) / d2
            disp[s : s + chunk, 0] = np.einsum("ij,ij->i", dx, f)
            disp[s : s + chunk, 1] = np.einsum("ij,ij->i", dy, f)
        # attraction along edges: -w * d / k * delta, on both ends
        ex, ey = x[src] - x[dst], y[src] - y[dst]
        dist = np.maximum(np.sqrt(ex * ex + ey * ey), np.float32(0.01))
        a = weight * dist / k
        fx, fy = a * ex, a * ey
        np.subtract.at(disp[:, 0], src, fx)
        np.subtract.at(disp[:, 1], src, fy)
        np.add.at(disp[:, 0], dst, fx)
        np.add.at(disp[:, 1], dst, fy)
        if gravity:
            # a spring from each node to the centre keeps separate components from drifting apart
            r = np.sqrt((pos * pos).sum(axis=1, keepdims=True))
            disp -= np.float32(gravity) * pos * r / k
        length = np.maximum(np.sqrt((disp * disp).sum(axis=1)), np.float32(0.01))
        step = disp * (np.float32(t) / length)[:, None]
        pos += step
        t -= dt
        if np.linalg.norm(step) / n < threshold:
            break
    pos = pos.astype(np.float64)
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    return pos / scale if scale > 0 else pos


def spring_positions(graph: Any, *, seed: int = 0, iterations: int = 50, method: str = "fr") -> np.ndarray:
    """Positions of shape (n_nodes, 2) in [-1, 1]; ``method`` is ``fr`` (default) or ``networkx``."""
    n = len(graph.nodes)
    src, dst, w = _adjacency(graph)
    if method == "fr":
        return fruchterman_reingold(n, src, dst, w, seed=seed, iterations=iterations)
    if method != "networkx":
        raise EmbedlensError(f"unknown layout method '{method}' (choose fr or networkx)")
    nx = require("networkx", "graph layout", extra="graph")
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True), weight="weight")
    start = dict(enumerate(np.random.default_rng(seed).uniform(-1, 1, size=(n, 2))))
    pos = nx.spring_layout(g, pos=start, iterations=iterations, weight="weight", seed=seed)
    return np.array([pos[i] for i in range(n)], dtype=np.float64)


def layout_graph(graph: Any, *, seed: int = 0, iterations: int = 50, method: str = "fr") -> Any:
    """Set ``graph.positions`` (and ``graph.layout``) with :func:`spring_positions`; returns the graph."""
    clock = Timings()
    with clock.stage("layout"):
        graph.positions = spring_positions(graph, seed=seed, iterations=iterations, method=method)
        graph.layout = {"method": "fruchterman-reingold (networkx's dense algorithm, vectorised)" if method == "fr"
                        else "networkx.spring_layout", "seed": seed, "iterations": iterations, "weight": "cosine"}
    graph.timings.update(clock)
    return graph
