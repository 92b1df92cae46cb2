"""How faithful is a map? Neighbour recall over all points, and trustworthiness on a seeded sample.

A 2D/3D map of a 576-dimensional space must distort it; these two figures say how much, from the
point of view of each point's nearest neighbours:

- **neighbour recall@k** (:func:`map_recall`; the figure of the manifest, the CLI summary, the HTML
  title and the explorer): draw ``sample`` query points with ``seed`` (2,000; all if fewer); for each,
  its k nearest points by ``metric`` in the full space, searched over ALL points, and its k nearest
  points on the map (euclidean), searched over ALL points; the recall is the mean share of the first
  set found in the second. 1.0 means the map keeps every neighbour; a random map scores about k / n.
  Below 0.10 (fewer than one of a point's 10 true neighbours among its 10 nearest on the map) a map is
  called low: on SmolLM2's vocabulary PCA 2D scores 0.003, UMAP ~0.15-0.17, t-SNE ~0.35.
- **trustworthiness** (Venna & Kaski; scikit-learn's definition): penalises points that look like
  neighbours in the map but are not in the original space, by how far down the original ranking
  they are. 1.0 means every map neighbourhood is a true neighbourhood; random maps score ~0.5. It
  needs every pairwise rank, so it is computed *within* a seeded sample of ``sample`` points
  (neighbours sought among the sampled points only) and says so; below 0.80 is called low.

**Local recall** (:func:`local_recall`) says *where* a map lies: for every point, the share of its k
true nearest neighbours (its row of the full-space k-NN graph) found among its k nearest points on
the map. The recall@k is its mean over the seeded query rows, by construction: both count hits with
one function (:func:`map_faithfulness` gives the two from one truth graph). The truth graph of a
space comes from :func:`space_truth`: the cached k-NN graph, else one built and cached.

Every search goes through the one neighbour layer (:mod:`embedlens.neighbors.index`): exact, ties
broken by row; map-side searches of 2-3 dimensions use its k-d tree (all 262,144 points of a 2-D
map in about two seconds). Nothing loops in Python over points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..cache import atomic_path
from ..errors import EmbedlensError
from ..neighbors import build_index
from ..neighbors.exact import normalized_rows
from ..neighbors.index import EXACT_MAX, ExactIndex, Neighbors, check_k, one_off_backend, sample_rows
from ..neighbors.knn import CachedView, KnnGraph, build_knn, cached_knn
from .base import check_matrix, check_metric, check_seed
from .knn import map_graph

_BLOCK_ELEMS = 1 << 24  # booleans/floats held at once per row block


RECALL_DEFINITION = ("{q:,} seeded query points; their {k} nearest by {metric} in the full space vs their {k} "
                     "nearest on the map, both searched over all {n:,} points")
TRUST_DEFINITION = "within a seeded sample of {s:,} points"
LOCAL_DEFINITION = ("each point's share of its {k} nearest neighbours in the full space (the truth graph) found "
                    "among its {k} nearest points on the map, searched over all points")


@dataclass(frozen=True)
class ProjectionQuality:
    """Faithfulness of a map.

    Attributes:
        trustworthiness: within a seeded sample of ``n_sample`` points (neighbours among the sample).
        neighbor_recall: recall@k over all points (:func:`map_recall`), from ``n_queries`` seeded queries.
        k, seed, metric: as used.
        n_sample: points of the trustworthiness sample.
        n_queries: query points of the recall (all points if fewer than the sample).
        n_points: points on the map (the recall searches among all of them).
    """

    trustworthiness: float
    neighbor_recall: float
    k: int
    n_sample: int
    seed: int
    metric: str
    n_queries: int = 0
    n_points: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recall_definition"] = self.recall_definition()
        out["trustworthiness_definition"] = TRUST_DEFINITION.format(s=self.n_sample)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectionQuality:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def recall_definition(self) -> str:
        return RECALL_DEFINITION.format(q=self.n_queries, k=self.k, metric=self.metric, n=self.n_points)

    def summary(self) -> str:
        """One line for titles and terminals: the recall over all points, then the sampled trustworthiness."""
        return (
            f"neighbour recall@{self.k} {self.neighbor_recall:.3f} ({self.n_queries:,} queries among all "
            f"{self.n_points:,} points, {self.metric}) · trustworthiness {self.trustworthiness:.3f} "
            f"(within {self.n_sample:,} sampled points)"
        )


def _sq_distances(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared euclidean distances (len(a), len(b)) in float64; rank-preserving, clipped at 0."""
    d = a @ b.T
    d *= -2.0
    d += np.einsum("ij,ij->i", a, a)[:, None]
    d += b_sq[None, :]
    return np.maximum(d, 0.0, out=d)


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return normalized_rows(x, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def _original_distances(xb: np.ndarray, x: np.ndarray, x_sq: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        d = xb @ x.T  # rows already unit length: cosine distance = 1 - dot
        np.subtract(1.0, d, out=d)
        return d
    return _sq_distances(xb, x, x_sq)


def map_index(Y: Any) -> Any:
    """The exact euclidean neighbour index of map coordinates ``Y`` (n, c): a k-d tree for 2-3 dimensions."""
    return build_index(np.asarray(Y, dtype=np.float32), metric="euclidean", kind="exact")


def _map_neighbours(y: np.ndarray, k: int) -> np.ndarray:
    """Indices (m, k) of each point's k nearest other points in the map (euclidean, exact, ties by row)."""
    return map_index(y).query(None, k, exclude_self=True).indices


def _found_counts(truth: np.ndarray, Y: Any, rows: np.ndarray | None, k: int,
                  found: np.ndarray | None = None) -> np.ndarray:
    """For each query row (``None``: every point), how many of its true neighbours ``truth`` (m, k) are among
    its ``k`` nearest other points on the map ``Y`` (euclidean, searched over all points): the one count
    behind both :func:`map_recall` and :func:`local_recall`. ``found``: those map neighbours (m, k), if known."""
    if found is None:
        found = map_index(Y).query(rows, k, exclude_self=True).indices
    counts = np.empty(found.shape[0], dtype=np.int64)
    step = max(1, _BLOCK_ELEMS // (k * k))
    for start in range(0, found.shape[0], step):  # blocks of rows: (rows, k, k) comparisons at once
        t, f = truth[start : start + step], found[start : start + step]
        counts[start : start + step] = (t[:, :, None] == f[:, None, :]).any(axis=2).sum(axis=1)
    return counts


def _check_pair(X: Any, Y: Any, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    X = check_matrix(X)
    Y = check_matrix(Y, what="Y")
    if X.shape[0] != Y.shape[0]:
        raise EmbedlensError(f"X has {X.shape[0]} rows but the map Y has {Y.shape[0]}: they must match")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise EmbedlensError(f"k must be a positive integer, got {k!r}")
    n = X.shape[0]
    if k >= n / 2:
        raise EmbedlensError(
            f"k={k} needs more than {2 * k} points (trustworthiness is defined for k < n/2); got {n}"
        )
    return X, Y, int(k)


def _neighbour_scores(X: np.ndarray, Y: np.ndarray, k: int, metric: str) -> tuple[float, float]:
    """(trustworthiness, neighbour recall@k) of map ``Y`` of ``X``, all points, exact, in row blocks.

    For each point i and each of its k map neighbours j, the rank of j in i's original ordering is
    ``1 + #points strictly closer to i than j`` (one (block, k, m) comparison, no sort). Trustworthiness
    sums ``rank - k`` over ranks above k; j is one of i's original top-k exactly when its rank <= k,
    which gives the recall without a second top-k search (ties count in the point's favour).
    """
    m = X.shape[0]
    x = _prepare(X, metric)
    x_sq = np.einsum("ij,ij->i", x, x)
    ny = _map_neighbours(np.asarray(Y, dtype=np.float64), k)
    block = max(1, min(m, _BLOCK_ELEMS // (k * m)))
    penalty = 0
    kept = 0
    for start in range(0, m, block):
        stop = min(m, start + block)
        rows = np.arange(stop - start)
        dx = _original_distances(x[start:stop], x, x_sq, metric)
        dx[rows, rows + start] = np.inf  # a point is not its own neighbour
        dj = np.take_along_axis(dx, ny[start:stop], axis=1)
        ranks = 1 + np.count_nonzero(dx[:, None, :] < dj[:, :, None], axis=2)
        penalty += int(np.maximum(ranks - k, 0).sum())
        kept += int(np.count_nonzero(ranks <= k))
    trust = 1.0 - penalty * 2.0 / (m * k * (2.0 * m - 3.0 * k - 1.0))
    return float(trust), kept / (m * k)


def trustworthiness(X: Any, Y: Any, k: int = 10, *, metric: str = "cosine") -> float:
    """Trustworthiness of map ``Y`` (n, c) of ``X`` (n, d), scikit-learn's definition, over all n points.

    ``metric`` is the original space's distance (``"cosine"`` or ``"euclidean"``); the map is euclidean.
    Needs ``k < n / 2``. Cost O(n² (d + k)): sample large inputs with :func:`projection_quality`.
    """
    X, Y, k = _check_pair(X, Y, k)
    return _neighbour_scores(X, Y, k, check_metric(metric))[0]


def neighbor_recall(X: Any, Y: Any, k: int = 10, *, metric: str = "cosine") -> float:
    """Mean share of each point's original top-k (by ``metric``) that is also in its map top-k (euclidean).

    :func:`map_recall` with every point a query.
    """
    X, Y, k = _check_pair(X, Y, k)
    return map_recall(X, Y, k, sample=X.shape[0], metric=check_metric(metric))


def map_recall(X: Any, Y: Any, k: int = 10, *, sample: int = 2000, seed: int = 0, metric: str = "cosine",
               space_neighbors: Neighbors | KnnGraph | None = None) -> float:
    """Neighbour recall@k of map ``Y`` (n, c) of ``X`` (n, d): the package's one recall of a map.

    ``sample`` query points drawn with ``seed`` (all if n <= sample); for each, its ``k`` nearest points
    by ``metric`` in ``X`` and its ``k`` nearest on ``Y`` (euclidean), both searched over ALL n points
    (itself excluded, by id); the mean share of the first set found in the second.

    Args:
        space_neighbors: the exact true neighbours when the caller has them (saves the search): a
            :class:`~embedlens.neighbors.index.Neighbors` (``metric``, at least ``k`` columns) of every row
            of ``X`` (its k-NN graph), or of the seeded query rows only, in :func:`sample_indices` order
            (:func:`query_truth`).
    """
    return _recall_of(X, Y, sample_indices(X.shape[0], int(sample), int(seed)), k, metric, space_neighbors)[0]


def _recall_of(X: Any, Y: Any, rows: np.ndarray, k: int, metric: str, space_neighbors: Neighbors | KnnGraph | None,
               found: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """The recall@k over the query ``rows``, their true neighbours (m, k) and each one's count of them found."""
    truth = _query_truth(X, rows, k, metric, space_neighbors)
    counts = _found_counts(truth, Y, rows, k, found)
    return float(counts.sum()) / truth.size, truth, counts


def _query_truth(X: Any, rows: np.ndarray, k: int, metric: str, space_neighbors: Neighbors | KnnGraph | None) -> np.ndarray:
    """The exact ``k`` nearest rows of ``X`` (full space, ``metric``) of the query ``rows``: from
    ``space_neighbors`` when it fits (every row's graph, or the query rows' own), else searched over all rows."""
    nb = space_neighbors
    if nb is not None and nb.metric == metric and nb.k >= k:
        if nb.indices.shape[0] == X.shape[0]:
            return np.asarray(nb.indices[rows, :k])
        if nb.indices.shape[0] == len(rows):
            return np.asarray(nb.indices[:, :k])
    return _search_truth(X, rows, k, metric).indices


def _search_truth(X: Any, rows: np.ndarray, k: int, metric: str) -> Any:
    """The query ``rows``' ``k`` nearest rows of ``X`` by an exact search over all rows (a ``Neighbors``).

    A one-off search (:func:`~embedlens.neighbors.index.one_off_backend`): an 8B model's 2 GB vocabulary is
    searched block by block straight from its memory map, where faiss would first hold two copies of it (+4 GB).
    """
    backend = one_off_backend(X.shape, len(rows), metric)
    return ExactIndex(X, metric=metric, backend=backend).query(rows, k, exclude_self=True)


def local_recall(truth_indices: Any, coords: Any, k: int = 10) -> np.ndarray:
    """Each point's share of its ``k`` true nearest neighbours found among its ``k`` nearest points on the map.

    Args:
        truth_indices: int array of shape (n, >= k): row i holds point i's nearest neighbours in the full
            space, best first (the space's k-NN graph, itself excluded); its first ``k`` columns are used.
        coords: the map, array of shape (n, 2 or 3); its neighbours are searched exactly over all points
            (euclidean, itself excluded by id, ties by lower row).
        k: neighbourhood size.

    Returns:
        float32 array of shape (n,), values in multiples of 1/k from 0 (none kept) to 1 (all kept). Its mean
        over :func:`map_recall`'s seeded query rows is the map's recall@k when ``truth_indices`` is exact.
    """
    Y = check_matrix(coords, what="coords")
    truth, k = _checked_truth(truth_indices, Y.shape[0], k)
    return (_found_counts(truth, Y, None, k) / np.float32(k)).astype(np.float32)


def _checked_truth(truth_indices: Any, n: int, k: int) -> tuple[np.ndarray, int]:
    """``truth_indices`` cut to its first ``k`` columns, checked against a map of ``n`` points; and ``k``."""
    truth = np.asarray(truth_indices)
    if truth.ndim != 2 or not np.issubdtype(truth.dtype, np.integer):
        raise EmbedlensError(f"truth_indices must be an integer matrix of shape (n_points, k), got {truth.dtype} "
                             f"of shape {truth.shape}")
    if truth.shape[0] != n:
        raise EmbedlensError(f"truth_indices has {truth.shape[0]} rows but the map coords has {n}: they must match")
    k = check_k(k, min(truth.shape[1], n - 1), context=" (the truth's columns and the map's other points)")
    truth = truth[:, :k]
    if truth.min() < 0 or truth.max() >= n:
        raise EmbedlensError(f"truth_indices must hold rows from 0 to {n - 1}")
    return truth, k


def _local_of(truth: np.ndarray, found: np.ndarray, k: int) -> np.ndarray:
    """:func:`local_recall` from every point's map neighbours ``found`` (n, k) already searched."""
    return (_found_counts(truth, None, None, k, found) / np.float32(k)).astype(np.float32)


def sample_indices(n: int, sample: int, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` distinct points out of ``n`` drawn with ``seed`` (all if n <= sample)."""
    return sample_rows(n, sample, seed)


def projection_quality(
    X: Any, Y: Any, k: int = 10, sample: int = 2000, seed: int = 0, metric: str = "cosine",
    space_neighbors: Neighbors | KnnGraph | None = None,
) -> ProjectionQuality:
    """Neighbour recall@k over all points (:func:`map_recall`) and trustworthiness within a seeded sample.

    Args:
        X: original vectors, array of shape (n, d) (a read-only memory map is fine).
        Y: map coordinates, array of shape (n, 2 or 3).
        k: neighbourhood size; lowered to the largest valid value (k < n_sample / 2) for tiny inputs,
            and the value used is reported.
        sample: points drawn without replacement with ``seed`` (all points if n <= sample): the recall's
            query points, and the trustworthiness sample.
        seed: seed of the sample.
        metric: distance in the original space, ``"cosine"`` or ``"euclidean"``.
        space_neighbors: the exact k-NN graph of ``X`` if the caller has one (see :func:`map_recall`).
    """
    return _quality(X, Y, k, sample, seed, metric, space_neighbors)[0]


def map_faithfulness(
    X: Any, Y: Any, truth: Any, k: int = 10, *, sample: int = 2000, seed: int = 0, metric: str = "cosine",
    truth_exact: bool = True, space_neighbors: Neighbors | KnnGraph | None = None,
) -> tuple[ProjectionQuality, np.ndarray]:
    """The map's quality figures (:func:`projection_quality`) and each point's :func:`local_recall`, from one truth.

    Args:
        X, Y, k, sample, seed, metric: as for :func:`projection_quality`; the local recall uses the k it reports.
        truth: the k-NN graph of ``X`` (a :class:`~embedlens.neighbors.index.Neighbors` of every row,
            ``metric``, at least ``k`` columns), e.g. from :func:`space_truth` or a reducer's ``graph_``.
        truth_exact: whether ``truth`` is exact. An approximate graph (HNSW, bfloat16 short lists) is used
            for the local recall of every point but the recall's query rows: those are searched exactly, as
            for the recall, so the mean of the local recall over them is the recall either way.
        space_neighbors: with an approximate ``truth``, the query rows' exact neighbours when the caller has
            them (as for :func:`map_recall`; e.g. :func:`query_truth`): saves their search.

    Returns:
        ``(quality, local)``: ``local`` is a float32 array of shape (n,).
    """
    if truth is None or getattr(truth, "metric", metric) != metric or truth.indices.shape[0] != len(Y):
        raise EmbedlensError(f"truth must be a {metric} k-NN graph of all {len(Y)} points")
    quality, rows, truth_rows, _, found = _quality(X, Y, k, sample, seed, metric,
                                                   truth if truth_exact else space_neighbors, every_point=True)
    indices = np.asarray(truth.indices[:, : quality.k])
    if not truth_exact:
        indices = indices.copy()
        indices[rows] = truth_rows
    return quality, _local_of(_checked_truth(indices, len(Y), quality.k)[0], found, quality.k)


def query_faithfulness(X: Any, Y: Any, k: int = 10, *, sample: int = 2000, seed: int = 0, metric: str = "cosine",
                       space_neighbors: Neighbors | KnnGraph | None = None) -> tuple[ProjectionQuality, np.ndarray]:
    """The map's quality figures and the local recall of the recall's query rows only (NaN elsewhere).

    Needs no k-NN graph of the whole space: only the query rows' true neighbours, which the recall
    searches anyway (or takes from ``space_neighbors``, as :func:`map_recall`). The mean of the measured
    values is the recall.
    """
    quality, rows, _, counts, _ = _quality(X, Y, k, sample, seed, metric, space_neighbors)
    local = np.full(len(Y), np.nan, dtype=np.float32)
    local[rows] = counts / np.float32(quality.k)
    return quality, local


def _quality(X: Any, Y: Any, k: int, sample: int, seed: int, metric: str, space_neighbors: Neighbors | KnnGraph | None,
             every_point: bool = False,
             ) -> tuple[ProjectionQuality, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`projection_quality`, with the recall's query rows, their true neighbours and counts of them found
    on the map, and (``every_point``) every point's map neighbours, searched once for the recall and the
    local recall."""
    metric = check_metric(metric)
    seed = check_seed(seed)
    if isinstance(sample, bool) or not isinstance(sample, int | np.integer) or sample < 3:
        raise EmbedlensError(f"sample must be an integer of at least 3, got {sample!r}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise EmbedlensError(f"k must be a positive integer, got {k!r}")
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    Yn = Y.shape[0] if hasattr(Y, "shape") else len(Y)
    if n != Yn:
        raise EmbedlensError(f"X has {n} rows but the map Y has {Yn}: they must match")
    idx = sample_indices(n, int(sample), seed)
    Xs = check_matrix(np.asarray(X[idx], dtype=np.float32) if n > len(idx) else X)
    Ys = check_matrix(np.asarray(Y[idx]) if n > len(idx) else Y, what="Y")
    m = len(idx)
    k_used = min(int(k), (m - 1) // 2)
    trust = _neighbour_scores(Xs, Ys, k_used, metric)[0]
    found_all = map_index(Y).query(None, k_used, exclude_self=True).indices if every_point else None
    recall, truth, counts = _recall_of(X, Y, idx, k_used, metric, space_neighbors,  # map_recall, keeping the truth
                                       None if found_all is None else found_all[idx])
    quality = ProjectionQuality(
        trustworthiness=trust, neighbor_recall=recall, k=k_used, n_sample=m, seed=seed, metric=metric,
        n_queries=m, n_points=int(n),
    )
    return quality, idx, truth, counts, found_all


QUERY_TRUTH_FORMAT = 1


def query_truth_path(view: CachedView, k: int, sample: int, seed: int, metric: str) -> Any:
    """Where :func:`query_truth` caches the true neighbours of a space's seeded query rows."""
    return view.cache_folder() / f"quality-truth-{view.which}-{metric}-k{k}-q{sample}-seed{seed}.npz"


def query_truth(view: CachedView, k: int = 10, *, sample: int = 2000, seed: int = 0, metric: str = "cosine",
                graph: Any = None) -> tuple[Any, dict[str, Any]]:
    """The exact ``k`` nearest rows of the seeded query rows of a whole space's maps (:func:`map_recall`'s truth).

    What every map of the space needs for its recall, whatever the method: taken from the space's exact
    k-NN graph when it is cached (or given as ``graph``, a :class:`~embedlens.neighbors.knn.KnnGraph` from
    :func:`~embedlens.neighbors.knn.cached_knn`), else read from the small file an earlier map of the space
    left (:func:`query_truth_path`), else searched exactly over all rows and left there. The answer is the
    same every way: exact search, ties by lower row.

    Returns:
        ``(neighbors, info)``: a :class:`~embedlens.neighbors.index.Neighbors` of shape (n_queries, k), the
        rows of :func:`sample_indices` ``(n, sample, seed)`` in order, and ``info["source"]``.
    """
    metric = check_metric(metric)
    n = len(view.space)
    k = check_k(k, n - 1, context=f" for a space of {n} rows")
    rows = sample_indices(n, int(sample), check_seed(seed))
    if graph is None and metric == "cosine":
        try:
            graph = cached_knn(view, k)
        except (EmbedlensError, OSError):
            graph = None
    if graph is not None and graph.method == "exact" and graph.k >= k and graph.metric == metric and graph.n == n:
        nb = graph.neighbors(rows, k)
        return nb, {"source": "the space's cached k-NN graph"}
    path = query_truth_path(view, k, int(sample), seed, metric)
    try:
        with np.load(path, allow_pickle=False) as data:
            if (int(data["format"]) == QUERY_TRUTH_FORMAT and int(data["n"]) == n
                    and np.array_equal(data["rows"], rows) and data["indices"].shape == (rows.size, k)):
                nb = Neighbors(data["indices"].astype(np.int64), data["scores"].astype(np.float32), metric)
                return nb, {"source": f"the query rows' exact neighbours, cached ({path.name})"}
    except (OSError, KeyError, ValueError):  # missing or damaged: search again and rewrite it
        pass
    nb = _search_truth(view.space.vectors, rows, k, metric)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, format=np.int64(QUERY_TRUTH_FORMAT), n=np.int64(n), rows=rows, indices=nb.indices,
                     scores=nb.scores)
    except OSError:  # a read-only cache: the figures stand, the next map searches again
        pass
    return nb, {"source": "exact search for the query rows (left in the cache for the next map)"}


def space_truth(view: CachedView, k: int = 10, *, metric: str = "cosine", seed: int = 0, progress: bool = False,
                graph: Any = None) -> tuple[Any, dict[str, Any]]:
    """The k-NN graph of a whole space (``lens.input``...) that its maps are measured against.

    The first that applies:

    1. the space's cached k-NN graph (:func:`~embedlens.neighbors.knn.cached_knn`, cosine): exact, or
       approximate with a stored recall of at least 0.99; one with more neighbours is cut to ``k``;
    2. up to :data:`~embedlens.neighbors.index.EXACT_MAX` rows, the exact graph built and cached there
       (:func:`~embedlens.neighbors.knn.build_knn`; about 30 s once for SmolLM2's 49,152 rows on two cores),
       where later maps, clusters and the explorer find it;
    3. otherwise the graph a t-SNE/UMAP map of the space finds (:func:`~embedlens.reduce.knn.map_graph`:
       bfloat16 short lists re-scored exactly where bfloat16 is fast, else HNSW; its recall measured on
       seeded rows), cached under the space's content hash. Euclidean graphs always come this way.

    ``graph``: the space's cached graph when the caller has already loaded it (:func:`~embedlens.neighbors.knn.cached_knn`).

    Returns:
        ``(neighbors, info)``: a :class:`~embedlens.neighbors.index.Neighbors` of shape (n, k) and what a
        manifest records: ``source``, ``exact`` and, for an approximate graph, its ``recall``.
    """
    metric = check_metric(metric)
    n = len(view.space)
    k = check_k(k, n - 1, context=f" for a space of {n} rows")
    if metric == "cosine":
        graph = graph if graph is not None and graph.k >= k else cached_knn(view, k)
        if graph is not None:
            stored = int(graph.params.get("truncated_from", graph.k))
            graph = graph if graph.k == k else graph.truncate(k)
            info = {"source": "the space's cached k-NN graph", "exact": graph.method == "exact", "k_stored": k}
            if graph.method != "exact":  # measured at the width the graph was found with, by its own route
                info.update(recall=round(float(graph.recall), 4), recall_k=stored, graph=graph.backend)
            return graph.neighbors(), info
        if n <= EXACT_MAX:
            graph, path, _ = build_knn(view, k, progress=progress)
            return graph.neighbors(), {"source": f"the space's exact k-NN graph, built and cached ({path.name})",
                                       "exact": True, "k_stored": k}
    nb, described, _ = map_graph(np.asarray(view.space.vectors), k, metric=metric, seed=seed)
    info = {"source": f"the space's k-NN graph for maps ({described.get('knn_source')}, "
                      f"{described.get('knn_method')})", "exact": "knn_recall" not in described, "k_stored": nb.k}
    if "knn_recall" in described:
        info["recall"] = described["knn_recall"]
    return nb, info
