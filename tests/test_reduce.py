"""Reducers (PCA, t-SNE, UMAP) and map quality metrics, on small synthetic arrays.

Checked against direct numpy / scikit-learn computations. t-SNE/UMAP runs are kept small; the
first UMAP fit of a session pays numba's compile cost (cached by numba between sessions).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from embedlens.errors import EmbedlensError, MissingDependency
from embedlens.neighbors.index import ExactIndex
from embedlens.reduce import REDUCERS, PCAReducer, TSNEReducer, UMAPReducer, make_reducer
from embedlens.reduce.options import ReduceOptions
from embedlens.reduce.quality import (
    ProjectionQuality,
    map_recall,
    neighbor_recall,
    projection_quality,
    sample_indices,
    trustworthiness,
)

# Short t-SNE runs where only determinism or bookkeeping is checked (the same code path, fewer steps).
SHORT_TSNE = {"n_iter": 20, "early_exaggeration_iter": 20, "n_jobs": 1}


def gaussian_clusters(
    n: int, d: int, n_clusters: int = 5, *, spread: float = 6.0, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * spread
    labels = np.arange(n) % n_clusters
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def clusters() -> np.ndarray:
    """300 points in 5 well-separated Gaussian clusters in 64 dims."""
    return gaussian_clusters(300, 64)


def numpy_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: eigendecomposition of the float64 covariance; returns (scores (n, k), ratios (k,))."""
    x = x.astype(np.float64)
    xc = x - x.mean(axis=0)
    cov = xc.T @ xc / (len(x) - 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    return xc @ vectors[:, order], values[order] / values.sum()


def assert_equal_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    for col in range(a.shape[1]):
        sign = np.sign(np.dot(a[:, col], b[:, col]))
        np.testing.assert_allclose(a[:, col], sign * b[:, col], atol=atol)


# ---------------------------------------------------------------- PCA


@pytest.mark.parametrize("n_components", [2, 3])
def test_pca_equals_numpy_eigendecomposition_up_to_sign(n_components):
    x = gaussian_clusters(500, 40, spread=2.0) * np.linspace(0.5, 3.0, 40, dtype=np.float32)
    r = PCAReducer(n_components=n_components, metric="euclidean")
    y = r.fit_transform(x)
    ref, ratios = numpy_pca(x, n_components)
    assert y.shape == (500, n_components) and y.dtype == np.float32
    assert_equal_up_to_sign(y, ref, atol=1e-4)
    np.testing.assert_allclose(r.explained_variance_ratio_, ratios, rtol=1e-9)
    assert r.params_["method"] == "pca" and r.params_["metric"] == "euclidean"
    assert r.params_["pre_pca"] is None and r.params_["library"] == "numpy"


def test_pca_exact_when_the_mean_dwarfs_the_spread():
    # One pass with a shift: no cancellation when every row sits far from the origin.
    x = (1e4 + gaussian_clusters(400, 12, spread=1.0)).astype(np.float64)
    y = PCAReducer(n_components=2, metric="euclidean").fit_transform(x)
    ref, _ = numpy_pca(x, 2)
    assert_equal_up_to_sign(y, ref, atol=2e-3)  # float32 coordinates of float64 rows near 1e4
    np.testing.assert_allclose(PCAReducer(metric="euclidean").fit(x).mean_, x.mean(axis=0), rtol=1e-12)


def test_pca_cosine_is_pca_of_normalised_rows():
    x = gaussian_clusters(300, 20, spread=2.0)
    y = PCAReducer(n_components=3, metric="cosine").fit_transform(x)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref, _ = numpy_pca(unit, 3)
    assert_equal_up_to_sign(y, ref, atol=1e-5)
    assert any("L2-normalised" in note for note in PCAReducer(metric="cosine").fit(x).notes_)


def test_pca_signs_are_fixed_and_input_untouched(tmp_path):
    x = gaussian_clusters(400, 16, spread=2.0).astype(np.float64)
    before = x.copy()
    r = PCAReducer(n_components=3, metric="euclidean").fit(x)
    np.testing.assert_array_equal(x, before)
    pivots = np.argmax(np.abs(r.components_), axis=1)
    assert np.all(r.components_[np.arange(3), pivots] > 0)
    # A sign-flipped input direction gives the same components (sign fixed deterministically).
    flipped = PCAReducer(n_components=3, metric="euclidean").fit(-x)
    np.testing.assert_allclose(np.abs(flipped.components_), np.abs(r.components_), atol=1e-10)
    # A read-only memory map works and gives the same coordinates as the array.
    path = tmp_path / "x.f32"
    x.astype(np.float32).tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=x.shape)
    np.testing.assert_array_equal(
        PCAReducer(n_components=2).fit_transform(mm), PCAReducer(n_components=2).fit_transform(np.array(mm))
    )
    np.testing.assert_allclose(r.transform(x[:5]), r.embedding_[:5], atol=1e-5)


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "method",
    ["pca", pytest.param("tsne", marks=pytest.mark.slow), pytest.param("umap", marks=pytest.mark.slow)],
)
def test_same_seed_gives_identical_coordinates(method, clusters):
    def run(seed):
        if method == "tsne":
            return TSNEReducer(seed=seed, **SHORT_TSNE).fit_transform(clusters)
        if method == "umap":
            return UMAPReducer(seed=seed, n_epochs=50).fit_transform(clusters)
        return make_reducer(method, seed=seed).fit_transform(clusters)

    assert set(REDUCERS) == {"pca", "tsne", "umap"}
    first, second = run(0), run(0)
    assert first.shape == (300, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("gradient", ["bh", "fft"])
def test_a_stoppable_tsne_draws_the_same_map_and_stops_within_one_callback_period(clusters, gradient):
    import threading

    import openTSNE

    from embedlens.progress import Stopped, stop_on

    short = {"n_iter": 100, "early_exaggeration_iter": 50, "negative_gradient_method": gradient}
    plain = TSNEReducer(seed=0, **short).fit_transform(clusters)
    with stop_on(threading.Event()):  # checked every 50 iterations; the KL figure computed there moves no point
        watched = TSNEReducer(seed=0, **short).fit_transform(clusters)
    np.testing.assert_array_equal(plain, watched)

    stop, seen = threading.Event(), []
    real = openTSNE.TSNE.__init__

    def spy(self, *args, **kwargs):  # set the stop at the first callback: the optimisation must end there
        callbacks = kwargs["callbacks"]
        kwargs["callbacks"] = lambda it, err, emb: (seen.append(it), stop.set(), callbacks(it, err, emb))
        real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(Stopped), stop_on(stop):
        mp.setattr(openTSNE.TSNE, "__init__", spy)
        TSNEReducer(seed=0, **short).fit_transform(clusters)
    assert seen == [50]


@pytest.mark.slow
def test_different_seed_changes_tsne(clusters):
    a = TSNEReducer(seed=0, **SHORT_TSNE).fit_transform(clusters)
    b = TSNEReducer(seed=1, **SHORT_TSNE).fit_transform(clusters)
    assert not np.allclose(a, b)


def test_tsne_and_umap_use_the_exact_full_space_graph_at_every_size():
    x = gaussian_clusters(1100, 30)
    a = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    b = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    assert a.params_["knn_method"] == "exact (faiss)" and a.params_["knn_metric"] == "cosine"
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    u = UMAPReducer(seed=3, n_epochs=20).fit(gaussian_clusters(200, 30))  # small: still our graph, not umap-learn's
    assert u.params_["knn_method"] == "exact (faiss)" and "full space" in u.params_["umap_metric"]
    # the graph is each point's true 14 nearest others by cosine (umap-learn adds the point itself)
    truth = ExactIndex(gaussian_clusters(200, 30)).query(None, 14).indices
    np.testing.assert_array_equal(u.neighbors_.indices, truth)


def test_tsne_and_umap_switch_to_hnsw_above_the_exact_limit_and_say_so(monkeypatch):
    from embedlens.reduce import knn

    monkeypatch.setattr(knn, "EXACT_MAX", 1000)
    monkeypatch.setattr(knn, "EXHAUSTIVE_MAX", 1000)  # no exhaustive bfloat16 pass between the two limits
    a = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(gaussian_clusters(1100, 30))
    b = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(gaussian_clusters(1100, 30))
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    u = UMAPReducer(seed=3, n_epochs=20).fit(gaussian_clusters(1100, 30))
    from embedlens.neighbors.index import Neighbors, recall_at_k
    from embedlens.reduce.quality import sample_indices

    x = gaussian_clusters(1100, 30)
    for r in (a, u):
        k = r.graph_.k  # t-SNE's 3 x perplexity, UMAP's n_neighbors - 1: the recall reported is the graph's own
        rows = sample_indices(1100, 256, 3)
        direct = recall_at_k(Neighbors(r.graph_.indices[rows], r.graph_.scores[rows], "cosine"),
                             ExactIndex(x).query(rows, k, exclude_self=True))
        assert r.params_["knn_method"] == "hnsw (faiss)" and r.params_["knn_recall_k"] == k
        assert r.params_["knn_recall"] == round(direct, 4) and direct >= 0.9
        assert any("HNSW" in note and f"true {k} nearest neighbours" in note for note in r.notes_), r.notes_
        assert r.neighbors_ is None  # approximate: the map's recall searches the space itself


def test_map_graph_between_the_limits_uses_bf16_short_lists_and_reports_their_own_recall(monkeypatch):
    from embedlens import hardware
    from embedlens.neighbors.index import Neighbors, recall_at_k
    from embedlens.reduce import knn
    from embedlens.reduce.quality import sample_indices

    monkeypatch.setattr(hardware, "fast_bfloat16", lambda: True)  # tiny products: cheap on any CPU
    x = gaussian_clusters(1100, 30)
    nb, info, notes = knn.map_graph(x, 14, exact_max=1000, cache=False, seed=3)
    assert info["knn_method"] == "bf16 shortlist (torch)" and info["knn_recall_k"] == 14
    assert "recall_k" not in info  # the index's build-time recall@10 does not linger beside the graph's own
    rows = sample_indices(1100, 256, 3)
    direct = recall_at_k(Neighbors(nb.indices[rows], nb.scores[rows], "cosine"),
                         ExactIndex(x).query(rows, 14, exclude_self=True))
    assert info["knn_recall"] == round(direct, 4) and direct >= 0.95
    assert any("bfloat16 products" in n and f"{direct:.1%} of the true 14 nearest" in n for n in notes), notes


@pytest.mark.parametrize("include_self", [True, False])
def test_index_layouts_for_reducers_equal_brute_force_with_duplicates(include_self):
    """The layouts reducers get (umap-learn's with self first, openTSNE's without) equal brute force."""
    from embedlens.neighbors import build_index

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 6)).astype(np.float32)
    z[7] = z[3]  # an exact duplicate: row 3 must still come first for itself
    index = build_index(z, metric="euclidean")
    nb = index.query(None, 4 if include_self else 5, exclude_self=True)
    idx, dist = nb.with_self() if include_self else (nb.indices, nb.distances())
    info = index.describe()
    d2 = ((z[:, None, :].astype(np.float64) - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, -1.0)  # the row itself first
    truth = np.argsort(d2, axis=1, kind="stable")
    truth = truth[:, :5] if include_self else truth[:, 1:6]
    np.testing.assert_array_equal(idx, truth)
    assert idx[3, 1 if include_self else 0] == 7 and idx[7, 1 if include_self else 0] == 3
    expect = np.sqrt(np.maximum(np.take_along_axis(d2, idx, axis=1), 0))
    np.testing.assert_allclose(dist, expect, atol=1e-5)
    assert info["knn_method"] == "exact (faiss)"


def test_many_identical_rows_stay_exact_and_far_rows_are_exact():
    from embedlens.neighbors import build_index

    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 8)).astype(np.float32)
    z[:1500] = z[0]  # half the rows identical: HNSW would lose the others' neighbours
    info = build_index(z, metric="euclidean", exact_max=1000, exhaustive_max=1000).describe()
    assert info["knn_method"].startswith("exact") and "repeat" in info["note"]
    far = (rng.normal(size=(3000, 16)) * 0.05 + 100.0).astype(np.float32)  # float32 cancellation territory
    idx = build_index(far, metric="euclidean").query(None, 10, exclude_self=True).indices
    d2 = ((far[:, None, :].astype(np.float64) - far[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    np.testing.assert_array_equal(idx, np.argsort(d2, axis=1, kind="stable")[:, :10])


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_a_reducer_given_the_graph_equals_one_that_built_it(method):
    from embedlens.neighbors.knn import knn_graph

    x = gaussian_clusters(400, 24)
    opts = SHORT_TSNE if method == "tsne" else {"n_epochs": 30}
    built = (TSNEReducer if method == "tsne" else UMAPReducer)(seed=1, **opts).fit(x)
    given = (TSNEReducer if method == "tsne" else UMAPReducer)(seed=1, **opts).fit(x, neighbors=built.neighbors_)
    np.testing.assert_array_equal(given.embedding_, built.embedding_)
    assert given.params_["knn_source"] == "given"
    need = built.neighbors_needed(400)
    cls = TSNEReducer if method == "tsne" else UMAPReducer
    # A cached `embedlens knn` graph with more neighbours than needed: the same neighbours, cut to k (its
    # scores may differ from a narrower search in the last float32 bit, so the maps are not compared bit for bit).
    from_graph = cls(seed=1, **opts).fit(x, knn_graph(x, need + 5))
    assert from_graph.params_["knn_source"] == "given" and from_graph.params_["knn_k_stored"] == need + 5
    np.testing.assert_array_equal(from_graph.neighbors_.indices, built.neighbors_.indices)
    np.testing.assert_allclose(from_graph.neighbors_.scores, built.neighbors_.scores, atol=1e-6)
    short = knn_graph(x, need - 1)  # too few neighbours: rebuilt, and said so
    rebuilt = cls(seed=1, **opts).fit(x, short)
    np.testing.assert_array_equal(rebuilt.embedding_, built.embedding_)
    assert any(f"holds {need - 1} neighbours per row, the map needs {need}: rebuilt" in n for n in rebuilt.notes_)


def test_repeated_maps_of_one_space_reuse_the_cached_graph(cache_dir, monkeypatch):
    from embedlens.reduce import knn

    monkeypatch.setattr(knn, "CACHE_FROM", 100)
    x = gaussian_clusters(400, 24)
    first = TSNEReducer(seed=0, **SHORT_TSNE).fit(x)
    assert first.params_["knn_source"] == "computed"
    assert list((cache_dir / "spaces").glob("*/knn-map-cosine-k90-exact.safetensors"))
    again = TSNEReducer(seed=0, **SHORT_TSNE).fit(x)
    assert again.params_["knn_source"] == "cache" and again.params_["knn_k_stored"] == 90
    np.testing.assert_array_equal(first.embedding_, again.embedding_)
    smaller = TSNEReducer(seed=0, perplexity=10, **SHORT_TSNE).fit(x)  # needs k=30: the k=90 graph serves
    assert smaller.params_["knn_source"] == "cache"
    euclid = TSNEReducer(seed=0, metric="euclidean", **SHORT_TSNE).fit(x)  # another metric: its own graph
    assert euclid.params_["knn_source"] == "computed"


def test_pre_pca_stays_available_and_says_what_it_costs(clusters):
    r = TSNEReducer(seed=0, pre_pca=5, **SHORT_TSNE).fit(clusters)
    assert r.params_["pre_pca"] == 5 and r.params_["knn_space"] == "after PCA to 5 dims"
    kept = r.params_["knn_full_space_recall"]
    assert 0.0 < kept < 1.0 and r.neighbors_ is None
    assert any(f"holds only {kept:.1%} of the true 90 nearest neighbours of the full space" in n for n in r.notes_)


# ---------------------------------------------------------------- t-SNE / UMAP bookkeeping and quality


def test_tsne_perplexity_clamped_with_note():
    x = gaussian_clusters(40, 8)
    r = TSNEReducer(perplexity=30, **SHORT_TSNE).fit(x)
    assert r.params_["perplexity"] == pytest.approx(13.0)
    assert r.params_["perplexity_requested"] == 30.0
    assert any("perplexity 30 clamped to 13" in note for note in r.notes_)
    assert r.params_["pre_pca"] is None  # 8 dims <= 50: no PCA step, and no note claiming one
    assert not any("PCA" in note for note in r.notes_)
    assert set(r.timings_) >= {"knn", "affinities", "optimize", "total"}


def test_tsne_3d_uses_barnes_hut_with_note():
    r = TSNEReducer(n_components=3, perplexity=5, negative_gradient_method="fft", **SHORT_TSNE).fit(gaussian_clusters(60, 8))
    assert r.embedding_.shape == (60, 3)
    assert r.params_["negative_gradient_method"] == "bh"
    assert any("Barnes-Hut" in note for note in r.notes_)


def test_tsne_auto_gradients_follow_the_size():
    small = TSNEReducer(perplexity=5, **SHORT_TSNE).fit(gaussian_clusters(60, 8))
    assert small.params_["negative_gradient_method"] == "bh" and not small.notes_
    forced = TSNEReducer(perplexity=5, negative_gradient_method="fft", **SHORT_TSNE).fit(gaussian_clusters(60, 8))
    assert forced.params_["negative_gradient_method"] == "fft"


@pytest.mark.slow
def test_tsne_keeps_well_separated_clusters_trustworthy(clusters):
    r = make_reducer("tsne", seed=0)
    y = r.fit_transform(clusters)
    q = projection_quality(clusters, y, k=10)
    assert q.trustworthiness >= 0.9
    assert r.params_["pre_pca"] is None and r.params_["perplexity"] == 30.0
    assert r.params_["knn_metric"] == "cosine" and r.params_["knn_source"] == "computed"
    # "auto" gradients: Barnes-Hut below 10,000 points
    assert r.params_["negative_gradient_method"] == "bh" and r.params_["library"] == "openTSNE"
    assert r.params_["library_version"] and r.params_["n_jobs"] >= 1
    assert not any("PCA" in note for note in r.notes_)  # the graph comes from the full space


@pytest.mark.slow
def test_umap_keeps_well_separated_clusters_trustworthy(clusters):
    r = make_reducer("umap", seed=0)
    y = r.fit_transform(clusters)
    assert y.shape == (300, 2) and y.dtype == np.float32
    assert projection_quality(clusters, y, k=10).trustworthiness >= 0.9
    assert r.params_["n_neighbors"] == 15 and r.params_["pre_pca"] is None
    assert r.params_["library"] == "umap-learn" and r.params_["seed"] == 0


@pytest.mark.slow  # the first UMAP fit in a process pays numba's compile (~20-30 s)
def test_umap_n_neighbors_clamped_with_note():
    x = gaussian_clusters(8, 4)
    r = UMAPReducer(n_neighbors=15, n_components=3, n_epochs=20).fit(x)
    assert r.embedding_.shape == (8, 3)
    assert r.params_["n_neighbors"] == 7
    assert any("n_neighbors 15 clamped to 7" in note for note in r.notes_)


@pytest.mark.parametrize("method", ["pca", "tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_three_points_are_enough(method):
    x = gaussian_clusters(3, 5)
    extra = {"tsne": SHORT_TSNE, "umap": {"n_epochs": 10}}.get(method, {})
    r = {"pca": PCAReducer, "tsne": TSNEReducer, "umap": UMAPReducer}[method](**extra).fit(x)
    assert r.embedding_.shape == (3, 2) and np.isfinite(r.embedding_).all()


# ---------------------------------------------------------------- quality metrics


def test_quality_identity_map_is_perfect():
    x = gaussian_clusters(200, 3)
    q = projection_quality(x, x, k=10, metric="euclidean")
    assert (q.trustworthiness, q.neighbor_recall) == (1.0, 1.0)
    assert (q.k, q.n_sample, q.seed, q.metric) == (10, 200, 0, "euclidean")
    assert ProjectionQuality.from_dict(q.to_dict()) == q


def test_quality_random_map_of_structured_data_is_low():
    x = gaussian_clusters(600, 32)
    y = np.random.default_rng(1).standard_normal((600, 2))
    q = projection_quality(x, y, k=10)
    assert q.trustworthiness < 0.6
    assert q.neighbor_recall < 0.05


def test_quality_tiny_case_computed_by_hand():
    # Points on a line at 0, 1, 3, 6, 10, 15; the map swaps the two end points.
    x = np.array([0, 1, 3, 6, 10, 15], dtype=np.float32)[:, None]
    y = np.array([15, 1, 3, 6, 10, 0], dtype=np.float32)[:, None]
    # Map neighbours (k=1): 0->4, 1->5, 2->1, 3->2, 4->3, 5->1. Their original ranks: 4, 5, 1, 1, 1, 4,
    # so the trustworthiness penalty is 3 + 4 + 3 = 10 and T = 1 - 2 * 10 / (6 * 1 * (12 - 3 - 1)) = 7/12.
    # Original neighbours: 0->1, 1->0, 2->1, 3->2, 4->3, 5->4; kept: points 2, 3, 4 -> recall 3/6.
    assert trustworthiness(x, y, k=1, metric="euclidean") == pytest.approx(7 / 12, abs=1e-12)
    assert neighbor_recall(x, y, k=1, metric="euclidean") == pytest.approx(0.5)
    q = projection_quality(x, y, k=1, metric="euclidean")
    assert (q.trustworthiness, q.neighbor_recall, q.n_sample) == (pytest.approx(7 / 12), 0.5, 6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_trustworthiness_equals_sklearn(metric):
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness

    x = gaussian_clusters(1000, 24, spread=1.5)
    y = x[:, :2] + np.random.default_rng(2).standard_normal((1000, 2)).astype(np.float32)
    idx = sample_indices(1000, 400, seed=7)
    assert len(np.unique(idx)) == 400
    q = projection_quality(x, y, k=10, sample=400, seed=7, metric=metric)
    expected = sklearn_trustworthiness(
        x[idx].astype(np.float64), y[idx].astype(np.float64), n_neighbors=10, metric=metric
    )
    assert q.trustworthiness == pytest.approx(expected, abs=1e-12)
    assert q.n_sample == 400 and q.seed == 7
    assert trustworthiness(x[idx], y[idx], k=10, metric=metric) == pytest.approx(expected, abs=1e-12)


def test_neighbor_recall_equals_brute_force():
    x = gaussian_clusters(300, 16, spread=1.0)
    y = x[:, :2] + 0.5 * np.random.default_rng(3).standard_normal((300, 2)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    dx = 1 - unit.astype(np.float64) @ unit.T.astype(np.float64)
    dy = ((y[:, None, :].astype(np.float64) - y[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nx, ny = np.argsort(dx, axis=1)[:, :10], np.argsort(dy, axis=1)[:, :10]
    expected = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(nx, ny, strict=True)])
    assert neighbor_recall(x, y, k=10, metric="cosine") == pytest.approx(expected)


def test_quality_sample_is_seeded_and_k_lowered_for_tiny_inputs():
    x = gaussian_clusters(500, 8)
    y = x[:, :2].copy()
    a = projection_quality(x, y, sample=100, seed=1)
    assert a == projection_quality(x, y, sample=100, seed=1)
    assert a.n_sample == 100
    assert projection_quality(x, y, sample=100, seed=2) != a
    tiny = projection_quality(x[:7], y[:7], k=10)
    assert (tiny.k, tiny.n_sample) == (3, 7)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("method", REDUCERS)
@pytest.mark.parametrize("n_components", [1, 4, 2.0])
def test_bad_n_components(method, n_components):
    with pytest.raises(EmbedlensError, match="`n_components` must be 2 or 3"):
        make_reducer(method, n_components=n_components).fit(gaussian_clusters(20, 4))


@pytest.mark.parametrize("method", REDUCERS)
def test_bad_inputs_raise_one_line_errors(method):
    ok = gaussian_clusters(20, 4)
    nan = ok.copy()
    nan[5, 2] = np.nan
    inf = ok.copy()
    inf[7, 0] = np.inf
    cases = [
        (ok[:2], "at least 3 points"),
        (nan, "NaN or infinite values .first in row 5"),
        (inf, "NaN or infinite values .first in row 7"),
        (ok[0], "shape"),
    ]
    for x, message in cases:
        with pytest.raises(EmbedlensError, match=message) as info:
            make_reducer(method).fit(x)
        assert "\n" not in str(info.value)
    with pytest.raises(EmbedlensError, match="unknown metric 'manhattan'"):
        make_reducer(method, metric="manhattan").fit(ok)


def test_bad_method_and_parameters():
    x = gaussian_clusters(20, 4)
    with pytest.raises(EmbedlensError, match="unknown reduction method 'mds'"):
        make_reducer("mds")
    bad = [
        (lambda: TSNEReducer(perplexity=-1), "perplexity must be a positive number"),
        (lambda: TSNEReducer(pre_pca=1), "pre_pca must be an integer of at least 2"),
        (lambda: TSNEReducer(n_jobs=0), "n_jobs must be"),
        (lambda: TSNEReducer(negative_gradient_method="exact"), "negative_gradient_method"),
        (lambda: TSNEReducer(ints_in_interval=0), "ints_in_interval must be"),
        (lambda: UMAPReducer(n_neighbors=1), "n_neighbors must be an integer of at least 2"),
        (lambda: UMAPReducer(min_dist=2.0), "min_dist must be a number between 0 and 1"),
        (lambda: PCAReducer(seed=-1), "seed must be"),
    ]
    for build, message in bad:
        with pytest.raises(EmbedlensError, match=message):
            build().fit(x)
    with pytest.raises(EmbedlensError, match="rows but the map Y has"):
        projection_quality(x, x[:10, :2])
    with pytest.raises(EmbedlensError, match="k=10 needs more than 20 points"):
        trustworthiness(x, x, k=10)
    with pytest.raises(EmbedlensError, match="not fitted"):
        PCAReducer().transform(x)


@pytest.mark.parametrize(
    ("method", "module", "package"), [("tsne", "openTSNE", "openTSNE"), ("umap", "umap", "umap-learn")]
)
def test_missing_optional_package_says_how_to_install(method, module, package, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(
        MissingDependency, match=rf"needs the '{package}' package.*pip install 'embedlens\[maps\]'"
    ):
        make_reducer(method).fit(gaussian_clusters(20, 4))


# ---------------------------------------------------------------- the one recall of a map


def brute_force_map_recall(x: np.ndarray, y: np.ndarray, k: int, sample: int, seed: int, metric: str) -> float:
    """The definition, literally: seeded queries; their k nearest among ALL points in the space and on the map."""
    q = sample_indices(len(x), sample, seed)
    x64 = x.astype(np.float64)
    if metric == "cosine":
        u = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
        dx = 1.0 - u[q] @ u.T
    else:
        dx = ((x64[q][:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    dy = ((y.astype(np.float64)[q][:, None, :] - y.astype(np.float64)[None, :, :]) ** 2).sum(-1)
    dx[np.arange(len(q)), q] = np.inf
    dy[np.arange(len(q)), q] = np.inf
    nx = np.argsort(dx, axis=1, kind="stable")[:, :k]
    ny = np.argsort(dy, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nx, ny, strict=True)]))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_map_recall_equals_a_brute_force_computation_of_the_definition(metric):
    x = gaussian_clusters(900, 16, spread=1.0)
    y = x[:, :2] + 0.3 * np.random.default_rng(4).standard_normal((900, 2)).astype(np.float32)
    expected = brute_force_map_recall(x, y, 10, 200, 3, metric)
    assert map_recall(x, y, 10, sample=200, seed=3, metric=metric) == pytest.approx(expected, abs=1e-12)
    q = projection_quality(x, y, k=10, sample=200, seed=3, metric=metric)
    assert q.neighbor_recall == pytest.approx(expected, abs=1e-12)
    assert (q.n_queries, q.n_points, q.n_sample) == (200, 900, 200)
    # ... which is not the within-sample figure the manifest used to print
    idx = sample_indices(900, 200, 3)
    assert neighbor_recall(x[idx], y[idx], k=10, metric=metric) != pytest.approx(expected, abs=1e-3)
    # a graph the caller already has gives the same figure without a search
    graph = ExactIndex(x, metric=metric).query(None, 12)
    assert map_recall(x, y, 10, sample=200, seed=3, metric=metric, space_neighbors=graph) == pytest.approx(expected)
    words = q.to_dict()
    assert "searched over all 900 points" in words["recall_definition"]
    assert words["trustworthiness_definition"] == "within a seeded sample of 200 points"
    assert "200 queries among all 900 points" in q.summary() and "within 200 sampled points" in q.summary()


# ---------------------------------------------------------------- rerun stability (contextual --runs)


@pytest.mark.slow
def test_tsne_rerun_stability_fails_when_every_run_reuses_one_seed(monkeypatch):
    """`context --runs R` fits seeds seed, seed+1, ...; the stability it reports must come from different runs.

    With every run forced onto one seed the maps are identical and the score is exactly 1.0: the
    assertions below fail then, which is what makes them a test of the seeding.
    """
    import embedlens.contextual.projection as projection

    quick = ReduceOptions("tsne", **SHORT_TSNE)  # the seeding is under test: short fits
    x = gaussian_clusters(60, 12, n_clusters=3, spread=3.0)
    honest = projection.project(x, quick, runs=2)
    assert honest.to_dict()["seeds"] == [0, 1]
    assert not np.array_equal(honest.aligned_runs[0], honest.aligned_runs[1])
    assert honest.stability < 0.99 and honest.point_stability.min() < 1.0

    real = ReduceOptions.reducer
    monkeypatch.setattr(ReduceOptions, "reducer", lambda self, axes=None: real(self.replace(seed=0), axes))
    one_seed = projection.project(x, quick, runs=2)
    assert one_seed.stability == 1.0  # what the assertions above would see: they would fail


# ---------------------------------------------------------------- PCA: every exact route equals an SVD


@pytest.mark.parametrize("n, d, solver", [(11, 64, "Gram"), (64, 64, "Gram"), (3000, 50, "covariance")])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pca_routes_equal_numpy_svd(n, d, solver, metric):
    """Few rows (Gram matrix) and many rows (covariance): the components and variances of an SVD."""
    from embedlens.reduce.pca import fit_pca

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, d)) * np.linspace(3, 0.1, d)).astype(np.float32)  # slowly decaying spectrum
    fit = fit_pca(x, 3, metric=metric)
    assert solver in fit.info["solver"]
    ref = x.astype(np.float64)
    if metric == "cosine":
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    centred = ref - ref.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(np.abs(np.sum(fit.components * vt[:3], axis=1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(fit.variances, s[:3] ** 2 / (n - 1), rtol=1e-8)
    assert fit.total_variance == pytest.approx((centred ** 2).sum() / (n - 1), rel=1e-10)
    np.testing.assert_allclose(fit.mean, ref.mean(axis=0), atol=1e-12)
