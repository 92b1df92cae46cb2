"""The figures that say how alike two spaces are, on their shared tokens, each beside its control.

Rows are L2-normalised first (cosine, as everywhere in embedlens). Then:

* **linear CKA** of the centred rows X (n, d_a) and Y (n, d_b): ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``;
  1 when one is a rotation (and scaling) of the other.
* **k-NN overlap**: the mean over tokens of the Jaccard index of a token's k nearest (cosine, among the
  shared tokens) in A and in B.
* **orthogonal Procrustes**: X and Y centred, each scaled to unit Frobenius norm, the narrower zero-padded to
  the wider dimension (:func:`procrustes_rotation` does this without forming the padded matrices); R = U V^T
  from the SVD of X^T Y minimises ``||XR - Y||_F^2`` (the residual, 0 to 4;
  ``2 - 2 * sum of singular values``), and translation accuracy@1 / @10 is the share of tokens whose
  counterpart is among the 1 / 10 rows of Y nearest (cosine) to their aligned row.
* **control**: the same figures with the correspondence shuffled by seeded random permutations (mean and
  standard deviation over ``runs``), i.e. what any two spaces of that size and geometry give. One product
  X^T Y_perm per run serves CKA and Procrustes; the k-NN lists are permuted, not searched again; the
  accuracy of a run is measured on a seeded sample of rows (a search of every row per run would cost as
  much as the whole comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..neighbors.index import ExactIndex, normalized_rows

FIGURES = ("cka", "knn_overlap", "procrustes_residual", "acc1", "acc10")


def centred_unit(vectors: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """Rows L2-normalised, then centred, then scaled to unit Frobenius norm: float32 (n, d)."""
    x = normalized_rows(vectors, norms)
    x -= x.mean(axis=0, dtype=np.float64).astype(np.float32)
    total = float(np.linalg.norm(x))
    if total > 0:
        x /= np.float32(total)
    return x


def gram_norms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``||X^T X||_F`` and ``||Y^T Y||_F``: the denominator of linear CKA, the same under any pairing."""
    return float(np.linalg.norm((x.T @ x).astype(np.float64))), float(np.linalg.norm((y.T @ y).astype(np.float64)))


def linear_cka(x: np.ndarray, y: np.ndarray, *, cross: np.ndarray | None = None,
               norms: tuple[float, float] | None = None) -> float:
    """Linear CKA of centred rows ``x`` (n, d_a) and ``y`` (n, d_b); ``cross`` (``x.T @ y``) and ``norms``
    (:func:`gram_norms`) if already known."""
    m = (x.T @ y if cross is None else cross).astype(np.float64)
    xx, yy = gram_norms(x, y) if norms is None else norms
    return float((m * m).sum() / (xx * yy)) if xx > 0 and yy > 0 else 0.0


def procrustes_rotation(cross: np.ndarray) -> tuple[np.ndarray, float]:
    """The block W (d_a, d_b) of the orthogonal R minimising ``||X R - Y||_F`` that acts on the real columns,
    from ``cross = X^T Y`` (d_a, d_b), and the sum of the singular values.

    Zero-padding the narrower side to D = max(d_a, d_b) and taking R = U V^T of the padded product gives
    ``(X R)[:, :d_b] = X W`` with W = U V^T of the thin SVD (the padded singular vectors with singular value 0
    touch only padded coordinates), and ``||X R - Y||_F^2 = ||X||^2 + ||Y||^2 - 2 * sum of singular values``;
    so the padded (D, D) matrix is never formed.
    """
    m = np.asarray(cross, dtype=np.float64)
    # Unit-norm X and Y make entries of 1e-5 and below, where LAPACK's SVD takes 3-5 times as long (measured on
    # SmolLM2 x Gemma: 2-4 s against 0.5-1 s CPU); the rotation does not depend on the scale.
    scale = float(np.abs(m).max(initial=0.0)) or 1.0
    m = m / scale
    # U V^T = (M M^T)^(-1/2) M (or M (M^T M)^(-1/2) when d_a > d_b): one symmetric eigensolve of the narrower
    # Gram matrix, 4-5 times faster than the SVD; a (nearly) singular M goes to the SVD, which pairs its null
    # directions soundly.
    wide = m.shape[0] <= m.shape[1]
    values, vectors = np.linalg.eigh(m @ m.T if wide else m.T @ m)
    singular = np.sqrt(np.clip(values, 0.0, None))
    if singular.size and singular.min() > 1e-6 * singular.max():
        half = (vectors / singular) @ vectors.T
        return (half @ m if wide else m @ half).astype(np.float32), float(singular.sum()) * scale
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return (u @ vt).astype(np.float32), float(s.sum()) * scale


def jaccard_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the Jaccard index of the sets ``a[i]`` and ``b[i]`` (int arrays (n, k), no repeats within a row)."""
    inter = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return (inter / (a.shape[1] + b.shape[1] - inter)).astype(np.float32)


def gained_lost(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours in B that are not in A (gained) and in A that are not in B (lost), as (n, k) arrays padded with -1."""
    gained = np.where((b[:, :, None] == a[:, None, :]).any(axis=2), -1, b)
    lost = np.where((a[:, :, None] == b[:, None, :]).any(axis=2), -1, a)
    # the kept ones first, in rank order (a stable sort of "is padding")
    return (np.take_along_axis(gained, np.argsort(gained < 0, axis=1, kind="stable"), axis=1),
            np.take_along_axis(lost, np.argsort(lost < 0, axis=1, kind="stable"), axis=1))


@dataclass
class Alignment:
    """Procrustes of centred, unit-Frobenius X onto Y: the rotation block, the residual, per-token displacement."""

    rotation: np.ndarray  # (d_a, d_b): X @ rotation is the aligned X in Y's columns
    residual: float
    displacement: np.ndarray  # (n,) ||x_i R - y_i|| * sqrt(n): 1 is the RMS length of a row
    acc1: float
    acc10: float


def _hits(index: ExactIndex, queries: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Shares of queries whose target row is the nearest / among the 10 nearest rows of the index."""
    k = min(10, index.n)
    nb = index.query(queries, k).indices
    found = nb == targets[:, None]
    return float(found[:, 0].mean()), float(found.any(axis=1).mean())


def align(x: np.ndarray, y: np.ndarray, index: ExactIndex, *, cross: np.ndarray | None = None,
          acc_rows: np.ndarray | None = None) -> Alignment:
    """Procrustes of ``x`` onto ``y`` (both from :func:`centred_unit`); ``index``: an exact index over ``y``;
    ``cross``: ``x.T @ y`` if already known; ``acc_rows``: the rows whose translation accuracy is measured
    (default every row: each one a search of all of ``y``)."""
    n = y.shape[0]
    rotation, _ = procrustes_rotation(x.T @ y if cross is None else cross)
    head = x @ rotation
    # ||x_i R - y_i||^2 = ||x_i||^2 + ||y_i||^2 - 2 (x_i R) . y_i, since R keeps lengths (padding included)
    sq = np.maximum(np.einsum("ij,ij->i", x, x) + np.einsum("ij,ij->i", y, y) - 2 * np.einsum("ij,ij->i", head, y), 0)
    rows = np.arange(n) if acc_rows is None else np.asarray(acc_rows, dtype=np.int64)
    acc1, acc10 = _hits(index, head[rows], rows)
    return Alignment(rotation, float(sq.sum(dtype=np.float64)), np.sqrt(sq * n).astype(np.float32), acc1, acc10)


def permutation_control(x: np.ndarray, y: np.ndarray, nb_a: np.ndarray, nb_b: np.ndarray, index: ExactIndex, *,
                        runs: int, seed: int, sample: int, norms: tuple[float, float] | None = None,
                        ) -> dict[str, dict[str, float]]:
    """Every figure under ``runs`` seeded random permutations of the correspondence: ``{name: {mean, std}}``.

    Args:
        x, y: centred unit-Frobenius rows (n, d_a), (n, d_b), row i of ``x`` paired with row i of ``y``.
        nb_a, nb_b: the k nearest (shared-token positions) of each token in A and in B, (n, k).
        index: an exact index over ``y``.
        runs: permutations.
        seed: seed of the permutations and of the accuracy sample.
        sample: rows on which each run's translation accuracy is measured.
        norms: :func:`gram_norms` of ``x`` and ``y`` if already known.
    """
    n = y.shape[0]
    rng = np.random.default_rng(seed)
    norms = gram_norms(x, y) if norms is None else norms
    values: dict[str, list[float]] = {name: [] for name in FIGURES}
    for _ in range(runs):
        perm = rng.permutation(n)
        inverse = np.argsort(perm)
        cross = (x.T @ y[perm]).astype(np.float64)
        values["cka"].append(linear_cka(x, y, cross=cross, norms=norms))
        rotation, singular = procrustes_rotation(cross)
        values["procrustes_residual"].append(max(0.0, 2.0 - 2.0 * singular))
        values["knn_overlap"].append(float(jaccard_rows(nb_a, inverse[nb_b[perm]]).mean()))
        rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
        acc1, acc10 = _hits(index, x[rows] @ rotation, perm[rows])
        values["acc1"].append(acc1)
        values["acc10"].append(acc10)
    return {name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in values.items()}
