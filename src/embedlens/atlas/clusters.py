"""Labelled clusters of a map, found where they are real: in the embedding space, not on the picture.

A 2-D map bends and tears neighbourhoods (see the quality figures), so the clusters are found on the graph
of each token's true nearest neighbours in the full space (the k-NN graph the map's reducer starts from,
symmetrised), with Leiden community detection (igraph; Louvain from networkx when igraph is missing).
On SmolLM2's 49,152-token k=15 graph Leiden takes ~0.5 s, networkx's Louvain ~28 s.

``clusters``:
  * ``"auto"``: Leiden at resolution 1; clusters smaller than ``min_size`` get no label (id -1); at most
    ``MAX_AUTO`` clusters are kept, the closest ones merged (largest modularity gain first).
  * ``N`` (>= 2): exactly N clusters: Leiden at a resolution high enough to give at least N, then merged
    down to N the same way.
  * ``"none"``: no clustering.

A second, finer level (``Clustering.sub``, the map's sub-clusters) is found on the same graph: Leiden at
``SUB_RESOLUTION`` times the clusters' resolution, cut along the clusters so every sub-cluster lies inside
one cluster, merged (inside each cluster, largest modularity gain first) down to at most ``MAX_SUB``. Maps
show the clusters' labels and, zoomed in, the sub-clusters' (:func:`label_levels`).

Each cluster is labelled with the readable forms of its most representative tokens: the most frequent in
the corpus when there is one, else the most central (highest cosine to the cluster's mean direction),
skipping tokens that read the same once case and word-start marks are ignored. Its tightness is its mean
pairwise cosine in the space, next to the average over the whole map.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..neighbors.exact import normalized_rows
from ..reduce.knn import map_graph
from ..timing import Timings

CLUSTER_K = 15  # neighbours per token in the graph (UMAP's default n_neighbors, so its graph is reused)
MAX_AUTO = 40  # at most this many labelled clusters with "auto"
MAX_SUB = 160  # at most this many labelled sub-clusters
SUB_RESOLUTION = 4.0  # the finer level's Leiden resolution, relative to the clusters'
LABEL_TOKENS = 3
_CANDIDATES = 40  # tokens per cluster looked at when picking its label


def check_clusters(value: Any) -> str | int:
    """``"auto"``, ``"none"`` or an integer of at least 2 (one error line otherwise)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("auto", "none"):
            return text
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            raise EmbedlensError(f"clusters must be auto, none or a number of clusters (2 or more), got '{value}'")
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise EmbedlensError(f"clusters must be auto, none or a number of clusters (2 or more), got {value!r}")
    if value < 2:
        raise EmbedlensError(f"clusters must be at least 2 (or auto / none), got {value}")
    return int(value)


@dataclass
class Cluster:
    """One labelled cluster: ``id`` (its value in the ``cluster`` column), ``size``, ``label`` (readable
    tokens joined by `` · ``), ``tokens`` (those readable tokens), ``mean_cosine`` (mean pairwise cosine of
    its members in the space), ``lift`` (``mean_cosine`` minus the map's average) and ``center`` (where its
    label goes: the median of its members' map coordinates; empty, and left out of :meth:`to_dict`, when the
    clusters were found without a map)."""

    id: int
    size: int
    label: str
    tokens: list[str]
    mean_cosine: float
    lift: float
    center: list[float]

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "size": self.size, "label": self.label, "tokens": list(self.tokens),
               "mean_cosine": round(self.mean_cosine, 4), "lift": round(self.lift, 4)}
        if self.center:
            out["center"] = [round(float(c), 5) for c in self.center]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cluster:
        return cls(int(d["id"]), int(d["size"]), str(d["label"]), list(d.get("tokens", [])),
                   float(d["mean_cosine"]), float(d["lift"]), [float(c) for c in d.get("center", [])])


@dataclass
class Clustering:
    """The clusters of a map.

    Attributes:
        assignment: int64 array of shape (n_points,), each point's cluster id, -1 for none.
        clusters: the labelled clusters, largest first (ids 0..len-1 in that order).
        requested: ``"auto"`` or the number asked for.
        method: how they were found (``leiden (igraph)`` or ``louvain (networkx)``).
        found_on: what graph (``k-NN graph of the full space (cosine), k=15``).
        map_mean_cosine: mean pairwise cosine over all points of the map.
        label_by: ``frequency`` or ``centrality``.
        params: resolution, min_size, seed, graph details.
        timings: seconds per stage.
        notes: what the user should know.
        sub: the finer level (sub-clusters, each inside one cluster) found on the same graph, or None.
    """

    assignment: np.ndarray
    clusters: list[Cluster]
    requested: str | int
    method: str
    found_on: str
    map_mean_cosine: float
    label_by: str
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sub: Clustering | None = None

    def __len__(self) -> int:
        return len(self.clusters)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``clusters`` block (the assignments are the ``cluster`` and ``subcluster`` columns of
        points.parquet)."""
        out = {"requested": self.requested, "method": self.method, "found_on": self.found_on,
               "label_by": self.label_by, "map_mean_cosine": round(self.map_mean_cosine, 4),
               "n_clusters": len(self.clusters), "unclustered": int((self.assignment < 0).sum()),
               "params": self.params, "timings": {k: round(v, 4) for k, v in self.timings.items()},
               "notes": list(self.notes), "clusters": [c.to_dict() for c in self.clusters]}
        if self.sub is not None:
            out["sub"] = self.sub.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], assignment: np.ndarray, sub_assignment: np.ndarray | None = None) -> Clustering:
        sub = None
        if d.get("sub") is not None and sub_assignment is not None:
            sub = cls.from_dict(d["sub"], sub_assignment)
        return cls(np.asarray(assignment, dtype=np.int64), [Cluster.from_dict(c) for c in d.get("clusters", [])],
                   d.get("requested", "auto"), d.get("method", ""), d.get("found_on", ""),
                   float(d.get("map_mean_cosine", 0.0)), d.get("label_by", ""), d.get("params", {}),
                   d.get("timings", {}), d.get("notes", []), sub)


# -- the graph -------------------------------------------------------------------------------------------


def space_graph(X: np.ndarray, k: int, *, metric: str, seed: int) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """Each row's ``k`` nearest other rows of ``X`` in the full space: ``(indices (n, k), info, notes)``.

    The one place this module asks the nearest-neighbour layer for a graph. It is the graph the map's
    reducer uses (same rows, metric and cache), so a t-SNE or UMAP map pays for it once.
    """
    nb, info, notes = map_graph(X, k, metric=metric, seed=seed)
    return np.asarray(nb.indices, dtype=np.int64), dict(info), list(notes)


def symmetric_edges(indices: np.ndarray) -> np.ndarray:
    """Undirected edges ``(m, 2)`` (i < j, each once) of a k-NN graph given as ``indices`` (n, k)."""
    n, k = indices.shape
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = indices.reshape(-1).astype(np.int64)
    ok = (dst >= 0) & (dst != src)
    lo, hi = np.minimum(src[ok], dst[ok]), np.maximum(src[ok], dst[ok])
    keys = np.sort(lo * n + hi)  # sort + neighbour test: np.unique took 200x longer here (numpy 2.x)
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if keys.size else keys
    return np.column_stack([keys // n, keys % n])


def _dense_ids(labels: np.ndarray) -> np.ndarray:
    """Small non-negative labels renumbered 0..c-1 in order (what ``np.unique(return_inverse=True)`` gives)."""
    if not labels.size:
        return labels.astype(np.int64)
    present = np.flatnonzero(np.bincount(labels))
    mapping = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
    mapping[present] = np.arange(present.size)
    return mapping[labels]


# -- communities -----------------------------------------------------------------------------------------


def _has_igraph() -> bool:
    import importlib.util

    return importlib.util.find_spec("igraph") is not None


def communities(edges: np.ndarray, n: int, *, resolution: float = 1.0, seed: int = 0) -> tuple[np.ndarray, str]:
    """Community of each of ``n`` nodes (int64, 0..c-1) and the algorithm's name; deterministic for a seed."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), "none"
    if _has_igraph():
        import igraph as ig

        g = ig.Graph(n=n, edges=edges)
        ig.set_random_number_generator(random.Random(seed))
        try:
            part = g.community_leiden(objective_function="modularity", resolution=resolution, n_iterations=2)
        finally:
            ig.set_random_number_generator(random)
        return np.asarray(part.membership, dtype=np.int64), "leiden (igraph)"
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(edges.tolist())
    comms = nx.community.louvain_communities(G, resolution=resolution, seed=seed)
    out = np.empty(n, dtype=np.int64)
    for c, members in enumerate(comms):  # a loop over communities, not tokens
        out[np.fromiter(members, dtype=np.int64, count=len(members))] = c
    return out, "louvain (networkx)"


def merge_communities(labels: np.ndarray, edges: np.ndarray, target: int) -> np.ndarray:
    """Merge communities, the pair with the largest modularity gain first, until ``target`` remain.

    Works on the small community graph (c x c edge counts), never on the tokens. Communities with no edge
    between them are merged (smallest first) only when nothing else is left. Ties go to the lowest
    (row, column) pair. Each merge changes only the merged pair's gains, so the c x c gain matrix is built
    once and each row's best pair is kept: O(c) per merge instead of a new c x c matrix (1,000 merges of
    1,200 communities: 0.1 s instead of 8 s).
    """
    labels = _dense_ids(np.asarray(labels, dtype=np.int64))
    c = int(labels.max()) + 1 if labels.size else 0
    if c <= target:
        return labels
    two_m = 2.0 * max(len(edges), 1)
    e = np.zeros((c, c), dtype=np.float64)
    np.add.at(e, (labels[edges[:, 0]], labels[edges[:, 1]]), 1.0)
    e = e + e.T  # e[i, j]: edge ends between i and j (each edge counted from both sides)
    degree = e.sum(axis=1)  # includes 2x internal edges
    alive = np.ones(c, dtype=bool)
    parent = np.arange(c)
    sizes = np.bincount(labels, minlength=c).astype(np.float64)

    a = degree / two_m
    gain = e / two_m - 2.0 * np.outer(a, a)  # the modularity gain of joining i and j
    gain[e <= 0] = -np.inf
    np.fill_diagonal(gain, -np.inf)
    best_col = np.argmax(gain, axis=1)
    best = gain[np.arange(c), best_col]

    def gain_row(r: int) -> np.ndarray:
        a = degree / two_m
        g = e[r] / two_m - 2.0 * a[r] * a
        g[(e[r] <= 0) | ~alive] = -np.inf
        g[r] = -np.inf
        return g

    def refresh(row: int) -> None:
        best_col[row] = int(np.argmax(gain[row]))
        best[row] = gain[row, best_col[row]]

    for _ in range(c - target):  # at most c merges
        i = int(np.argmax(best))
        j = int(best_col[i])
        if not np.isfinite(best[i]):  # no linked pair left: join the two smallest communities
            live = np.flatnonzero(alive)
            i, j = (int(v) for v in live[np.argsort(sizes[live], kind="stable")[:2]])
        i, j = (i, j) if sizes[i] >= sizes[j] else (j, i)
        e[i, :] += e[j, :]
        e[:, i] += e[:, j]
        e[j, :] = 0
        e[:, j] = 0
        degree[i] += degree[j]
        degree[j] = 0
        sizes[i] += sizes[j]
        sizes[j] = 0
        alive[j] = False
        parent[parent == j] = i
        gain[j, :] = gain[:, j] = -np.inf
        row = gain_row(i)
        gain[i, :] = gain[:, i] = row
        best[j] = -np.inf
        refresh(i)
        stale = np.flatnonzero(alive & ((best_col == i) | (best_col == j)))
        for r in stale[stale != i].tolist():  # rows whose best pair was one of the merged two
            refresh(r)
        others = alive.copy()
        others[i] = False
        others[stale] = False
        better = others & np.isfinite(row) & ((row > best) | ((row == best) & (i < best_col)))
        best_col[better] = i
        best[better] = row[better]
    return _dense_ids(parent[labels])


# -- description -----------------------------------------------------------------------------------------


def _reads_as(text: str) -> str:
    return text.replace("␣", "").replace("▁", "").strip().casefold()


def _pick_label(candidates: list[str]) -> list[str]:
    """Up to LABEL_TOKENS readable tokens, skipping repeats and tokens with no letter or digit when possible."""
    chosen: list[str] = []
    seen: set[str] = set()
    for strict in (True, False):
        for text in candidates:
            key = _reads_as(text)
            if key in seen or (strict and not any(ch.isalnum() for ch in text)):
                continue
            if text.startswith("⟪") or "⟨0x" in text:
                if strict:
                    continue
            chosen.append(text)
            seen.add(key)
            if len(chosen) == LABEL_TOKENS:
                return chosen
    return chosen


_BLOCK = 1 << 15  # rows normalised at a time (no full normalised copy of a 262k-row matrix)


def _unit_blocks(X: np.ndarray) -> Any:
    """``(start, stop, unit rows)`` blocks of ``X`` (n, d), L2-normalised in float32, zero rows left zero."""
    for start in range(0, X.shape[0], _BLOCK):
        stop = min(X.shape[0], start + _BLOCK)
        yield start, stop, normalized_rows(np.asarray(X[start:stop], dtype=np.float32))


def describe_clusters(X: np.ndarray, assignment: np.ndarray, display: list[str], coords: np.ndarray | None,
                      frequencies: np.ndarray | None) -> tuple[list[Cluster], float, str]:
    """Label, tightness and label position of each cluster (``assignment`` ids 0..c-1, -1 for none).

    ``X``: the points' vectors (n, d); cosines are taken on their L2-normalised rows (zero rows count as 0).
    The mean pairwise cosine of a set S of unit rows is (|sum S|^2 - |S|) / (|S| (|S| - 1)): one sum per
    cluster, computed in row blocks with a sparse one-hot product, never a pairwise matrix.
    """
    from scipy.sparse import csr_matrix

    n, d = X.shape
    c = int(assignment.max()) + 1 if assignment.size and assignment.max() >= 0 else 0
    total = np.zeros(d, dtype=np.float64)
    nonzero = 0.0
    sums = np.zeros((max(c, 1), d), dtype=np.float64)
    nz = np.zeros(max(c, 1), dtype=np.float64)
    for start, stop, unit in _unit_blocks(X):  # pass 1: sums per cluster and over the map
        total += unit.sum(axis=0, dtype=np.float64)
        alive = (np.abs(unit).sum(axis=1) > 0).astype(np.float64)
        nonzero += float(alive.sum())
        a = assignment[start:stop]
        keep = np.flatnonzero(a >= 0)
        if c and keep.size:
            onehot = csr_matrix((np.ones(keep.size, dtype=np.float32), (a[keep], keep)), shape=(c, stop - start))
            sums[:c] += onehot @ unit  # float32 within a block of rows, float64 across blocks
            nz[:c] += np.bincount(a[keep], weights=alive[keep], minlength=c)
    map_mean = float((total @ total - nonzero) / max(n * (n - 1), 1))
    if c == 0:
        return [], map_mean, "none"
    sums, nz = sums[:c], nz[:c]
    members = np.flatnonzero(assignment >= 0)
    sizes = np.bincount(assignment[members], minlength=c)
    sq = np.einsum("ij,ij->i", sums, sums)
    mean_cos = (sq - nz) / np.maximum(sizes * (sizes - 1), 1)
    centroids = (sums / np.maximum(np.sqrt(sq), 1e-30)[:, None]).astype(np.float32)
    centrality = np.full(n, -np.inf, dtype=np.float32)
    for start, stop, unit in _unit_blocks(X):  # pass 2: each member's cosine to its cluster's mean direction
        a = assignment[start:stop]
        keep = np.flatnonzero(a >= 0)
        centrality[start + keep] = np.einsum("ij,ij->i", unit[keep], centroids[a[keep]])
    label_by = "frequency" if frequencies is not None and np.any(np.asarray(frequencies) > 0) else "centrality"
    primary = np.asarray(frequencies, dtype=np.float64) if label_by == "frequency" else np.zeros(n)
    # members of each cluster, best first: by frequency (ties: centrality) or by centrality
    order = np.lexsort((-centrality[members], -primary[members], assignment[members]))
    ranked = members[order]
    starts = np.searchsorted(assignment[ranked], np.arange(c))
    by_cluster_coords = coords[ranked] if coords is not None else None
    clusters = []
    for cid in range(c):  # a loop over clusters (<= a few hundred), each looking at a few candidates
        lo, hi = int(starts[cid]), int(starts[cid] + sizes[cid])
        picked = _pick_label([display[r] for r in ranked[lo: min(hi, lo + _CANDIDATES)].tolist()])
        if by_cluster_coords is None:
            center = np.zeros(0)  # no map: no label place
        else:
            center = np.median(by_cluster_coords[lo:hi], axis=0) if hi > lo else np.zeros(by_cluster_coords.shape[1])
        clusters.append(Cluster(cid, int(sizes[cid]), " · ".join(picked), picked, float(mean_cos[cid]),
                                float(mean_cos[cid] - map_mean), [float(v) for v in center]))
    return clusters, map_mean, label_by


def _renumber_by_size(labels: np.ndarray, min_size: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Ids 0..c-1 by decreasing size (ties: lower old id); communities below ``min_size`` become -1, and so
    do the points outside ``valid`` (a boolean mask; they count towards no size)."""
    sizes = np.bincount(labels if valid is None else labels[valid], minlength=int(labels.max(initial=-1)) + 1)
    keep = np.flatnonzero(sizes >= min_size)
    keep = keep[np.lexsort((keep, -sizes[keep]))]
    new = np.full(sizes.size, -1, dtype=np.int64)
    new[keep] = np.arange(keep.size)
    return new[labels] if valid is None else np.where(valid, new[labels], -1)


def find_clusters(
    X: np.ndarray,
    *,
    clusters: str | int = "auto",
    metric: str = "cosine",
    seed: int = 0,
    display: list[str],
    coords: np.ndarray | None = None,
    frequencies: np.ndarray | None = None,
    k: int = CLUSTER_K,
    min_size: int | None = None,
    indices: np.ndarray | None = None,
    sub: bool = True,
) -> Clustering | None:
    """Cluster the points ``X`` (n, d) on their full-space k-NN graph and label the clusters.

    Args:
        clusters: ``"auto"``, ``"none"`` (returns None) or a number of clusters (>= 2).
        metric: the graph's metric (``cosine`` or ``euclidean``); tightness is always cosine.
        display: readable token of each point; ``coords``: the map coordinates (n, dims), for label places
            (None: clusters without a map, and so without label places).
        frequencies: corpus counts (labels then name the most frequent members), or None (most central).
        k: neighbours per point in the graph.
        min_size: with ``"auto"``, smaller clusters get id -1 (default max(5, n / 1000)).
        indices: a k-NN graph already found (n, k'), used instead of asking the neighbour layer.
        sub: also find the finer level (``Clustering.sub``) on the same graph.
    """
    requested = check_clusters(clusters)
    if requested == "none":
        return None
    n = X.shape[0]
    if isinstance(requested, int) and requested > n:
        raise EmbedlensError(f"clusters must be at most the number of points ({n}), got {requested}")
    timings = Timings()
    notes: list[str] = []
    with timings.stage("graph"):
        k = max(1, min(int(k), n - 1))
        info: dict[str, Any] = {"knn_source": "given (the map reducer's graph)"}
        if indices is None:
            indices, info, graph_notes = space_graph(X, k, metric=metric, seed=seed)
            notes.extend(graph_notes)
        indices = np.asarray(indices, dtype=np.int64)
        k = min(k, indices.shape[1])  # a given graph may hold fewer neighbours (UMAP's default keeps 14): say so
        indices = indices[:, :k]

    with timings.stage("communities"):
        edges = symmetric_edges(indices)
        resolution = 1.0
        labels, algorithm = communities(edges, n, resolution=resolution, seed=seed)
        if isinstance(requested, int):
            for _ in range(6):  # finer communities until there are at least N to merge from
                if labels.max() + 1 >= requested:
                    break
                resolution *= 2.0
                labels, algorithm = communities(edges, n, resolution=resolution, seed=seed)
            labels = merge_communities(labels, edges, requested)
            if labels.max() + 1 < requested:
                notes.append(f"only {labels.max() + 1} clusters could be found, not {requested}")
            size_floor = 1
        else:
            size_floor = max(5, n // 1000) if min_size is None else int(min_size)
            labels = merge_communities(labels, edges, MAX_AUTO) if labels.max() + 1 > MAX_AUTO else labels
        assignment = _renumber_by_size(labels, size_floor)

    with timings.stage("labels"):
        described, map_mean, label_by = describe_clusters(
            X, assignment, display, None if coords is None else np.asarray(coords, dtype=np.float64), frequencies)
    graph_what = f"k-NN graph of the full space ({metric}{' on L2-normalised rows' if metric == 'cosine' else ''}), k={k}"
    params = {"k": k, "resolution": resolution, "min_size": size_floor, "seed": seed, "edges": int(len(edges)),
              **{f"graph_{key}" if not key.startswith("knn") else key: v for key, v in info.items()
                 if isinstance(v, str | int | float | bool)}}
    found = Clustering(assignment, described, requested, algorithm, graph_what, map_mean, label_by, params,
                       timings, notes)
    if sub and len(found):
        with timings.stage("sub_clusters"):
            found.sub = find_subclusters(X, found, edges, resolution=SUB_RESOLUTION * resolution, display=display,
                                         coords=coords, frequencies=frequencies, seed=seed)
    return found


def find_subclusters(X: np.ndarray, clustering: Clustering, edges: np.ndarray, *, resolution: float,
                     display: list[str], coords: np.ndarray | None, frequencies: np.ndarray | None = None,
                     seed: int = 0, max_sub: int = MAX_SUB, min_size: int | None = None) -> Clustering:
    """The finer level of ``clustering``: communities of the same graph (``edges``) at a higher
    ``resolution``, cut along the clusters (each sub-cluster lies inside one cluster), merged inside the
    clusters down to ``max_sub``; sub-clusters under ``min_size`` points (default max(3, n / 4000)) get -1."""
    n = X.shape[0]
    parent = np.asarray(clustering.assignment, dtype=np.int64)
    fine, algorithm = communities(edges, n, resolution=resolution, seed=seed)
    # (cluster, community) pairs: a community that straddles two clusters becomes two sub-clusters
    pairs = _dense_ids((parent + 1) * (int(fine.max()) + 1) + fine)
    inside = edges[parent[edges[:, 0]] == parent[edges[:, 1]]]  # merges never cross a cluster's border
    labels = merge_communities(pairs, inside, max_sub) if pairs.max() + 1 > max_sub else pairs
    floor = max(3, n // 4000) if min_size is None else int(min_size)
    assignment = _renumber_by_size(labels, floor, valid=parent >= 0)
    described, map_mean, label_by = describe_clusters(
        X, assignment, display, None if coords is None else np.asarray(coords, dtype=np.float64), frequencies)
    params = {"resolution": resolution, "min_size": floor, "max": max_sub, "seed": seed,
              "within": "one cluster each"}
    return Clustering(assignment, described, "sub", algorithm, clustering.found_on, map_mean, label_by, params)


def label_levels(clustering: Clustering | None, sub_clustering: Clustering | None = None) -> list[dict[str, Any]]:
    """The map's label levels, coarse to fine, as JSON: ``[{"name", "assignment", "labels", "sizes"}, ...]``.

    ``assignment`` holds each point's cluster id (-1: none), ``labels`` / ``sizes`` one entry per id.
    Label text is the plain readable form (not escaped: pages insert it with ``textContent``). Used by the
    static map page and the explorer's ``/api/clusters`` alike.
    """
    levels = []
    for name, c in (("clusters", clustering), ("sub-clusters", sub_clustering)):
        if c is None:
            continue
        levels.append({"name": name, "assignment": np.asarray(c.assignment, dtype=np.int64).tolist(),
                       "labels": [cl.label for cl in c.clusters], "sizes": [cl.size for cl in c.clusters]})
    return levels
