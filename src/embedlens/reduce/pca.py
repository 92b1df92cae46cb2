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

**Randomized route** (``solver="randomized"``; what ``"auto"`` takes when the covariance would cost more than
:data:`RANDOMIZED_MIN_FLOPS`, e.g. an 8B model's 128,256 x 4,096 vocabulary, 4.3 TFLOP in float64): a
randomized block Krylov method (Halko, Martinsson & Tropp 2011, section 4.5; Musco & Musco 2015) from a block of
``k +`` :data:`OVERSAMPLE` seeded Gaussian directions, with a Rayleigh-Ritz step on the whole Krylov space
after each pass. Each pass multiplies the newest block by the covariance: one float32 pass over the rows
(products ``B @ V`` and ``B.T @ (B V)`` per row block, summed in float64; the same shift-and-correct centring
as the exact route, so the rows are never copied whole), ``4 n d (k + p)`` flops. After each pass the Ritz
residuals ``R = C U - U diag(theta)`` are known for free and give an **a-posteriori bound** (Davis-Kahan
sin-theta theorem): the largest principal angle between the kept components and the exact ones is at most
``asin(||R_k|| / gap)``, and each kept variance is within ``||r_i||^2 / gap`` of the exact one, where
``gap = theta_k - theta_(k+1) - ||r_(k+1)||`` separates the kept Ritz values from the next eigenvalue. Passes
stop when the angle bound is below :data:`ANGLE_TOL`, when a flat spectrum shows after :data:`STALL_PASSES`
(:data:`STALL_GAP`), or after :data:`MAX_ITER`; ``info["accuracy"]`` states the bounds reached. The bound
assumes the Krylov space has caught the dominant directions (what the random block and its oversampling are
for; Halko et al. section 10) and widens every residual by the float32 products' rounding. On a flat spectrum
(a random matrix) the kept eigenvalues are not separated and the bound says so (angle 90 degrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import EmbedlensError
from .base import _BLOCK_ROWS, Reducer, prepared_rows

_MATMUL_BLOCK_ROWS = 1 << 13  # float64 rows per covariance update (d=576: 36 MiB)
SOLVERS = ("auto", "exact", "randomized")
# n d^2 of the covariance above which "auto" takes the randomized route: Gemma 3's 262,144 x 640 (1.1e11,
# ~10 s exact) stays exact; an 8B model's 128,256 x 4,096 (2.2e12, ~2 minutes exact) goes randomized.
RANDOMIZED_MIN_FLOPS = 5e11
OVERSAMPLE = 10  # directions beyond the kept ones in the randomized block
MAX_ITER = 10  # passes over the rows at most
ANGLE_TOL = 1e-3  # radians: the randomized route stops once its a-posteriori angle bound is below this
STALL_PASSES, STALL_GAP = 4, 1e-2  # ... or, unresolved after this many passes, when the k-th and next variances
# differ by less than 1% (a flat spectrum)
_PASS_BLOCK_BYTES = 1 << 24  # float32 rows per randomized pass block (16 MiB: the second product finds them cached)
PREPARED_MAX_BYTES = 1 << 32  # the randomized route keeps its prepared rows up to this size (an 8B vocabulary: 2 GB)
_ROUNDING = 64 * float(np.finfo(np.float32).eps)  # float32 rounding of C V, relative to the largest eigenvalue


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
        """Project ``x`` (n, d) onto the components: float32 array of shape (n, k), in row blocks.

        Cosine rows are unit length, so ``(D x - mean) W = D (x W) - mean W`` (``D``: the scaling) loses nothing
        to float32 and needs no scaled copy of the rows; euclidean rows are centred first (rows far from the
        origin would lose their spread to cancellation).
        """
        out = np.empty((x.shape[0], self.components.shape[0]), dtype=np.float32)
        w = np.ascontiguousarray(self.components.T, dtype=np.float32)
        mean = self.mean.astype(np.float32)
        shift = (self.mean @ self.components.T).astype(np.float32)
        for start in range(0, x.shape[0], _BLOCK_ROWS):
            stop = min(x.shape[0], start + _BLOCK_ROWS)
            y = out[start:stop]
            if self.metric == "cosine":
                block = np.asarray(x[start:stop], dtype=np.float32)
                np.matmul(block, w, out=y)
                norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
                y *= (1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)[:, None]
                y -= shift
            else:
                block = np.array(x[start:stop], dtype=np.float32)
                block -= mean
                np.matmul(block, w, out=y)
        return out


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise EmbedlensError(f"unknown PCA solver {solver!r}: choose one of {', '.join(SOLVERS)}")
    return solver


def pick_solver(solver: str, n: int, d: int, n_components: int = 2) -> str:
    """The route ``solver`` takes for an (n, d) matrix: ``"exact"`` or ``"randomized"``."""
    if check_solver(solver) != "auto":
        return solver if n > d and n_components + OVERSAMPLE < d else "exact"
    return "randomized" if n > d and n_components + OVERSAMPLE < d and n * d * d >= RANDOMIZED_MIN_FLOPS else "exact"


def fit_pca(x: np.ndarray, n_components: int, *, metric: str = "euclidean", solver: str = "exact",
            seed: int = 0) -> PCAFit:
    """PCA of ``x``, array of shape (n, d), keeping ``n_components`` components.

    ``metric="cosine"`` L2-normalises rows first. Works on a read-only memory map without copying it.
    ``solver``: ``"exact"`` (default), ``"randomized"`` (seeded by ``seed``; its accuracy bound in
    ``info["accuracy"]``) or ``"auto"`` (randomized above :data:`RANDOMIZED_MIN_FLOPS`); a matrix with no
    more rows than columns, or too few columns for the randomized block, is always done exactly.
    """
    n, d = x.shape
    if not 1 <= n_components <= d:
        raise EmbedlensError(
            f"PCA to {n_components} dimensions needs at least that many input dimensions, got {d}"
        )
    route = pick_solver(solver, n, d, n_components)
    if n <= d:
        mean, components, values, total, info = _gram_pca(x, n_components, metric)
    elif route == "randomized":
        mean, components, values, total, info = _randomized_pca(x, n_components, metric, seed)
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


def _inverse_norms(x: np.ndarray, metric: str, block: int) -> np.ndarray:
    """Per-row scale (float32): 1 / norm for cosine (0 for all-zero rows), 1 otherwise."""
    n = x.shape[0]
    if metric != "cosine":
        return np.ones(n, dtype=np.float32)
    norms = np.empty(n)
    for start in range(0, n, block):
        b = np.asarray(x[start : start + block], dtype=np.float32)
        norms[start : start + block] = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64))
    return np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


class _Covariance:
    """``C @ V`` for the covariance ``C`` of the (scaled) rows of ``x``, one float32 pass over the rows each time.

    Rows are scaled (cosine) and shifted by the first block's mean on the fly; the sums of the shifted rows
    give the exact mean afterwards, and ``C V = (S^T S V - n delta delta^T V) / (n - 1)`` with ``S`` the shifted
    rows and ``delta = mean - shift``, as in the exact route.
    """

    def __init__(self, x: np.ndarray, metric: str) -> None:
        self.x = x
        self.n, self.d = x.shape
        self.block = max(256, _PASS_BLOCK_BYTES // (4 * self.d))
        self.metric = metric
        self.scale = np.ones(self.n, dtype=np.float32)  # cosine: filled block by block during the first pass
        first = np.asarray(x[: self.block], dtype=np.float64)
        if metric == "cosine":
            self.scale[: len(first)] = _inverse_norms(first, metric, self.block)
            first *= self.scale[: len(first), None]
        self.shift64 = first.mean(axis=0)
        self.shift = self.shift64.astype(np.float32)
        self.sums: np.ndarray | None = None
        self.sumsq = 0.0
        self.passes = 0
        # The first pass keeps the scaled, shifted rows (float32) when they fit in PREPARED_MAX_BYTES: later passes
        # then read them alone (two products), not the source rows plus a scaled copy per block.
        keep = self.n * self.d * 4 <= PREPARED_MAX_BYTES
        self.prepared = np.empty((self.n, self.d), dtype=np.float32) if keep else None

    def _block(self, start: int, first: bool) -> np.ndarray:
        """Rows ``start:start + block`` scaled and shifted (float32)."""
        if self.prepared is not None and not first:
            return self.prepared[start : start + self.block]
        rows = self.x[start : start + self.block]
        if first and self.metric == "cosine":  # the norms come with the first pass, not a pass of their own
            self.scale[start : start + len(rows)] = _inverse_norms(rows, self.metric, len(rows))
        out = None if self.prepared is None else self.prepared[start : start + len(rows)]
        if rows.dtype == np.float64:  # shift in float64 first: float32 would round rows far from the origin
            b = np.subtract(rows * self.scale[start : start + len(rows), None], self.shift64, out=None)
            if out is None:
                return b.astype(np.float32)
            out[...] = b
            return out
        b = np.multiply(rows, self.scale[start : start + len(rows), None], dtype=np.float32, out=out)
        b -= self.shift
        return b

    def times(self, v: np.ndarray) -> np.ndarray:
        """``C @ v`` for ``v`` of shape (d, l), float64 (float32 products of the scaled, shifted rows, summed in float64).

        The rows are shifted before the products (not ``S V = D (B V) - 1 s^T V``): rows far from the origin
        would otherwise lose the spread to float32 cancellation.
        """
        v32 = np.ascontiguousarray(v, dtype=np.float32)
        out = np.zeros((self.d, v.shape[1]))
        first = self.sums is None
        sums = np.zeros(self.d)
        sumsq = 0.0
        for start in range(0, self.n, self.block):
            b = self._block(start, first)
            out += b.T @ (b @ v32)
            if first:
                sums += b.sum(axis=0, dtype=np.float64)
                sumsq += float(np.einsum("ij,ij->", b, b, dtype=np.float64))
        if first:
            self.sums, self.sumsq = sums, sumsq
        self.passes += 1
        delta = self.sums / self.n
        out -= self.n * np.outer(delta, delta @ v)
        return out / max(self.n - 1, 1)

    @property
    def mean(self) -> np.ndarray:
        return (self.shift64 if self.x.dtype == np.float64 else self.shift.astype(np.float64)) + self.sums / self.n

    @property
    def total(self) -> float:
        delta = self.sums / self.n
        return max(self.sumsq - self.n * float(delta @ delta), 0.0) / max(self.n - 1, 1)


def _ritz_bounds(theta: np.ndarray, resid: np.ndarray, k: int) -> dict:
    """A-posteriori accuracy of the first ``k`` Ritz pairs (``theta`` descending, residual columns ``resid``).

    ``gap = theta_k - (theta_(k+1) + ||r_(k+1)||)``: the next eigenvalue lies within its Ritz vector's residual of
    ``theta_(k+1)``. The float32 products that gave ``C V`` round at ~1e-7 of the largest eigenvalue:
    :data:`_ROUNDING` of it widens every residual and every variance bound, so the bound covers that too.
    """
    slack = _ROUNDING * max(float(theta[0]), 0.0)
    rk = float(np.linalg.norm(resid[:, :k], 2)) + slack
    following = float(theta[k]) + float(np.linalg.norm(resid[:, k])) + slack if theta.size > k else slack
    gap = float(theta[k - 1]) - following
    per = np.linalg.norm(resid[:, :k], axis=0) + slack
    if gap <= 0:
        return {"angle_bound_rad": float(np.pi / 2), "variance_bound": None, "gap": gap, "residual": rk}
    return {"angle_bound_rad": float(np.arcsin(min(1.0, rk / gap))),
            "variance_bound": (per**2 / gap + slack).tolist(), "gap": gap, "residual": rk}


def _orthonormal_block(w: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """``w``'s columns made orthonormal and orthogonal to ``basis`` (block Gram-Schmidt, twice); dependent ones dropped."""
    for _ in range(2):
        if basis is not None:
            w = w - basis @ (basis.T @ w)
        q, r = np.linalg.qr(w)
        keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, float(np.abs(np.diag(r)).max(initial=0.0)))
        w = q[:, keep]
    return w


def _randomized_pca(x: np.ndarray, k: int, metric: str, seed: int) -> tuple:
    n, d = x.shape
    cov = _Covariance(x, metric)
    width = min(d, k + OVERSAMPLE)
    block = _orthonormal_block(np.random.default_rng(seed).standard_normal((d, width)), None)
    basis = np.zeros((d, 0))
    images = np.zeros((d, 0))  # C @ basis, one block per pass
    for it in range(MAX_ITER):
        basis = np.hstack([basis, block])
        images = np.hstack([images, cov.times(block)])
        t = basis.T @ images
        theta, s = np.linalg.eigh((t + t.T) / 2)  # Rayleigh-Ritz on the Krylov space, ascending
        theta, s = theta[::-1], s[:, ::-1]
        u, cu = basis @ s, images @ s
        resid = cu - u * theta
        bounds = _ritz_bounds(theta, resid, k)
        if bounds["angle_bound_rad"] <= ANGLE_TOL or basis.shape[1] + width > d:
            break
        # Nearly equal variances after several passes (a flat spectrum: a random matrix) will not separate within
        # the passes left; the map would not change.
        if it + 1 >= STALL_PASSES and bounds["variance_bound"] is None and theta[k - 1] - theta[k] < STALL_GAP * theta[k - 1]:
            break
        block = _orthonormal_block(images[:, -block.shape[1]:], basis)  # the next Krylov block: C (last block)
        if block.shape[1] == 0:
            break
    total = cov.total
    values = np.clip(theta[:k], 0.0, None)
    var = bounds["variance_bound"]
    accuracy = {
        "bound": "a-posteriori (Ritz residuals; Davis-Kahan sin-theta with the gap to the next Ritz value and its residual)",
        "max_principal_angle_deg": round(float(np.degrees(bounds["angle_bound_rad"])), 6),
        "explained_variance_ratio_error": None if var is None or total <= 0 else float(max(var) / total),
        "explained_variance_rel_error": None if var is None else float(max(b / max(t, 1e-300)
                                                                            for b, t in zip(var, values, strict=True))),
        "resolved": var is not None,
        "passes": cov.passes,
        "block": int(width),
    }
    info = {"solver": f"randomized block Krylov (block {width}, {cov.passes} float32 passes, seed {seed})",
            "accuracy": accuracy}
    return cov.mean, u[:, :k].T.copy(), values, float(total), info


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
    """PCA to 2 or 3 dimensions: exact via the d x d covariance (float64, ``eigh``), or randomized for large inputs.

    Args:
        n_components: 2 or 3.
        metric: ``"cosine"`` L2-normalises rows before centring (directions, not lengths, are
            mapped); ``"euclidean"`` uses raw rows.
        seed: the randomized route's starting block; the exact route does not use it.
        solver: ``"auto"`` (randomized block Krylov when the covariance would cost more than
            :data:`RANDOMIZED_MIN_FLOPS`, else exact), ``"exact"`` or ``"randomized"``. The randomized
            route states its accuracy bound in ``params_["accuracy"]`` and a note.

    Fitted attributes: ``embedding_`` (n, k) float32, ``components_`` (k, d), ``mean_`` (d,),
    ``explained_variance_`` (k,), ``explained_variance_ratio_`` (k,), ``pca_`` (the :class:`PCAFit`), ``params_``,
    ``notes_``, ``timings_``.
    """

    method = "pca"

    def __init__(self, *, n_components: int = 2, metric: str = "cosine", seed: int = 0, solver: str = "auto") -> None:
        super().__init__(n_components=n_components, metric=metric, seed=seed)
        self.solver = solver

    def _check_params(self) -> None:
        super()._check_params()
        check_solver(self.solver)

    def _fit(self, X: np.ndarray, neighbors: object = None) -> None:
        with self._timed("fit"):
            fit = fit_pca(X, self.n_components, metric=self.metric, solver=self.solver, seed=int(self.seed))
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
        accuracy = fit.info.get("accuracy")
        if accuracy is not None:
            self.notes_.append(_accuracy_note(accuracy))
        self.params_ = {
            "method": "pca",
            "n_components": int(self.n_components),
            "metric": self.metric,
            "seed": int(self.seed),
            "pre_pca": None,
            "pca_solver": self.solver,
            "route": "randomized" if accuracy is not None else "exact",
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


def _accuracy_note(accuracy: dict) -> str:
    """One line for the manifest's notes: the randomized route and the accuracy it states."""
    head = (f"randomized PCA ({accuracy['passes']} passes over the rows; solver='exact' for the exact "
            "route): ")
    if not accuracy["resolved"]:
        return head + ("the kept components are not separated from the next ones (a flat spectrum): other "
                       "directions of nearly the same variance may replace them (principal-angle bound 90 degrees)")
    return head + (f"largest principal angle to the exact components <= {accuracy['max_principal_angle_deg']:.2g} "
                   f"degrees, explained variance within {accuracy['explained_variance_rel_error']:.1e} (relative), "
                   "by an a-posteriori bound")


def check_pre_pca(pre_pca: int | None) -> int | None:
    """``None``/0 (no PCA step) or an integer of at least 2."""
    if pre_pca is None or (not isinstance(pre_pca, bool) and pre_pca == 0):
        return None
    if isinstance(pre_pca, bool) or not isinstance(pre_pca, int | np.integer) or pre_pca < 2:
        raise EmbedlensError(
            f"pre_pca must be an integer of at least 2, or None to skip the PCA step; got {pre_pca!r}"
        )
    return int(pre_pca)


def pre_pca_applies(d: int, pre_pca: int | None) -> bool:
    """Whether :func:`pre_reduce` runs a PCA on ``d``-dimensional rows: only when asked for fewer dimensions."""
    return pre_pca is not None and d > pre_pca


def pre_reduce(reducer: Reducer, X: np.ndarray, pre_pca: int | None) -> tuple[np.ndarray, int | None]:
    """Rows prepared for ``reducer.metric``, then (only when asked) exact PCA to ``pre_pca`` dimensions when ``X``
    has more. Returns the float32 matrix and the dimensions used (or None).

    For ``"cosine"`` rows are L2-normalised before the PCA, so euclidean distances afterwards
    approximate ``sqrt(2 - 2 cos)`` of the original rows (monotone in cosine).
    """
    d = X.shape[1]
    with reducer._timed("pre_pca"):
        if not pre_pca_applies(d, pre_pca):
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
