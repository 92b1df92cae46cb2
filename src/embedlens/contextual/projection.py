"""Fitting maps of hidden states honestly: repeated runs, their agreement, and Procrustes alignment.

t-SNE and UMAP are random: a cluster seen in one run may be gone in the next. ``runs`` fits the same
points with seeds ``seed, seed+1, ...``, rotates each map onto the first by orthogonal Procrustes (only
so they can be compared by eye; the score does not depend on it), and measures the *stability score*:
for each point, the Jaccard overlap of its ``k`` nearest map neighbours in two runs, averaged over every
pair of runs and then over the points. 1.0 means every point kept exactly the same neighbours in every
run (always the case for PCA, which is deterministic); values near ``k / n`` are what unrelated maps give.

Maps of different models are made comparable the same way: each is fitted on its own, then rotated,
scaled and shifted (similarity Procrustes) onto the first model's map using the points both share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..reduce.options import ReduceOptions
from ..reduce.sweep import perplexity_sweep
from ..reduce.tsne import clamp_perplexity, default_perplexity
from ..timing import Timings

STABILITY_K = 5
MIN_SHARED = 3


def auto_perplexity(n_points: int) -> float:
    """t-SNE perplexity for ``n_points`` when none is given: the reducer's default for that many points
    (:func:`~embedlens.reduce.tsne.default_perplexity`: 30, or 10 from 100,001), at most ``(n - 1) / 3``."""
    return clamp_perplexity(None, max(n_points, 2))[0]


def map_neighbors(coords: np.ndarray, k: int = STABILITY_K) -> np.ndarray:
    """Indices of each point's ``k`` nearest other points in a 2-D/3-D map, array of shape (n, k)."""
    from sklearn.neighbors import NearestNeighbors

    n = coords.shape[0]
    k = min(k, n - 1)
    if k < 1:
        raise EmbedlensError("the stability score needs at least 2 points")
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="kd_tree").fit(coords)
    idx = nn.kneighbors(coords, return_distance=False)
    is_self = idx == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)  # exact duplicates can push a point out of its own list
    is_self[no_self, -1] = True
    return idx[~is_self].reshape(n, k)


def neighbor_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two (n, k) neighbour index arrays (rows hold distinct indices)."""
    k = a.shape[1]
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    inter = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return inter / (2 * k - inter)


def stability_score(maps: list[np.ndarray], k: int = STABILITY_K) -> tuple[float, np.ndarray]:
    """Mean Jaccard agreement of each point's ``k`` nearest map neighbours across runs.

    Args:
        maps: two or more arrays of shape (n, dims), the same points in the same order.

    Returns:
        ``(score, per_point)``: the mean over points, and each point's mean over every pair of runs.
    """
    if len(maps) < 2:
        raise EmbedlensError("the stability score needs at least 2 runs")
    nbrs = [map_neighbors(np.asarray(m, dtype=np.float64), k) for m in maps]
    per_point = np.zeros(maps[0].shape[0], dtype=np.float64)
    pairs = 0
    for i in range(len(nbrs)):
        for j in range(i + 1, len(nbrs)):
            per_point += neighbor_jaccard(nbrs[i], nbrs[j])
            pairs += 1
    per_point /= pairs
    return float(per_point.mean()), per_point


@dataclass
class Alignment:
    """A Procrustes fit of one map onto another: ``aligned = (Y - shift_from) @ rotation * scale + shift_to``."""

    rotation: np.ndarray
    scale: float
    shift_from: np.ndarray
    shift_to: np.ndarray
    disparity: float  # residual / total sum of squares of the reference, on the matched points
    n_matched: int

    def apply(self, coords: np.ndarray) -> np.ndarray:
        return ((coords - self.shift_from) @ self.rotation * self.scale + self.shift_to).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "disparity": self.disparity, "n_matched": self.n_matched,
                "rotation": self.rotation.tolist()}


def procrustes(source: np.ndarray, target: np.ndarray, *, scale: bool = False) -> Alignment:
    """Orthogonal Procrustes of matched points ``source`` onto ``target`` (both (m, dims)), after centring.

    ``scale=True`` also fits the best uniform scale (for maps of different models, whose units differ).
    """
    from scipy.linalg import orthogonal_procrustes

    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    if a.shape != b.shape:
        raise EmbedlensError(f"Procrustes needs matched points of the same shape, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    a0, b0 = a - mu_a, b - mu_b
    rotation, sv_sum = orthogonal_procrustes(a0, b0)
    s = float(sv_sum / max(float((a0 * a0).sum()), 1e-300)) if scale else 1.0
    resid = float(((a0 @ rotation * s - b0) ** 2).sum())
    disparity = resid / max(float((b0 * b0).sum()), 1e-300)
    return Alignment(rotation, s, mu_a, mu_b, disparity, int(a.shape[0]))


@dataclass
class ContextProjection:
    """A map of some vectors, possibly fitted several times.

    Attributes:
        coords: float32 array of shape (n, dims), the first run (seed ``seed``).
        aligned_runs: every run rotated onto the first (the first itself included), each (n, dims).
        stability: the stability score (``None`` with a single run); ``point_stability`` per point.
        params: the reducer's ``params_`` of the first run; ``notes``: what the user must be told.
    """

    method: str
    dims: int
    seed: int
    runs: int
    coords: np.ndarray
    aligned_runs: list[np.ndarray]
    stability: float | None
    point_stability: np.ndarray | None
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "dims": self.dims, "seed": self.seed, "runs": self.runs,
                "seeds": [self.seed + r for r in range(self.runs)], "stability_score": self.stability,
                "stability_k": STABILITY_K, "params": self.params, "notes": list(self.notes),
                "timings": dict(self.timings)}


def project(vectors: np.ndarray, reduce: ReduceOptions | None = None, *, runs: int = 1) -> ContextProjection:
    """Map ``vectors`` (n, d) as ``reduce`` says (default: t-SNE 2-D, seed 0) ``runs`` times, with seeds
    ``seed, seed + 1, ...``, and measure how stable the map is.

    A t-SNE perplexity that is not given is set by :func:`auto_perplexity`, and a note says so.
    """
    reduce = ReduceOptions("tsne") if reduce is None else reduce
    if runs < 1:
        raise EmbedlensError(f"`runs` must be at least 1, got {runs}")
    n = int(vectors.shape[0])
    notes: list[str] = []
    if reduce.method == "tsne" and reduce.perplexity is None:
        reduce = reduce.replace(perplexity=auto_perplexity(n))
        notes.append(f"t-SNE perplexity not given: set to {reduce.perplexity:.3g} = min({default_perplexity(n):g}, "
                     f"(n - 1) / 3) for n = {n} points")
    timings = Timings()
    maps: list[np.ndarray] = []
    params: dict[str, Any] = {}
    with timings.stage("fit"):
        for r in range(runs):
            # t-SNE picks Barnes-Hut gradients by itself below 10,000 points (FFT's fixed cost dominates there).
            reducer = reduce.replace(seed=reduce.seed + r).reducer()
            maps.append(np.asarray(reducer.fit_transform(vectors), dtype=np.float32))
            if r == 0:
                params = dict(reducer.params_)
                notes.extend(str(x) for x in getattr(reducer, "notes_", []))
    aligned = [maps[0]] + [procrustes(m, maps[0]).apply(m) for m in maps[1:]]
    stability: float | None = None
    per_point: np.ndarray | None = None
    if runs > 1:
        with timings.stage("stability"):
            stability, per_point = stability_score(maps)
    return ContextProjection(reduce.method, reduce.n_components, reduce.seed, runs, maps[0], aligned, stability,
                             per_point, params, notes, dict(timings))


def project_sweep(vectors: np.ndarray, perplexities: list[float], reduce: ReduceOptions | None = None,
                  ) -> tuple[Any, ContextProjection]:
    """t-SNE maps of ``vectors`` (n, d) at each perplexity (:func:`~embedlens.reduce.sweep.perplexity_sweep`:
    same seed, one k-NN graph; the other t-SNE settings from ``reduce``), and the :class:`ContextProjection` of
    the map at the largest perplexity."""
    reduce = ReduceOptions("tsne") if reduce is None else reduce.replace(method="tsne", perplexity=None)
    dims, seed = reduce.n_components, reduce.seed
    sweep = perplexity_sweep(vectors, perplexities, reduce)
    top = max(sweep.maps, key=lambda m: m.perplexity)
    notes = [f"perplexity sweep {', '.join(f'{m.perplexity:g}' for m in sweep.maps)}: one map per value "
             f"(sweep.html); this map is the one at {top.perplexity:g}", *top.notes]
    proj = ContextProjection("tsne", dims, seed, 1, top.coords, [top.coords], None, None, top.params, notes,
                      {"fit": float(sweep.timings.get("total", 0.0))})
    return sweep, proj
