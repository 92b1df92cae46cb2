"""t-SNE through openTSNE (FFT-accelerated gradients), seeded.

The pipeline is openTSNE's standard one, run stage by stage so each can be timed: the k-nearest-
neighbour graph of the FULL space with the map's metric (:func:`~embedlens.reduce.knn.map_graph`: given,
cached, an exhaustive search up to 100,000 points, NN-descent above, which the params name as
``knn_route``; cosine distances ``1 - cos`` as openTSNE's own cosine search gives them), perplexity-based
affinities (perplexity 30, or 10 from ``LARGE_FROM`` points: :func:`default_perplexity`), a PCA
initialisation (exact PCA, rescaled as openTSNE does), 250 early-exaggeration iterations, then 500 ordinary
ones. openTSNE's FFT gradients exist for 1D and 2D only, so 3D maps use Barnes-Hut. ``pre_pca`` (off by default) finds the graph after
an exact PCA instead, faster and less faithful; a note says how many true neighbours that cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from ..progress import check_stop, stoppable
from ..versions import package_version
from .base import LARGE_FROM, Reducer
from .knn import check_nndescent_from, check_route, graph_and_rows, resolve_n_jobs
from .pca import check_pre_pca, fit_pca

DEFAULT_PERPLEXITY = 30.0
# From LARGE_FROM points. On Gemma 3's 262,144 tokens (NN-descent graphs, 250 + 500 iterations) perplexity 10 on a
# k=30 graph kept map recall@10 0.309 against 0.284 at 30 on a k=90 graph, whose NN-descent took 1.8x as long and
# whose optimisation 2.3x the CPU time (docs/faithfulness.md, "Gemma 3, t-SNE").
LARGE_PERPLEXITY = 10.0
EARLY_EXAGGERATION_ITER = 250
N_ITER = 500


def default_perplexity(n: int) -> float:
    """The perplexity a t-SNE of ``n`` points takes when none is asked for."""
    return LARGE_PERPLEXITY if n >= LARGE_FROM else DEFAULT_PERPLEXITY


def clamp_perplexity(perplexity: float | None, n: int) -> tuple[float, str | None]:
    """The perplexity to use for ``n`` points (None: :func:`default_perplexity`), and a note when it had to
    be lowered.

    openTSNE needs ``3 * perplexity`` neighbours per point, so at most (n - 1) / 3.
    """
    requested = default_perplexity(n) if perplexity is None else perplexity
    if isinstance(requested, bool) or not isinstance(requested, int | float | np.number) or not requested > 0:
        raise EmbedlensError(f"perplexity must be a positive number, got {perplexity!r}")
    requested = float(requested)
    if not np.isfinite(requested):
        raise EmbedlensError(f"perplexity must be a positive number, got {perplexity!r}")
    limit = (n - 1) / 3
    if 3 * requested > n - 1:
        return (
            limit,
            f"perplexity {requested:g} clamped to {limit:.4g} because only {n} points (needs 3 x perplexity < n)",
        )
    return requested, None


def check_iterations(value: int, name: str = "n_iter") -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise EmbedlensError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


# Below this many points Barnes-Hut beats FFT gradients (FFT pays for a fixed interpolation grid).
BH_BELOW = 10_000


def _stop_check(iteration: int, error: float, embedding: Any) -> None:
    """openTSNE's callback signature around :func:`~embedlens.progress.check_stop`."""
    check_stop()


class TSNEReducer(Reducer):
    """t-SNE to 2 or 3 dimensions with openTSNE.

    Args:
        n_components: 2 (FFT gradients) or 3 (Barnes-Hut gradients).
        metric: ``"cosine"`` (rows L2-normalised first, then euclidean) or ``"euclidean"``.
        seed: seeds the neighbour index, the initialisation and its jitter.
        perplexity: None (default): 30, or ``LARGE_PERPLEXITY`` (10) from ``LARGE_FROM`` points; clamped to
            (n - 1) / 3 with a note when there are too few points.
        pre_pca: exact PCA to this many dimensions first, and the k-NN graph found there (faster, loses
            true neighbours: a note says how many); None (default) keeps the full space.
        n_jobs: threads (default: all cores).
        n_iter: ordinary iterations after the early-exaggeration phase (default 500).
        early_exaggeration_iter: iterations with exaggeration 12 first (default 250).
        negative_gradient_method: ``"auto"`` (default: Barnes-Hut below 10,000 points, FFT above),
            ``"fft"`` (cost nearly flat in n, best for large maps) or ``"bh"`` (Barnes-Hut; faster on small
            inputs, where FFT's fixed grid cost dominates). 3D always uses ``"bh"``.
        ints_in_interval: width of openTSNE's FFT interpolation boxes in embedding units (default 3;
            openTSNE's own default is 1). The box count grows with the map's extent; on SmolLM2's 49,152
            tokens the optimisation took 133 s at width 1, 72 s at 2 and 65 s at 3, with the same
            trustworthiness (0.660, 0.661, 0.661) and neighbour recall@10 (0.056, 0.057, 0.057).
        knn_route: how the full-space k-NN graph is found when none is given or cached
            (:func:`~embedlens.reduce.knn.map_graph`): ``"auto"`` (default: NN-descent from
            ``nndescent_from`` rows, the exhaustive search below), ``"search"`` (exact up to 100,000 rows,
            bfloat16 short lists or HNSW above), ``"exact"`` or ``"nndescent"``. On SmolLM2 the k=90 graph
            from NN-descent held 94.5% of the true neighbours and the map kept its recall (0.353 vs 0.351);
            on Gemma 3 the exhaustive pass alone took 390 s (``docs/faithfulness.md``).
        nndescent_from: rows from which ``"auto"`` takes NN-descent; None: 100,001.

    Fitted attributes: ``embedding_`` (n, k) float32, ``kl_divergence_``, ``params_``, ``notes_``, ``timings_``.
    """

    method = "tsne"

    def __init__(
        self,
        *,
        n_components: int = 2,
        metric: str = "cosine",
        seed: int = 0,
        perplexity: float | None = None,
        pre_pca: int | None = None,
        n_jobs: int | None = None,
        n_iter: int = N_ITER,
        early_exaggeration_iter: int = EARLY_EXAGGERATION_ITER,
        negative_gradient_method: str = "auto",
        ints_in_interval: float = 3.0,
        knn_route: str = "auto",
        nndescent_from: int | None = None,
    ) -> None:
        super().__init__(n_components=n_components, metric=metric, seed=seed)
        self.perplexity = perplexity
        self.pre_pca = pre_pca
        self.n_jobs = n_jobs
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.negative_gradient_method = negative_gradient_method
        self.ints_in_interval = ints_in_interval
        self.knn_route = knn_route
        self.nndescent_from = nndescent_from

    def _check_params(self) -> None:
        super()._check_params()
        check_pre_pca(self.pre_pca)
        check_route(self.knn_route)
        check_nndescent_from(self.nndescent_from)
        resolve_n_jobs(self.n_jobs)
        clamp_perplexity(self.perplexity, 10**9)
        for name in ("n_iter", "early_exaggeration_iter"):
            check_iterations(getattr(self, name), name)
        value = self.ints_in_interval
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not 0 < value <= 100:
            raise EmbedlensError(f"ints_in_interval must be a number in (0, 100], got {value!r}")
        if self.negative_gradient_method not in ("auto", "fft", "bh"):
            raise EmbedlensError(
                f"negative_gradient_method must be 'auto', 'fft' or 'bh', got {self.negative_gradient_method!r}"
            )

    def neighbors_needed(self, n: int) -> int:
        return min(n - 1, int(3 * clamp_perplexity(self.perplexity, n)[0]))

    def _fit(self, X: np.ndarray, neighbors: Any = None) -> None:
        with self._timed("import"):
            openTSNE = require("openTSNE", "t-SNE maps", extra="maps", package="openTSNE")
            from openTSNE import affinity, initialization, nearest_neighbors

        n = X.shape[0]
        n_jobs = resolve_n_jobs(self.n_jobs)
        perplexity, note = clamp_perplexity(self.perplexity, n)
        pre_pca = check_pre_pca(self.pre_pca)
        if note:
            self.notes_.append(note)
        requested = self.negative_gradient_method
        if requested == "auto":
            requested = "bh" if n < BH_BELOW else "fft"
        gradient = requested if self.n_components <= 2 else "bh"
        if gradient != requested:
            self.notes_.append(
                "3D t-SNE uses Barnes-Hut gradients (openTSNE's FFT gradients are 1D/2D only); slower"
            )
        k = self.neighbors_needed(n)
        Z, pre_pca_used, graph, knn_method = graph_and_rows(self, X, pre_pca, k, neighbors, n_jobs)
        distances = graph.distances()
        with self._timed("affinities"):
            P = affinity.PerplexityBasedNN(
                knn_index=nearest_neighbors.PrecomputedNeighbors(graph.indices, distances),
                perplexity=perplexity,
                n_jobs=n_jobs,
                random_state=self.seed,
            )
        with self._timed("init"):
            # openTSNE's PCA initialisation (top components, rescaled to std 1e-4, jittered), by exact PCA.
            init = fit_pca(Z, self.n_components).transform(Z).astype(np.float64)
            init = initialization.jitter(initialization.rescale(init), random_state=self.seed)
        tsne = openTSNE.TSNE(
            n_components=self.n_components,
            perplexity=perplexity,
            early_exaggeration_iter=int(self.early_exaggeration_iter),
            n_iter=int(self.n_iter),
            metric="euclidean",
            negative_gradient_method=gradient,
            ints_in_interval=float(self.ints_in_interval),
            initialization="pca",
            n_jobs=n_jobs,
            random_state=self.seed,
            # Explorer jobs may be stopped every 50 iterations; the KL figure this computes there changes no step.
            callbacks=_stop_check if stoppable() else None,
        )
        with self._timed("optimize"):
            embedding = tsne.fit(Z, affinities=P, initialization=init)
        self.embedding_ = np.asarray(embedding, dtype=np.float32)
        self.kl_divergence_ = float(getattr(embedding, "kl_divergence", float("nan")))
        self.params_ = {
            "method": "tsne",
            "n_components": int(self.n_components),
            "metric": self.metric,
            "seed": int(self.seed),
            "pre_pca": pre_pca_used,
            **self.params_,
            "perplexity": perplexity,
            "perplexity_requested": default_perplexity(n) if self.perplexity is None else float(self.perplexity),
            "tsne_metric": (f"{self.metric} k-NN graph of the full space" if pre_pca_used is None
                            else f"euclidean k-NN graph after PCA to {pre_pca_used} dims"),
            "k_neighbors": k,
            "knn_method": knn_method,
            "negative_gradient_method": gradient,
            **({"ints_in_interval": float(self.ints_in_interval)} if gradient == "fft" else {}),
            "initialization": "pca (exact, rescaled and jittered as openTSNE does)",
            "early_exaggeration": 12,
            "early_exaggeration_iter": int(self.early_exaggeration_iter),
            "n_iter": int(self.n_iter),
            "learning_rate": "auto (n / exaggeration)",
            "n_jobs": n_jobs,
            "kl_divergence": self.kl_divergence_,
            "n_samples": int(n),
            "n_features": int(X.shape[1]),
            "library": "openTSNE",
            "library_version": package_version("openTSNE"),
        }
