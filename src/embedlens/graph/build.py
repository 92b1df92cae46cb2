"""Build an embedding graph: seeds joined to their k nearest tokens over the whole vocabulary.

Nodes are the seeds and their neighbours; an edge joins a seed to each of its ``k`` most
cosine-similar tokens (the seed's own tokens excluded). ``min_score`` drops weak edges, and
``mutual`` also joins any two nodes that are in each other's top-k. Every top-k comes from one
batched, blocked product over the vocabulary (or from the cached full-vocabulary k-NN graph when it
holds at least ``k`` neighbours per row), never from a Python loop of queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..display import make_visible
from ..errors import EmbedlensError, require
from ..lens import as_view
from ..neighbors.exact import check_k
from ..neighbors.knn import space_index
from ..render.graph_html import graph_figure
from ..render.notebook import result_html
from ..timing import Timings
from .layout import layout_graph
from .seeds import Seed, seeds_from_words

if TYPE_CHECKING:
    from ..lens import Lens, SpaceView

MAX_K = 500


@dataclass(frozen=True)
class GraphNode:
    """A node. ``id`` is the token id; a multi-token word seed has a negative id and its ``token_ids``."""

    id: int
    token: str
    display: str
    is_seed: bool
    kind: str = "token"  # "token" or "word" (a seed standing for several tokens)
    token_ids: tuple[int, ...] = ()
    best_score: float | None = None  # the strongest edge at this node

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["token_ids"] = list(self.token_ids)
        return out


@dataclass(frozen=True)
class GraphEdge:
    source: int
    target: int
    score: float
    kind: str = "neighbor"  # "neighbor" (seed -> one of its top-k) or "mutual"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GraphStats:
    nodes: int
    edges: int
    seeds: int
    components: int
    degree: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TokenGraph:
    """Seeds, their neighbours and the edges between them; ``positions`` once laid out.

    Attributes:
        nodes: the nodes, seeds first.
        edges: undirected edges (each pair once, the higher score kept).
        stats: counts, components and the degree distribution.
        space: the space's name.
        params: k, min_score, mutual, which space.
        notes: things the user should know (a word that split into several tokens...).
        knn_source: ``"computed"`` or the cached k-NN graph that was used.
        origin: how the seeds were chosen (for the manifest).
        positions: array of shape (n_nodes, 2), or None before :func:`embedlens.graph.layout.layout_graph`.
        layout: how ``positions`` were made.
        timings: seconds per stage.
    """

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    stats: GraphStats
    space: str
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    knn_source: str = "computed"
    positions: np.ndarray | None = None
    layout: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    origin: dict[str, Any] = field(default_factory=dict)  # how the seeds were chosen (mode, words, corpus...)

    def node_link(self) -> dict[str, Any]:
        """The graph as node-link JSON (networkx ``node_link_data`` layout, ``edges`` key)."""
        nodes = []
        for i, node in enumerate(self.nodes):
            d = node.to_dict()
            if self.positions is not None:
                d["x"], d["y"] = float(self.positions[i, 0]), float(self.positions[i, 1])
            nodes.append(d)
        return {"directed": False, "multigraph": False,
                "graph": {"space": self.space, **{k: v for k, v in self.params.items() if v is not None}},
                "nodes": nodes, "edges": [e.to_dict() for e in self.edges]}

    def to_dict(self) -> dict[str, Any]:
        return {**self.node_link(), "stats": self.stats.to_dict(), "notes": list(self.notes),
                "knn_source": self.knn_source, "layout": dict(self.layout), "seeds_from": dict(self.origin)}

    def figure(self) -> Any:
        """The interactive Plotly figure (:func:`embedlens.render.graph_html.graph_figure`); needs a layout."""
        return graph_figure(self)

    def _repr_html_(self) -> str:
        """Shown inline by Jupyter: counts, notes and the interactive graph (laid out first if it is not), offline."""
        if self.positions is None:
            layout_graph(self)
        st = self.stats
        lines = [f"{st.seeds} seeds, {st.nodes} nodes, {st.edges} edges (k={self.params.get('k')})", *self.notes]
        return result_html(self.figure(), f"token graph of {self.space}", lines)

    def to_networkx(self) -> Any:
        """A ``networkx.Graph`` with the node and edge attributes of :meth:`node_link`."""
        nx = require("networkx", "graph export", extra="graph")
        return nx.node_link_graph(self.node_link(), edges="edges")


def _check_k(k: int, n: int, widest_seed: int) -> int:
    return check_k(k, min(MAX_K, n - widest_seed), name="`k`")


def graph_stats(n_nodes: int, src: np.ndarray, dst: np.ndarray, n_seeds: int) -> GraphStats:
    """Nodes, edges, connected components and the degree distribution, from edge arrays."""
    deg = np.bincount(np.concatenate([src, dst]), minlength=n_nodes) if n_nodes else np.zeros(0, dtype=np.int64)
    # Components by label propagation over the edge list: vectorised, converges in O(diameter) rounds.
    labels = np.arange(n_nodes)
    while src.size:
        low = np.minimum(labels[src], labels[dst])
        new = labels.copy()
        np.minimum.at(new, src, low)
        np.minimum.at(new, dst, low)
        new = new[new]  # pointer jumping
        if np.array_equal(new, labels):
            break
        labels = new
    values, counts = np.unique(deg, return_counts=True)
    degree = {
        "min": int(deg.min()) if n_nodes else 0,
        "max": int(deg.max()) if n_nodes else 0,
        "mean": round(float(deg.mean()), 4) if n_nodes else 0.0,
        "median": float(np.median(deg)) if n_nodes else 0.0,
        "histogram": {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)},
    }
    return GraphStats(n_nodes, int(src.size), n_seeds, int(np.unique(labels).size), degree)


def _dedupe(src: np.ndarray, dst: np.ndarray, score: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each unordered pair once (the higher score kept), no self-loops; sorted by (source, target)."""
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    keep = a != b
    a, b, score, kind = a[keep], b[keep], score[keep], kind[keep]
    order = np.lexsort((-score, b, a))
    a, b, score, kind = a[order], b[order], score[order], kind[order]
    first = np.ones(a.size, dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[first], b[first], score[first], kind[first]


def build_graph(
    lens: Lens | SpaceView,
    seeds: Sequence[Seed | str],
    *,
    which: str | None = None,
    k: int = 20,
    min_score: float | None = None,
    mutual: bool = False,
    use_cache: bool = True,
) -> TokenGraph:
    """Seeds joined to their k nearest tokens (cosine over the whole vocabulary).

    The stages: each seed's top-k (:func:`seed_topk`) -> nodes (:func:`graph_nodes`) -> edges, with
    mutual pairs (:func:`mutual_edges`) -> ``min_score`` filter (:func:`filter_edges`) -> the graph.

    Args:
        lens: a space of a handle (``lens.input``, ``lens.output``), or a handle (its input space).
        seeds: :class:`~embedlens.graph.seeds.Seed` objects, or query strings (resolved like ``neighbors``).
        which: with a handle, ``input`` or ``output`` (same as passing ``lens.output``).
        k: neighbours per seed.
        min_score: drop edges whose cosine is below this.
        mutual: also join any two token nodes that are in each other's top-k.
        use_cache: take top-k lists from a cached full-vocabulary k-NN graph when it has >= k neighbours.
    """
    timings = Timings()
    view = as_view(lens, which)
    sp = view.space
    if not seeds:
        raise EmbedlensError("no seeds to build a graph from")
    if any(isinstance(s, str) for s in seeds):
        strings = [s for s in seeds if isinstance(s, str)]
        seeds = [s for s in seeds if not isinstance(s, str)] + seeds_from_words(view, strings)
    seeds = list(seeds)  # type: ignore[arg-type]
    k = _check_k(k, len(sp), max(len(s.rows) for s in seeds))
    if min_score is not None and not -1.0 <= float(min_score) <= 1.0:
        raise EmbedlensError(f"`min_score` is a cosine, from -1 to 1; got {min_score}")

    # One index answers every top-k: a cached exact k-NN graph when one holds >= k neighbours (rows of
    # the space), with an exact scan behind it for word seeds (several tokens -> a mean vector).
    index = space_index(view, k, use_cache=use_cache)
    knn = getattr(index, "graph", None)

    with timings.stage("seed_topk"):
        seed_nbr, seed_sc = seed_topk(index, seeds, k)
    nodes, node_rows, node_of_row = graph_nodes(sp, seeds, seed_nbr)

    n_seed = len(seeds)
    src = np.repeat(np.arange(n_seed), k)  # seed -> each of its top-k
    dst = node_of_row[seed_nbr.ravel()]
    score = seed_sc.ravel().astype(np.float32)
    kind = np.zeros(src.size, dtype=np.int8)
    if mutual:
        with timings.stage("mutual_topk"):
            u, v, sc = mutual_edges(index, node_rows, node_of_row, k)
            src, dst = np.concatenate([src, u]), np.concatenate([dst, v])
            score = np.concatenate([score, sc])
            kind = np.concatenate([kind, np.ones(u.size, dtype=np.int8)])
    nodes, src, dst, score, kind = filter_edges(nodes, n_seed, src, dst, score, kind, min_score)

    best = np.full(len(nodes), -np.inf)
    np.maximum.at(best, src, score)
    np.maximum.at(best, dst, score)
    nodes = [GraphNode(nd.id, nd.token, nd.display, nd.is_seed, nd.kind, nd.token_ids,
                       None if not np.isfinite(b) else round(float(b), 6)) for nd, b in zip(nodes, best, strict=True)]
    ids = np.array([nd.id for nd in nodes], dtype=np.int64)
    kinds = ("neighbor", "mutual")
    edges = [GraphEdge(int(a), int(b), round(float(s), 6), kinds[int(c)])
             for a, b, s, c in zip(ids[src], ids[dst], score, kind, strict=True)]
    stats = graph_stats(len(nodes), src, dst, n_seed)
    timings["build"] = timings.since_start()
    notes = [s.note for s in seeds if s.note]
    source = "computed"
    if knn is not None:
        source = f"cached {knn.method} k-NN graph (k={knn.params.get('truncated_from', knn.k)}, recall {knn.recall:.4f})"
    params = {"which": view.which, "k": k, "min_score": min_score, "mutual": bool(mutual), "seeds": n_seed}
    return TokenGraph(nodes, edges, stats, sp.name, params, notes, source, timings=dict(timings))


def seed_topk(index: Any, seeds: Sequence[Seed], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's ``k`` nearest rows and cosines (its own rows excluded): one query per kind of seed."""
    single = np.array([s.single for s in seeds], dtype=bool)
    seed_nbr = np.empty((len(seeds), k), dtype=np.int64)
    seed_sc = np.empty((len(seeds), k), dtype=np.float32)
    if single.any():
        rows = np.array([seeds[i].rows[0] for i in np.flatnonzero(single)], dtype=np.int64)
        nb = index.query(rows, k, exclude_self=True)
        seed_nbr[single], seed_sc[single] = nb.indices, nb.scores
    need = np.flatnonzero(~single)
    if need.size:
        nb = index.query(np.stack([seeds[i].vector for i in need]).astype(np.float32), k,
                         exclude=[seeds[i].rows for i in need])
        seed_nbr[need], seed_sc[need] = nb.indices, nb.scores
    return seed_nbr, seed_sc


def graph_nodes(sp: Any, seeds: Sequence[Seed], seed_nbr: np.ndarray) -> tuple[list[GraphNode], np.ndarray, np.ndarray]:
    """The nodes (seeds first, in order, then neighbour rows in order of first appearance), each node's row
    (-1 for a word seed standing for several tokens) and the node of each row of the space (-1: none)."""
    seed_rows = np.array([s.rows[0] if s.single else -1 for s in seeds], dtype=np.int64)
    uniq, first = np.unique(seed_nbr.ravel(), return_index=True)
    new_rows = uniq[np.argsort(first, kind="stable")]
    new_rows = new_rows[~np.isin(new_rows, seed_rows)]
    n_seed = len(seeds)
    node_of_row = np.full(len(sp), -1, dtype=np.int64)
    node_of_row[new_rows] = np.arange(n_seed, n_seed + new_rows.size)
    has_row = seed_rows >= 0
    node_of_row[seed_rows[has_row]] = np.flatnonzero(has_row)

    nodes: list[GraphNode] = []
    word_id = 0
    for s in seeds:
        if s.single:
            r = s.rows[0]
            nodes.append(GraphNode(int(sp.ids[r]), sp.labels[r], sp.display[r], True, "token", (int(sp.ids[r]),)))
        else:
            word_id -= 1
            nodes.append(GraphNode(word_id, s.label, make_visible(s.label), True, "word",
                                   tuple(int(sp.ids[r]) for r in s.rows)))
    nodes.extend(GraphNode(int(sp.ids[r]), sp.labels[r], sp.display[r], False, "token", (int(sp.ids[r]),))
                 for r in new_rows.tolist())
    return nodes, np.concatenate([seed_rows, new_rows]), node_of_row


def mutual_edges(index: Any, node_rows: np.ndarray, node_of_row: np.ndarray, k: int,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, score)`` node pairs (u < v) that are in each other's top-k, over the token nodes."""
    tok_nodes = np.flatnonzero(node_rows >= 0)  # word seeds (several tokens) have no row of their own
    nb = index.query(node_rows[tok_nodes], k, exclude_self=True)
    m = node_rows.size
    u = np.repeat(tok_nodes, k)
    v = node_of_row[nb.indices.ravel()]
    sc = nb.scores.ravel()
    inside = v >= 0
    u, v, sc = u[inside], v[inside], sc[inside]
    is_mutual = np.isin(v * m + u, u * m + v) & (u < v)
    return u[is_mutual], v[is_mutual], sc[is_mutual].astype(np.float32)


def filter_edges(nodes: list[GraphNode], n_seed: int, src: np.ndarray, dst: np.ndarray, score: np.ndarray,
                 kind: np.ndarray, min_score: float | None) -> tuple[list[GraphNode], np.ndarray, ...]:
    """Edges below ``min_score`` dropped, each pair once; neighbours left without an edge dropped (seeds stay)."""
    if min_score is not None:
        keep = score >= float(min_score)
        src, dst, score, kind = src[keep], dst[keep], score[keep], kind[keep]
    src, dst, score, kind = _dedupe(src, dst, score, kind)
    if min_score is not None:
        used = np.zeros(len(nodes), dtype=bool)
        used[:n_seed] = True
        used[src] = True
        used[dst] = True
        if not used.all():
            remap = np.cumsum(used) - 1
            nodes = [nd for nd, u_ in zip(nodes, used, strict=True) if u_]
            src, dst = remap[src], remap[dst]
    return nodes, src, dst, score, kind
