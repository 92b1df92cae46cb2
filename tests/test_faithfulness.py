"""Where a map lies: each point's local recall, checked against brute force and against the map's recall@k."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.quality import (
    local_recall,
    map_faithfulness,
    map_recall,
    projection_quality,
    sample_indices,
)


def brute_knn(points: np.ndarray, k: int, metric: str = "euclidean") -> np.ndarray:
    """Each row's k nearest other rows: argsort of the whole float64 distance matrix (ties: lower row first)."""
    p = np.asarray(points, dtype=np.float64)
    if metric == "cosine":
        u = p / np.linalg.norm(p, axis=1, keepdims=True)
        d = 1.0 - u @ u.T
    else:
        d = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def brute_local_recall(x: np.ndarray, y: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    truth, found = brute_knn(x, k, metric), brute_knn(y, k)
    return np.array([len(set(t) & set(f)) / k for t, f in zip(truth.tolist(), found.tolist(), strict=True)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 40)) * 3
    x = (centres[rng.integers(0, 12, 700)] + rng.normal(size=(700, 40))).astype(np.float32)
    return x


@pytest.mark.parametrize("dims", [2, 3])
def test_local_recall_equals_brute_force(data, dims):
    rng = np.random.default_rng(dims)
    y = (data[:, :dims] + 0.5 * rng.normal(size=(len(data), dims))).astype(np.float32)  # a map that keeps some
    truth = brute_knn(data, 10, "cosine")
    got = local_recall(truth, y, 10)
    expected = brute_local_recall(data, y, 10)
    assert got.dtype == np.float32 and got.shape == (len(data),)
    np.testing.assert_allclose(got, expected, atol=1e-7)
    assert 0.02 < got.mean() < 0.98 and len(np.unique(got)) > 3  # neither trivial nor constant
    np.testing.assert_allclose(local_recall(truth[:, :5], y, 5), brute_local_recall(data, y, 5), atol=1e-7)


def test_its_mean_over_the_query_rows_is_the_map_recall(data):
    y = np.random.default_rng(3).normal(size=(len(data), 2)).astype(np.float32) + data[:, :2]
    truth = brute_knn(data, 12, "cosine")  # a wider graph: its first 10 columns are used
    local = local_recall(truth, y, 10)
    rows = sample_indices(len(data), 200, 5)
    recall = map_recall(data, y, 10, sample=200, seed=5, metric="cosine")
    assert float(local[rows].astype(np.float64).mean()) == pytest.approx(recall, abs=1e-6)
    assert abs(float(local.mean()) - recall) > 1e-4  # the sample is a sample: the test would see a wrong row set
    from embedlens.neighbors.index import Neighbors

    graph = Neighbors(truth, np.zeros(truth.shape, dtype=np.float32), "cosine")
    quality, both = map_faithfulness(data, y, graph, 10, sample=200, seed=5, metric="cosine")
    assert quality == projection_quality(data, y, 10, sample=200, seed=5, metric="cosine")
    np.testing.assert_array_equal(both, local)


def test_an_approximate_truth_is_replaced_by_exact_search_on_the_query_rows(data):
    from embedlens.neighbors.index import Neighbors

    y = data[:, :2] + np.random.default_rng(4).normal(size=(len(data), 2)).astype(np.float32)
    exact = brute_knn(data, 10, "cosine")
    wrong = np.roll(exact, 1, axis=0)  # a poor "approximate" graph
    graph = Neighbors(wrong, np.zeros(wrong.shape, dtype=np.float32), "cosine")
    quality, local = map_faithfulness(data, y, graph, 10, sample=100, seed=1, metric="cosine", truth_exact=False)
    rows = sample_indices(len(data), 100, 1)
    assert quality.neighbor_recall == map_recall(data, y, 10, sample=100, seed=1, metric="cosine")
    assert float(local[rows].astype(np.float64).mean()) == pytest.approx(quality.neighbor_recall, abs=1e-6)
    others = np.setdiff1d(np.arange(len(data)), rows)
    np.testing.assert_allclose(local[others], local_recall(wrong, y, 10)[others])


def test_bad_inputs_name_the_parameter(data):
    y = data[:, :2]
    truth = brute_knn(data, 10, "cosine")
    with pytest.raises(EmbedlensError, match="truth_indices has 699 rows"):
        local_recall(truth[:-1], y)
    with pytest.raises(EmbedlensError, match="k must be an integer from 1 to 10"):
        local_recall(truth, y, 11)
    with pytest.raises(EmbedlensError, match="rows from 0 to 699"):
        local_recall(truth + 1, y)
    with pytest.raises(EmbedlensError, match="integer matrix"):
        local_recall(truth.astype(np.float32), y)
