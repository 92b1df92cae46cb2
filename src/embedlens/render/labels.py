"""Label placement: put text boxes near their anchors without overlapping (a greedy collision pass).

Labels are taken in priority order (the caller's order: largest cluster first, then tokens). Each tries a
few positions around its anchor (centred on it, above, below, right, left; token labels start at the
upper right of their point) and takes the first whose box overlaps no box already placed and stays inside
the bounds; a label with no free position is dropped. A few hundred labels cost a few milliseconds: each
try is one vectorised test against the boxes placed so far.

The same pass runs in JavaScript in the WebGL map component (``static/pointcloud.js``), on every redraw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CENTRED = ((0.0, 0.0), (0.0, 1.05), (0.0, -1.05), (0.55, 0.0), (-0.55, 0.0))
# on the anchor, then rings around it further and further out (the caller draws a leader line to a label
# whose box no longer holds its anchor); the WebGL component uses the same rings in pixels
RINGS = ((0.0, 0.0), *((dx * t, dy * t) for t in (1.0, 2.0, 3.0, 4.5)
                       for dx, dy in ((0.0, 1.2), (0.0, -1.2), (1.05, 0.0), (-1.05, 0.0),
                                      (0.8, 1.2), (-0.8, 1.2), (0.8, -1.2), (-0.8, -1.2))))
BESIDE = ((0.5, 0.5), (-0.5, 0.5), (0.5, -0.5), (-0.5, -0.5))


def place_labels(anchors: np.ndarray, sizes: np.ndarray, *, candidates: Sequence[Sequence[tuple[float, float]]] | None = None,
                 bounds: tuple[float, float, float, float] | None = None, pad: float = 1.0) -> np.ndarray:
    """Boxes ``(m, 4)`` = x0, y0, x1, y1 for labels of ``sizes`` (m, 2) = width, height at ``anchors`` (m, 2).

    Coordinates are in one pixel-like space (y may point up or down). ``candidates[i]`` lists the offsets
    of label i's centre from its anchor in units of its own width and height (default :data:`CENTRED`).
    Dropped labels (and labels whose anchor is NaN) get a row of NaN. Placed boxes never overlap (they keep ``pad`` apart) and lie inside
    ``bounds`` (x0, y0, x1, y1) when given.
    """
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    m = anchors.shape[0]
    out = np.full((m, 4), np.nan)
    placed = np.empty((0, 4))
    for i in range(m):  # a loop over labels (a few hundred at most), not over points
        if np.isnan(anchors[i]).any():  # no anchor (e.g. outside the view): no label
            continue
        w, h = sizes[i]
        for dx, dy in (candidates[i] if candidates is not None else CENTRED):
            cx, cy = anchors[i, 0] + dx * w, anchors[i, 1] + dy * h
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            if bounds is not None and (box[0] < bounds[0] or box[1] < bounds[1] or box[2] > bounds[2]
                                       or box[3] > bounds[3]):
                continue
            if placed.shape[0] and np.any((placed[:, 0] < box[2] + pad) & (box[0] < placed[:, 2] + pad)
                                          & (placed[:, 1] < box[3] + pad) & (box[1] < placed[:, 3] + pad)):
                continue
            out[i] = box
            placed = np.vstack([placed, box])
            break
    return out


def overlaps(boxes: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of boxes (x0, y0, x1, y1) that overlap (NaN rows ignored): for tests and checks."""
    boxes = np.asarray(boxes, dtype=np.float64)
    keep = np.flatnonzero(~np.isnan(boxes).any(axis=1))
    b = boxes[keep]
    hit = ((b[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < b[:, None, 2])
           & (b[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < b[:, None, 3]))
    i, j = np.nonzero(np.triu(hit, k=1))
    return [(int(keep[a]), int(keep[c])) for a, c in zip(i, j, strict=True)]
