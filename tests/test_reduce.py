"""Reducers (PCA, t-SNE, UMAP) and map quality metrics, on small synthetic arrays.

Checked against direct numpy / scikit-learn computations. t-SNE/UMAP runs are kept small; the
first UMAP fit of a session pays numba's compile cost (cached by numba between sessions).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from embedlens.errors import EmbedlensError, MissingDependency
from embedlens.reduce import METHODS, PCAReducer, TSNEReducer, UMAPReducer, make_reducer
from embedlens.reduce.quality import (
    ProjectionQuality,
    neighbor_recall,
    projection_quality,
    sample_indices,
    trustworthiness,
)

# Short t-SNE runs where only determinism or bookkeeping is checked (the same code path, fewer steps).
SHORT_TSNE = {"n_iter": 20, "early_exaggeration_iter": 20}


def gaussian_clusters(
    n: int, d: int, n_clusters: int = 5, *, spread: float = 6.0, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * spread
    labels = np.arange(n) % n_clusters
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def clusters() -> np.ndarray:
    """300 points in 5 well-separated Gaussian clusters in 64 dims (pre-PCA to 50 applies)."""
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

    assert set(METHODS) == {"pca", "tsne", "umap"}
    first, second = run(0), run(0)
    assert first.shape == (300, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_different_seed_changes_tsne(clusters):
    a = TSNEReducer(seed=0, **SHORT_TSNE).fit_transform(clusters)
    b = TSNEReducer(seed=1, **SHORT_TSNE).fit_transform(clusters)
    assert not np.allclose(a, b)


@pytest.mark.slow
def test_tsne_same_seed_identical_with_approximate_neighbours(monkeypatch):
    # Without faiss, from 1,000 points openTSNE's neighbours come from Annoy (seeded, threaded): still reproducible.
    import embedlens.reduce.knn as rknn

    monkeypatch.setattr(rknn, "faiss_available", lambda: False)
    x = gaussian_clusters(1100, 30)
    a = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    b = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    assert a.params_["knn_method"] == "annoy"
    np.testing.assert_array_equal(a.embedding_, b.embedding_)


def test_tsne_and_umap_use_exact_neighbours_from_1000_points():
    x = gaussian_clusters(1100, 30)
    a = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    b = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(x)
    assert a.params_["knn_method"] == "exact (faiss)"
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    u = UMAPReducer(seed=3, n_epochs=20).fit(gaussian_clusters(4200, 30))  # umap-learn's own exact search below 4,096
    assert u.params_["knn_method"] == "exact (faiss)"


def test_tsne_and_umap_switch_to_hnsw_above_the_exact_limit_and_say_so(monkeypatch):
    from embedlens.reduce import knn

    monkeypatch.setattr(knn, "EXACT_MAX", 1000)
    a = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(gaussian_clusters(1100, 30))
    b = TSNEReducer(seed=3, n_iter=20, early_exaggeration_iter=20).fit(gaussian_clusters(1100, 30))
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    u = UMAPReducer(seed=3, n_epochs=20).fit(gaussian_clusters(4200, 30))
    for r, k in ((a, 90), (u, 15)):
        assert r.params_["knn_method"] == "hnsw (faiss)" and r.params_["knn_recall_sampled"] > 0.9
        assert any(f"true {k} nearest neighbours" in note for note in r.notes_), r.notes_


@pytest.mark.parametrize("include_self", [True, False])
def test_exact_knn_equals_brute_force_with_duplicates(include_self):
    from embedlens.reduce.knn import exact_knn

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 6)).astype(np.float32)
    z[7] = z[3]  # an exact duplicate: row 3 must still come first for itself
    idx, dist = exact_knn(z, 5, n_jobs=1, include_self=include_self)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, -1.0)  # the row itself first
    truth = np.argsort(d2, axis=1, kind="stable")
    truth = truth[:, :5] if include_self else truth[:, 1:6]
    assert (idx[:, 0] == np.arange(300)).all() if include_self else (idx != np.arange(300)[:, None]).all()
    assert idx[3, 1 if include_self else 0] == 7 and idx[7, 1 if include_self else 0] == 3
    agree = (np.sort(idx, axis=1) == np.sort(truth, axis=1)).mean()
    assert agree == 1.0
    expect = np.sqrt(np.maximum(np.take_along_axis(d2, idx, axis=1), 0))
    np.testing.assert_allclose(dist, expect, atol=1e-4)


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
    assert r.params_["pre_pca"] == 50 and r.params_["perplexity"] == 30.0
    # "auto" gradients: Barnes-Hut below 10,000 points
    assert r.params_["negative_gradient_method"] == "bh" and r.params_["library"] == "openTSNE"
    assert r.params_["library_version"] and r.params_["n_jobs"] >= 1
    assert any("PCA from 64 to 50 dims" in note for note in r.notes_)


@pytest.mark.slow
def test_umap_keeps_well_separated_clusters_trustworthy(clusters):
    r = make_reducer("umap", seed=0)
    y = r.fit_transform(clusters)
    assert y.shape == (300, 2) and y.dtype == np.float32
    assert projection_quality(clusters, y, k=10).trustworthiness >= 0.9
    assert r.params_["n_neighbors"] == 15 and r.params_["pre_pca"] == 50
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


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_components", [1, 4, 2.0])
def test_bad_n_components(method, n_components):
    with pytest.raises(EmbedlensError, match="n_components must be 2 or 3"):
        make_reducer(method, n_components=n_components).fit(gaussian_clusters(20, 4))


@pytest.mark.parametrize("method", METHODS)
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


@pytest.mark.parametrize("include_self", [True, False])
def test_hnsw_graph_above_the_exact_limit_is_deterministic_and_reports_its_recall(include_self, monkeypatch):
    from embedlens.reduce import knn

    # a deliberately weak graph on hard (uniform, 32-d) data, so that recall is well below 1 and the
    # sampled figure has something to agree with
    monkeypatch.setattr(knn, "HNSW_M", 8)
    monkeypatch.setattr(knn, "HNSW_EF_CONSTRUCTION", 16)
    monkeypatch.setattr(knn, "HNSW_EF_SEARCH_MIN", 16)
    z = np.random.default_rng(0).uniform(size=(3000, 32)).astype(np.float32)
    idx, dist, info = knn.neighbor_graph(z, 10, n_jobs=2, include_self=include_self, seed=1, exact_max=1000)
    assert info["knn_method"] == "hnsw (faiss)" and info["knn_recall_rows"] == 256
    again = knn.neighbor_graph(z, 10, n_jobs=1, include_self=include_self, seed=1, exact_max=1000)
    np.testing.assert_array_equal(idx, again[0])  # one-thread build, any-thread search: same graph
    rows = np.arange(3000)
    assert (idx[:, 0] == rows).all() if include_self else (idx != rows[:, None]).all()
    # distances are the true distances of the neighbours returned, nearest first
    true_d = np.sqrt(((z[:, None, :] - z[idx]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, true_d, rtol=1e-4, atol=1e-4)
    assert (np.diff(dist, axis=1) >= -1e-5).all()
    truth, _ = knn.exact_knn(z, 10, n_jobs=2, include_self=include_self)  # checked against brute force above
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth, strict=True)])
    assert 0.5 < recall < 0.99
    assert abs(info["knn_recall_sampled"] - recall) < 0.06
    exact = knn.neighbor_graph(z, 10, n_jobs=2, include_self=include_self, exact_max=3000)
    assert exact[2] == {"knn_method": "exact (faiss)"}
    np.testing.assert_array_equal(exact[0], truth)


def test_sampled_recall_is_exact_far_from_the_origin_and_many_identical_rows_stay_exact():
    from embedlens.reduce import knn

    rng = np.random.default_rng(0)
    far = (rng.normal(size=(3000, 16)) * 0.05 + 100.0).astype(np.float32)
    truth, _ = knn.exact_knn(far, 10, n_jobs=2, include_self=True)
    assert knn.sampled_recall(far, truth, include_self=True)["knn_recall_sampled"] == 1.0
    broken = truth.copy()
    broken[:, 5:] = truth[rng.permutation(3000)][:, 5:]  # half of each list replaced by unrelated rows
    assert knn.sampled_recall(far, broken, include_self=True)["knn_recall_sampled"] == pytest.approx(0.5, abs=0.05)
    z = rng.normal(size=(3000, 8)).astype(np.float32)
    z[:1500] = z[0]  # half the rows identical: HNSW would lose the others' neighbours
    assert knn.duplicate_share(z) == pytest.approx(1499 / 3000)
    idx, _, info = knn.neighbor_graph(z, 5, n_jobs=2, include_self=True, exact_max=1000)
    assert info["knn_method"] == "exact (faiss)" and "repeat" in info["exact_because"]
