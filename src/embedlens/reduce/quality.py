"""How faithful is a map? Trustworthiness and neighbour recall on a seeded sample.

A 2D/3D map of a 576-dimensional space must distort it; these two figures say how much, from the
point of view of each point's nearest neighbours:

- **trustworthiness** (Venna & Kaski; scikit-learn's definition): penalises points that look like
  neighbours in the map but are not in the original space, by how far down the original ranking
  they are. 1.0 means every map neighbourhood is a true neighbourhood; random maps score ~0.5.
- **neighbour recall@k**: the share of each point's original top-k (cosine or euclidean) that is
  also in its map top-k (euclidean), averaged over points. 1.0 means the map keeps every neighbour.

Both are computed exactly within a seeded random sample of points (all points if fewer): neighbours
are sought among the sampled points only, so the figures describe the sample and the sample size is
reported with them. Row blocks keep memory at O(block x sample); nothing loops in Python over points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from .base import check_matrix, check_metric, check_seed

_BLOCK_ELEMS = 1 << 24  # booleans/floats held at once per row block


@dataclass(frozen=True)
class ProjectionQuality:
    """Faithfulness of a map, measured on ``n_sample`` points drawn with ``seed``."""

    trustworthiness: float
    neighbor_recall: float
    k: int
    n_sample: int
    seed: int
    metric: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectionQuality:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def summary(self) -> str:
        """One line for titles and terminals, e.g. ``trustworthiness 0.912 · neighbour recall@10 0.341``."""
        return (
            f"trustworthiness {self.trustworthiness:.3f} · neighbour recall@{self.k} {self.neighbor_recall:.3f}"
            f" ({self.metric}, {self.n_sample:,} points)"
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
        from ..neighbors.exact import normalized_rows

        return normalized_rows(x, dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def _original_distances(xb: np.ndarray, x: np.ndarray, x_sq: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        d = xb @ x.T  # rows already unit length: cosine distance = 1 - dot
        np.subtract(1.0, d, out=d)
        return d
    return _sq_distances(xb, x, x_sq)


def _map_neighbours(y: np.ndarray, k: int) -> np.ndarray:
    """Indices (m, k) of each point's k nearest other points in the map (euclidean).

    A k-d tree (the map has 2 or 3 dimensions) when scipy is at hand, else blocked brute force.
    """
    m = y.shape[0]
    try:
        from scipy.spatial import cKDTree
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        cKDTree = None
    if cKDTree is not None and y.shape[1] <= 8:
        _, found = cKDTree(y).query(y, k=k + 1)
        found = np.asarray(found).reshape(m, k + 1)
        is_self = found == np.arange(m)[:, None]
        # Drop the point itself; with exact duplicates it may be missing, then drop the farthest.
        is_self[~is_self.any(axis=1), k] = True
        return found[~is_self].reshape(m, k)
    y_sq = np.einsum("ij,ij->i", y, y)
    out = np.empty((m, k), dtype=np.int64)
    block = max(1, min(m, _BLOCK_ELEMS // m))
    for start in range(0, m, block):
        stop = min(m, start + block)
        rows = np.arange(stop - start)
        dy = _sq_distances(y[start:stop], y, y_sq)
        dy[rows, rows + start] = np.inf
        out[start:stop] = np.argpartition(dy, k - 1, axis=1)[:, :k]
    return out


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
    """Mean share of each point's original top-k (by ``metric``) that is also in its map top-k (euclidean)."""
    X, Y, k = _check_pair(X, Y, k)
    return _neighbour_scores(X, Y, k, check_metric(metric))[1]


def sample_indices(n: int, sample: int, seed: int) -> np.ndarray:
    """Sorted indices of ``sample`` distinct points out of ``n`` drawn with ``seed`` (all if n <= sample)."""
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


def projection_quality(
    X: Any, Y: Any, k: int = 10, sample: int = 2000, seed: int = 0, metric: str = "cosine"
) -> ProjectionQuality:
    """Trustworthiness and neighbour recall@k of map ``Y`` (n, c) of ``X`` (n, d) on a seeded sample.

    Args:
        X: original vectors, array of shape (n, d) (a read-only memory map is fine).
        Y: map coordinates, array of shape (n, 2 or 3).
        k: neighbourhood size; lowered to the largest valid value (k < n_sample / 2) for tiny inputs,
            and the value used is reported.
        sample: points drawn without replacement with ``seed`` (all points if n <= sample).
        seed: seed of the sample.
        metric: distance in the original space, ``"cosine"`` or ``"euclidean"``.
    """
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
    trust, recall = _neighbour_scores(Xs, Ys, k_used, metric)
    return ProjectionQuality(
        trustworthiness=trust, neighbor_recall=recall, k=k_used, n_sample=m, seed=seed, metric=metric
    )
