"""The view of a map: the box around the bulk of its points, so a few outliers do not set the range.

A UMAP or t-SNE map often has a handful of points far from the rest; framing the full extent leaves the
map in a corner of the canvas. Every renderer frames the 0.5-99.5% quantiles of each axis plus a margin
(the WebGL component ``static/pointcloud.js`` computes the same box in the browser); outliers stay
reachable by zooming out (interactive maps) and are left out of the static picture.
"""

from __future__ import annotations

import numpy as np

QUANTILE = 0.005
MARGIN = 0.06  # share of the bulk's span added on each side


def bulk_bounds(coords: np.ndarray, *, quantile: float = QUANTILE, margin: float = MARGIN) -> np.ndarray:
    """``(dims, 2)`` lower and upper limits per axis of ``coords`` (n, dims): the ``quantile`` and
    ``1 - quantile`` quantiles widened by ``margin`` of their span on each side. An axis with no spread
    takes the widest axis's span (all points in one place: a unit box)."""
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or not xy.shape[0]:
        return np.tile([-1.0, 1.0], (xy.shape[1] if xy.ndim == 2 else 2, 1))
    lo, hi = np.quantile(xy, [quantile, 1.0 - quantile], axis=0)
    span = hi - lo
    widest = float(span.max())
    flat = ~(span > 1e-9 * (widest or 1.0))
    mid = (lo + hi) / 2
    half = widest / 2 if widest > 0 else 1.0
    lo, hi = np.where(flat, mid - half, lo), np.where(flat, mid + half, hi)
    pad = (hi - lo) * margin
    return np.column_stack([lo - pad, hi + pad])


def share_inside(coords: np.ndarray, bounds: np.ndarray) -> float:
    """The share of the points of ``coords`` (n, dims) inside ``bounds`` (dims, 2) on every axis."""
    xy = np.asarray(coords, dtype=np.float64)
    inside = np.all((xy >= bounds[:, 0]) & (xy <= bounds[:, 1]), axis=1)
    return float(inside.mean()) if inside.size else 1.0
