"""The 2D grid and the five ways a grid point (x, y) becomes a residual vector v.

Every method is affine, ``v = origin + x * axis_x + y * axis_y``, so a batch of grid vectors is built on
the fly from three (d_model,) vectors: memory grows with the batch, never with the grid.

Methods (``d`` = d_model):
  * ``direct``: ``v = (x, y, 0, ..., 0)``.
  * ``replicated``: ``v = (x, y, x, y, ...)`` (x at even, y at odd dimensions; the last one is x when d is odd).
  * ``random_projection``: ``v = R (x, y)`` with ``R`` a d x 2 Gaussian matrix whose two columns are
    normalised to unit length (as the original module does). Each axis is a random unit direction, so
    ``||v||^2 = x^2 + y^2 + 2xy cos(r1, r2)`` with ``cos ~ N(0, 1/d)``: ``||v|| ~ ||(x, y)||``. ``R`` is
    drawn with ``torch.Generator().manual_seed(seed)``; seed 42 reproduces the original module's matrix.
  * ``pca``: ``v = mean + x * s1 * pc1 + y * s2 * pc2`` over the real (non-special) token embeddings, with
    ``s`` the standard deviations along the first two principal directions (spacing is in standard
    deviations). The principal directions come from the d x d covariance; each is signed so that its
    largest-magnitude component is positive.
  * ``tokens``: the plane through three tokens' embeddings: ``v = A + x (B - A) + y (C - A)``, so (0, 0) is
    A, (1, 0) is B and (0, 1) is C.

``pca`` and ``tokens`` points live in the token-embedding space. They are mapped into the residual stream
exactly as the model maps a token embedding before block 0 (Gemma: times sqrt(d); GPT-2: plus wpe[0];
Llama/Qwen2: unchanged) and the mapped vector is fed at whichever block L is chosen, so at L = 0 the grid
point (0, 0) of ``tokens`` is precisely the model's input for token A alone. The three module methods
(direct, replicated, random_projection) give residual vectors directly and are fed unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EmbedlensError
from ..method_names import GRID_PLANES

ALIASES = {"pca_basis": "pca"}  # the original module's name for the PCA idea


def check_method(method: str) -> str:
    m = ALIASES.get(method, method)
    if m not in GRID_PLANES:
        raise EmbedlensError(f"unknown embedding method '{method}' (choose one of: {', '.join(GRID_PLANES)})")
    return m


def check_grid(grid_size: Any, spacing: Any) -> tuple[int, float]:
    if isinstance(grid_size, bool) or not isinstance(grid_size, int | np.integer) or grid_size < 1:
        raise EmbedlensError(f"grid size must be an integer >= 1, got {grid_size!r}")
    try:
        spacing = float(spacing)
    except (TypeError, ValueError):
        raise EmbedlensError(f"spacing must be a number > 0, got {spacing!r}") from None
    if not np.isfinite(spacing) or spacing <= 0:
        raise EmbedlensError(f"spacing must be a number > 0, got {spacing}")
    return int(grid_size), spacing


def create_2d_grid(grid_size: int = 100, spacing: float = 0.5, center: tuple[float, float] = (0.0, 0.0)
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A regular grid: ``(x_coords, y_coords)``, each of shape (grid_size, grid_size), as ``np.meshgrid``.

    Points are ``spacing`` apart and centred on ``center``; row ``i`` has ``y = y_1d[i]`` (increasing),
    column ``j`` has ``x = x_1d[j]``. Flattened row-major, cell ``k = i * grid_size + j``.
    """
    grid_size, spacing = check_grid(grid_size, spacing)
    cx, cy = (float(c) for c in center)
    if not (np.isfinite(cx) and np.isfinite(cy)):
        raise EmbedlensError(f"the grid's `center` must be two finite numbers, got ({cx}, {cy})")
    half = (grid_size - 1) * spacing / 2
    x_1d = np.linspace(cx - half, cx + half, grid_size)
    y_1d = np.linspace(cy - half, cy + half, grid_size)
    return np.meshgrid(x_1d, y_1d)


@dataclass
class GridEmbedding:
    """The affine map of one method: ``v = origin + x * axis_x + y * axis_y`` (float32 vectors of shape (d,))."""

    method: str
    origin: np.ndarray
    axis_x: np.ndarray
    axis_y: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.origin.shape[0])

    def vectors(self, x: Any, y: Any, *, dtype: Any = None) -> Any:
        """Residual vectors of shape (n, d) (a torch tensor) for coordinate arrays of shape (n,)."""
        import torch

        with np.errstate(over="ignore"):  # a coordinate past float32 becomes inf: refused where the grid is checked
            xt = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1))[:, None]
            yt = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1))[:, None]
        v = torch.from_numpy(self.origin)[None, :] + xt * torch.from_numpy(self.axis_x)[None, :]
        v = v + yt * torch.from_numpy(self.axis_y)[None, :]
        return v if dtype is None else v.to(dtype)


def _basis(d: int, dims: tuple[int, ...]) -> np.ndarray:
    v = np.zeros(d, dtype=np.float32)
    v[list(dims)] = 1.0
    return v


def direct(d: int) -> GridEmbedding:
    if d < 2:
        raise EmbedlensError(f"d_model {d} is too small for a 2D grid")
    return GridEmbedding("direct", np.zeros(d, np.float32), _basis(d, (0,)), _basis(d, (1,)))


def replicated(d: int) -> GridEmbedding:
    return GridEmbedding("replicated", np.zeros(d, np.float32), _basis(d, tuple(range(0, d, 2))),
                         _basis(d, tuple(range(1, d, 2))))


def random_projection(d: int, seed: int) -> GridEmbedding:
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    r = torch.randn(2, d, generator=gen, dtype=torch.float32)
    r = torch.nn.functional.normalize(r, dim=1).numpy()
    return GridEmbedding("random_projection", np.zeros(d, np.float32), r[0].copy(), r[1].copy(),
                         {"seed": int(seed), "projection": "d x 2 Gaussian, columns normalised to unit length",
                          "cos_axes": float(r[0] @ r[1])})


def principal_axes(matrix: np.ndarray, rows: np.ndarray | None = None, chunk: int = 16384
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (d,), the first two principal directions (2, d) and their standard deviations (2,).

    The covariance ``C = X_c^T X_c / (n - 1)`` is accumulated in float64 over chunks of rows (memory
    stays at chunk x d), then ``eigh(C)``.
    """
    n_all, d = matrix.shape
    rows = np.arange(n_all) if rows is None else np.asarray(rows)
    n = rows.size
    if n < 3:
        raise EmbedlensError("pca needs at least 3 real token embeddings")
    total = np.zeros(d, dtype=np.float64)
    for s in range(0, n, chunk):
        total += np.asarray(matrix[rows[s:s + chunk]], dtype=np.float64).sum(axis=0)
    mean = total / n
    cov = np.zeros((d, d), dtype=np.float64)
    mean32 = mean.astype(np.float32)
    for s in range(0, n, chunk):
        xc = np.asarray(matrix[rows[s:s + chunk]], dtype=np.float32) - mean32
        cov += (xc.T @ xc).astype(np.float64)
    cov /= n - 1
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:2]
    pcs = evecs[:, order].T
    signs = np.sign(pcs[np.arange(2), np.abs(pcs).argmax(axis=1)])
    pcs = pcs * signs[:, None]
    stds = np.sqrt(np.maximum(evals[order], 0.0))
    return mean, pcs, stds


def pca(matrix: np.ndarray, special: np.ndarray | None = None) -> GridEmbedding:
    rows = np.flatnonzero(~special) if special is not None and special.any() else None
    mean, pcs, stds = principal_axes(matrix, rows)
    return GridEmbedding(
        "pca", mean.astype(np.float32), (stds[0] * pcs[0]).astype(np.float32), (stds[1] * pcs[1]).astype(np.float32),
        {"std": [float(stds[0]), float(stds[1])], "n_tokens": int(matrix.shape[0] if rows is None else rows.size)},
    )


def token_plane(a: np.ndarray, b: np.ndarray, c: np.ndarray, ids: list[int], labels: list[str]) -> GridEmbedding:
    a, b, c = (np.asarray(v, dtype=np.float32) for v in (a, b, c))
    return GridEmbedding("tokens", a.copy(), b - a, c - a, {"plane_token_ids": list(ids), "plane_tokens": list(labels)})


def to_input_space(emb: GridEmbedding, scale: float, position0: np.ndarray | None) -> GridEmbedding:
    """Fold the model's input mapping ``e -> scale * e (+ wpe[0])`` into the affine map (exact at x = y = 0)."""
    origin = emb.origin * np.float32(scale) if scale != 1.0 else emb.origin.copy()
    if position0 is not None:
        origin = origin + np.asarray(position0, dtype=np.float32)
    ax = emb.axis_x * np.float32(scale) if scale != 1.0 else emb.axis_x
    ay = emb.axis_y * np.float32(scale) if scale != 1.0 else emb.axis_y
    info = {**emb.info, "input_mapping": {"scale": scale, "plus_position0": position0 is not None}}
    return GridEmbedding(emb.method, origin.astype(np.float32), ax.astype(np.float32), ay.astype(np.float32), info)
