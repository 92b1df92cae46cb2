"""Exact PCA through the covariance matrix.

For a vocabulary matrix (n_tokens ≫ d_model) the d x d covariance is small: accumulating it over
row blocks in float64 and diagonalising it with ``eigh`` is exact to float64 rounding and much faster than an SVD of the
n x d matrix. One pass over the data suffices: rows are shifted by the first block's mean and the
shift is corrected exactly afterwards (``sum (x-s)(x-s)^T = sum (x-mu)(x-mu)^T + n (mu-s)(mu-s)^T``),
which avoids the cancellation of the naive ``X^T X - n mu mu^T``. A read-only memory map is
streamed, never copied whole. Projection onto the few components is a float32 product of the
centred rows (its rounding, ~1e-7 relative, is far below anything a map can show).

With fewer rows than columns (the hidden states of a few sentences of an 8B model, 11 x 4096) the
n x n Gram matrix of the centred rows is diagonalised instead of the d x d covariance: the same
non-zero eigenpairs, at a fraction of the cost. ``params_["solver"]`` says which route ran.

Eigenvectors are defined only up to sign, so each component is flipped to make its largest-magnitude
loading positive: the same input always gives the same coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import EmbedlensError
from .base import _BLOCK_ROWS, Reducer

_MATMUL_BLOCK_ROWS = 1 << 13  # float64 rows per covariance update (d=576: 36 MiB)


def _block(x: np.ndarray, start: int, stop: int, metric: str) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` as float64, L2-normalised for ``"cosine"`` (zero rows stay zero)."""
    block = np.array(x[start:stop], dtype=np.float64)  # always a copy: updated in place below
    if metric == "cosine":
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        block /= np.where(norms > 0, norms, 1.0)[:, None]
    return block


@dataclass(frozen=True)
class PCAFit:
    """A fitted PCA: ``components`` (k, d) rows sign-fixed, ``mean`` (d,), ``variances`` (k,), ``total_variance``."""

    components: np.ndarray
    mean: np.ndarray
    variances: np.ndarray
    total_variance: float
    metric: str
    info: dict = field(default_factory=dict)  # which exact route was taken (solver, passes, residual)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project ``x`` (n, d) onto the components: float32 array of shape (n, k), in row blocks."""
        out = np.empty((x.shape[0], self.components.shape[0]), dtype=np.float32)
        w = np.ascontiguousarray(self.components.T, dtype=np.float32)
        mean = self.mean.astype(np.float32)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            stop = min(x.shape[0], start + _BLOCK_ROWS)
            block = np.array(x[start:stop], dtype=np.float32)
            if self.metric == "cosine":
                norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
                block *= (1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)[:, None]
            block -= mean
            np.matmul(block, w, out=out[start:stop])
        return out


def fit_pca(x: np.ndarray, n_components: int, *, metric: str = "euclidean") -> PCAFit:
    """Exact PCA of ``x``, array of shape (n, d), keeping ``n_components`` components.

    ``metric="cosine"`` L2-normalises rows first. Works on a read-only memory map without copying it.
    """
    n, d = x.shape
    if not 1 <= n_components <= d:
        raise EmbedlensError(
            f"PCA to {n_components} dimensions needs at least that many input dimensions, got {d}"
        )
    if n <= d:
        mean, components, values, total, info = _gram_pca(x, n_components, metric)
    else:
        mean, components, values, total, info = _covariance_pca(x, n_components, metric)
    pivot = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(n_components), pivot])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return PCAFit(components, mean, values, total, metric, info)


def _covariance_pca(x: np.ndarray, k: int, metric: str) -> tuple:
    n, d = x.shape
    shift: np.ndarray | None = None
    sums = np.zeros(d, dtype=np.float64)
    gram = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, _MATMUL_BLOCK_ROWS):
        block = _block(x, start, min(n, start + _MATMUL_BLOCK_ROWS), metric)
        if shift is None:
            shift = block.mean(axis=0)
        block -= shift
        sums += block.sum(axis=0)
        gram += block.T @ block  # numpy's dgemm beats OpenBLAS dsyrk here despite twice the flops
    assert shift is not None
    delta = sums / n  # mean - shift
    mean = shift + delta
    cov = gram - n * np.outer(delta, delta)
    cov = (cov + cov.T) / 2  # exactly symmetric for eigh
    cov /= max(n - 1, 1)
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.arange(d - 1, d - 1 - k, -1)
    values = np.clip(values[order], 0.0, None)
    components = vectors[:, order].T.copy()  # (k, d)
    return mean, components, values, float(np.trace(cov)), {"solver": "covariance eigh, float64"}


def _gram_pca(x: np.ndarray, k: int, metric: str) -> tuple:
    n, d = x.shape
    rows = _block(x, 0, n, metric)
    mean = rows.mean(axis=0)
    rows -= mean
    values, u = np.linalg.eigh(rows @ rows.T)  # ascending; C = X^T X / (n-1) shares the non-zero eigenvalues
    order = np.arange(n - 1, n - 1 - min(k, n), -1)
    lam = np.clip(values[order], 0.0, None)
    comps = (rows.T @ u[:, order]) / np.where(lam > 0, np.sqrt(lam), 1.0)  # unit eigenvectors of X^T X
    components = np.zeros((k, d))
    components[: comps.shape[1]] = comps.T
    variances = np.zeros(k)
    variances[: lam.size] = lam / max(n - 1, 1)
    total = float(np.einsum("ij,ij->", rows, rows)) / max(n - 1, 1)
    return mean, components, variances, total, {"solver": "Gram matrix eigh (fewer rows than columns), float64"}



class PCAReducer(Reducer):
    """Exact PCA to 2 or 3 dimensions via the d x d covariance (float64, ``eigh``).

    Args:
        n_components: 2 or 3.
        metric: ``"cosine"`` L2-normalises rows before centring (directions, not lengths, are
            mapped); ``"euclidean"`` uses raw rows.
        seed: recorded for the manifest; PCA is deterministic and does not use it.

    Fitted attributes: ``embedding_`` (n, k) float32, ``components_`` (k, d), ``mean_`` (d,),
    ``explained_variance_`` (k,), ``explained_variance_ratio_`` (k,), ``pca_`` (the :class:`PCAFit`), ``params_``,
    ``notes_``, ``timings_``.
    """

    method = "pca"

    def __init__(self, *, n_components: int = 2, metric: str = "cosine", seed: int = 0) -> None:
        super().__init__(n_components=n_components, metric=metric, seed=seed)

    def _fit(self, X: np.ndarray, neighbors: object = None) -> None:
        with self._timed("fit"):
            fit = fit_pca(X, self.n_components, metric=self.metric)
        with self._timed("project"):
            self.embedding_ = fit.transform(X)
        self.pca_ = fit  # the whole fit, public: it places new vectors on this map
        self.components_ = fit.components
        self.mean_ = fit.mean
        self.explained_variance_ = fit.variances
        total = fit.total_variance
        self.explained_variance_ratio_ = fit.variances / total if total > 0 else np.zeros_like(fit.variances)
        if self.metric == "cosine":
            self.notes_.append("metric cosine: rows L2-normalised before PCA")
        self.params_ = {
            "method": "pca",
            "n_components": int(self.n_components),
            "metric": self.metric,
            "seed": int(self.seed),
            "pre_pca": None,
            **fit.info,
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "explained_variance_ratio": [float(v) for v in self.explained_variance_ratio_],
            "library": "numpy",
            "library_version": np.__version__,
        }

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project new rows (m, d) with the fitted components: float32 array of shape (m, n_components)."""
        if not hasattr(self, "pca_"):
            raise EmbedlensError("this PCAReducer is not fitted yet: call fit(X) first")
        X = np.atleast_2d(X)
        if X.shape[1] != self.components_.shape[1]:
            raise EmbedlensError(
                f"X has {X.shape[1]} columns, the PCA was fitted on {self.components_.shape[1]}"
            )
        return self.pca_.transform(X)


def check_pre_pca(pre_pca: int | None) -> int | None:
    """``None``/0 (no PCA step) or an integer of at least 2."""
    if pre_pca is None or (not isinstance(pre_pca, bool) and pre_pca == 0):
        return None
    if isinstance(pre_pca, bool) or not isinstance(pre_pca, int | np.integer) or pre_pca < 2:
        raise EmbedlensError(
            f"pre_pca must be an integer of at least 2, or None to skip the PCA step; got {pre_pca!r}"
        )
    return int(pre_pca)


def pre_reduce(reducer: Reducer, X: np.ndarray, pre_pca: int | None) -> tuple[np.ndarray, int | None]:
    """Rows prepared for ``reducer.metric``, then (only when asked) exact PCA to ``pre_pca`` dimensions when ``X``
    has more. Returns the float32 matrix and the dimensions used (or None).

    For ``"cosine"`` rows are L2-normalised before the PCA, so euclidean distances afterwards
    approximate ``sqrt(2 - 2 cos)`` of the original rows (monotone in cosine).
    """
    from .base import prepared_rows

    d = X.shape[1]
    with reducer._timed("pre_pca"):
        if pre_pca is None or d <= pre_pca:
            return prepared_rows(X, reducer.metric), None
        fit = fit_pca(X, pre_pca, metric=reducer.metric)
        Z = fit.transform(X)
    kept = float(fit.variances.sum() / fit.total_variance) if fit.total_variance > 0 else 1.0
    prefix = "rows L2-normalised, then " if reducer.metric == "cosine" else ""
    reducer.notes_.append(
        f"{prefix}exact PCA from {d} to {pre_pca} dims before {reducer.method} "
        f"(keeps {kept:.1%} of the variance; pre_pca={pre_pca})"
    )
    reducer.params_["pre_pca_variance_kept"] = kept
    return Z, pre_pca
