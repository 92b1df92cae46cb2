"""UMAP through umap-learn, seeded and therefore single-threaded.

umap-learn is deterministic only with ``random_state`` set, which also makes it run on one
thread; that is the trade this module makes: same seed, same coordinates. The k-nearest-neighbour
graph is its own timed stage, found in the FULL space with the map's metric
(:func:`~embedlens.reduce.knn.map_graph`: given, cached, exact, or NN-descent above 100,000 points, which the params name as ``knn_route``) and
handed to umap-learn as ``precomputed_knn`` (each row itself first, cosine distances ``1 - cos`` with
``metric="cosine"``, as umap-learn's own search gives them), at every size. ``pre_pca`` (off by
default) finds the graph after an exact PCA instead; a note says how many true neighbours that cost.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import EmbedlensError, require
from ..neighbors.nndescent import allow_graph_threads
from ..versions import package_version
from .base import LARGE_FROM, Reducer
from .knn import check_nndescent_from, check_route, graph_and_rows, resolve_n_jobs
from .pca import check_pre_pca

# From this many points (where the k-NN graph comes from NN-descent and the optimisation is most of a map's
# time) fewer epochs with more negative samples: on SmolLM2's 49,152 tokens umap-learn's 200 epochs x 5
# negative samples kept map recall@10 0.175, 60 x 10 kept 0.183 for 0.55x the sampling work (each epoch
# visits its edges with 1 + rate samples: 60 x 11 against 200 x 6) and 100 x 10 kept 0.198 for 0.92x
# (docs/faithfulness.md).
LARGE_EPOCHS, LARGE_NEGATIVE_SAMPLE_RATE = 60, 10.0
# umap-learn's starts. From LARGE_FROM points a uniform random one: on Gemma 3's 262,144 tokens (60 x 10) it kept
# map recall@10 0.100 against 0.0945 from the spectral start, whose eigensolver took 34 s of an unloaded 184 s
# map; the truncated-SVD warm-started spectral start kept 0.091 (docs/faithfulness.md). Below, umap-learn's own.
INITS = ("spectral", "tswspectral", "pca", "random")
LARGE_INIT = "random"


def schedule(n: int, n_epochs: int | None, negative_sample_rate: float | None) -> tuple[int, float]:
    """The epochs and negative sample rate a UMAP of ``n`` points runs with (None: the size's default)."""
    large = n >= LARGE_FROM
    epochs = n_epochs if n_epochs is not None else (LARGE_EPOCHS if large else 500 if n <= 10000 else 200)
    rate = negative_sample_rate if negative_sample_rate is not None else (
        LARGE_NEGATIVE_SAMPLE_RATE if large else 5.0)
    return int(epochs), float(rate)


def pick_init(n: int, n_components: int, init: str | None) -> str:
    """The start a UMAP of ``n`` points runs from (None: the size's default)."""
    init = init if init is not None else LARGE_INIT if n >= LARGE_FROM else "spectral"
    # The spectral starts need more points than n_components + 1 (ARPACK's k < N).
    return "pca" if init.endswith("spectral") and n <= n_components + 2 else init


def check_init(init: str | None) -> str | None:
    if init is not None and init not in INITS:
        raise EmbedlensError(f"init must be one of {', '.join(INITS)} or None (the size's default), got {init!r}")
    return init


def check_n_neighbors(n_neighbors: int) -> int:
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer) or n_neighbors < 2:
        raise EmbedlensError(f"n_neighbors must be an integer of at least 2, got {n_neighbors!r}")
    return int(n_neighbors)


def check_min_dist(min_dist: float) -> float:
    if (
        isinstance(min_dist, bool)
        or not isinstance(min_dist, int | float | np.number)
        or not 0 <= min_dist <= 1
    ):
        raise EmbedlensError(f"min_dist must be a number between 0 and 1, got {min_dist!r}")
    return float(min_dist)


def check_n_epochs(n_epochs: int | None) -> int | None:
    if n_epochs is not None and (isinstance(n_epochs, bool) or not isinstance(n_epochs, int | np.integer)
                                 or n_epochs < 1):
        raise EmbedlensError(f"n_epochs must be a positive integer or None (umap-learn's default), got {n_epochs!r}")
    return n_epochs


def check_negative_sample_rate(rate: float | None) -> float | None:
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float | np.number)
                             or not 0 < rate <= 100):
        raise EmbedlensError(f"negative_sample_rate must be a number in (0, 100] or None, got {rate!r}")
    return rate


class UMAPReducer(Reducer):
    """UMAP to 2 or 3 dimensions with umap-learn.

    Args:
        n_components: 2 or 3.
        metric: ``"cosine"`` (rows L2-normalised first, then euclidean) or ``"euclidean"``.
        seed: umap-learn's ``random_state``; makes the run deterministic (and single-threaded).
        n_neighbors: neighbourhood size (default 15), clamped to n - 1 with a note.
        min_dist: minimum distance between embedded points, 0 to 1 (default 0.1).
        pre_pca: exact PCA to this many dimensions first, and the k-NN graph found there (faster, loses
            true neighbours: a note says how many); None (default) keeps the full space.
        n_epochs: optimisation epochs; None: umap-learn's default (500 up to 10,000 points, 200 above) up to
            ``LARGE_FROM`` points, ``LARGE_EPOCHS`` from there.
        negative_sample_rate: negative samples per positive one; None: umap-learn's 5 up to ``LARGE_FROM``
            points, ``LARGE_NEGATIVE_SAMPLE_RATE`` from there (see :func:`schedule`).
        init: umap-learn's start, one of ``INITS``; None: ``"spectral"`` up to ``LARGE_FROM`` points,
            ``LARGE_INIT`` from there (see :func:`pick_init`).
        knn_route: how the full-space k-NN graph is found when none is given or cached
            (:func:`~embedlens.reduce.knn.map_graph`): ``"auto"`` (default: NN-descent from
            ``nndescent_from`` rows, exhaustive search below), ``"search"``, ``"exact"`` or ``"nndescent"``.
        nndescent_from: rows from which ``"auto"`` takes NN-descent; None: 100,001.

    Fitted attributes: ``embedding_`` (n, k) float32, ``params_``, ``notes_``, ``timings_``.
    """

    method = "umap"

    def __init__(
        self,
        *,
        n_components: int = 2,
        metric: str = "cosine",
        seed: int = 0,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        pre_pca: int | None = None,
        n_epochs: int | None = None,
        negative_sample_rate: float | None = None,
        knn_route: str = "auto",
        nndescent_from: int | None = None,
        init: str | None = None,
    ) -> None:
        super().__init__(n_components=n_components, metric=metric, seed=seed)
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.pre_pca = pre_pca
        self.n_epochs = n_epochs
        self.negative_sample_rate = negative_sample_rate
        self.knn_route = knn_route
        self.nndescent_from = nndescent_from
        self.init = init

    def _check_params(self) -> None:
        super()._check_params()
        check_n_neighbors(self.n_neighbors)
        check_min_dist(self.min_dist)
        check_pre_pca(self.pre_pca)
        check_n_epochs(self.n_epochs)
        check_route(self.knn_route)
        check_nndescent_from(self.nndescent_from)
        check_init(self.init)

        check_negative_sample_rate(self.negative_sample_rate)

    def neighbors_needed(self, n: int) -> int:
        # umap-learn counts each point as its own first neighbour: k columns hold k - 1 others.
        return max(1, min(check_n_neighbors(self.n_neighbors), n - 1) - 1)

    def _fit(self, X: np.ndarray, neighbors: Any = None) -> None:
        with self._timed("import"):
            allow_graph_threads()  # umap-learn imports numba, which fixes its thread count then
            require("umap", "UMAP maps", extra="maps", package="umap-learn")
            import umap

        n = X.shape[0]
        k = min(check_n_neighbors(self.n_neighbors), n - 1)
        pre_pca = check_pre_pca(self.pre_pca)
        Z, pre_pca_used, graph, knn_method = graph_and_rows(self, X, pre_pca, self.neighbors_needed(n), neighbors,
                                                             resolve_n_jobs(None))
        if k < self.n_neighbors:
            self.notes_.append(f"n_neighbors {self.n_neighbors} clamped to {k} because only {n} points")
        init = pick_init(n, self.n_components, check_init(self.init))
        umap_metric = self.metric if pre_pca_used is None else "euclidean"
        n_epochs, negative_sample_rate = schedule(n, self.n_epochs, self.negative_sample_rate)
        with warnings.catch_warnings():
            # umap-learn warns about its own choices (single thread with a seed, spectral fallbacks).
            warnings.simplefilter("ignore")
            model = umap.UMAP(
                n_neighbors=k,
                n_components=self.n_components,
                metric=umap_metric,
                min_dist=check_min_dist(self.min_dist),
                random_state=self.seed,
                n_jobs=1,
                init=init,
                n_epochs=n_epochs,
                negative_sample_rate=negative_sample_rate,
                precomputed_knn=graph.with_self(),
            )
            with self._timed("optimize"):
                Y = model.fit_transform(Z)
        self.embedding_ = np.asarray(Y, dtype=np.float32)
        self.params_ = {
            "method": "umap",
            "n_components": int(self.n_components),
            "metric": self.metric,
            "seed": int(self.seed),
            "pre_pca": pre_pca_used,
            **self.params_,
            "n_neighbors": k,
            "n_neighbors_requested": int(self.n_neighbors),
            "min_dist": float(self.min_dist),
            "umap_metric": (f"{umap_metric}, k-NN graph of the full space" if pre_pca_used is None
                            else f"euclidean, k-NN graph after PCA to {pre_pca_used} dims"),
            "knn_method": knn_method,
            "init": init,
            "n_epochs": int(n_epochs),
            "negative_sample_rate": float(negative_sample_rate),
            "n_jobs": 1,
            "n_samples": int(n),
            "n_features": int(X.shape[1]),
            "library": "umap-learn",
            "library_version": package_version("umap-learn"),
            "numba_version": package_version("numba"),
        }
