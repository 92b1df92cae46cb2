"""The true neighbours a map's recall is measured against: from the cached graph, a cached file, or a search.

Every route must give the figures of the definition (brute force in float64, ties by lower row), and a
whole-space map after the first must not search again.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.reduce.options import ReduceOptions
from embedlens.reduce.quality import (
    map_faithfulness,
    projection_quality,
    query_faithfulness,
    query_truth,
    query_truth_path,
    sample_indices,
)


def brute_knn_rows(x: np.ndarray, rows: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """The k nearest other rows of ``rows``: a stable argsort of float64 distances (ties: lower row first)."""
    p = np.asarray(x, dtype=np.float64)
    if metric == "cosine":
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        d = 1.0 - p[rows] @ p.T
    else:
        d = ((p[rows][:, None, :] - p[None, :, :]) ** 2).sum(-1)
    d[np.arange(len(rows)), rows] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def brute_quality(x: np.ndarray, y: np.ndarray, k: int, sample: int, seed: int, metric: str) -> tuple[float, float]:
    """(trustworthiness within the seeded sample, recall@k of the seeded queries among all points), literally."""
    rows = sample_indices(len(x), sample, seed)
    found = brute_knn_rows(y, rows, k, "euclidean")
    truth = brute_knn_rows(x, rows, k, metric)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found, strict=True)]))
    xs, ys, m = x[rows], y[rows], len(rows)
    p = np.asarray(xs, dtype=np.float64)
    if metric == "cosine":
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        dx = 1.0 - p @ p.T
    else:
        dx = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dx, np.inf)
    ny = brute_knn_rows(ys, np.arange(m), k, "euclidean")
    penalty = 0
    for i in range(m):  # rank of j in i's original order: 1 + the points strictly closer
        for j in ny[i]:
            rank = 1 + int((dx[i] < dx[i, j]).sum())
            penalty += max(rank - k, 0)
    trust = 1.0 - penalty * 2.0 / (m * k * (2.0 * m - 3.0 * k - 1.0))
    return trust, recall


@pytest.fixture(scope="module")
def points():
    """Clustered rows with exact duplicates (ties in the space) and a 2-D map that keeps some neighbours."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(10, 24)) * 2
    x = (centres[rng.integers(0, 10, 600)] + rng.normal(size=(600, 24))).astype(np.float32)
    x[50:60] = x[40]  # ten copies of one row
    y = (x[:, :2] + 0.4 * rng.normal(size=(600, 2))).astype(np.float32)
    return x, y


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_the_quality_block_from_the_query_rows_truth_equals_brute_force(points, metric):
    from embedlens.neighbors.index import Neighbors

    x, y = points
    expected = brute_quality(x, y, 10, 150, 2, metric)
    searched = projection_quality(x, y, 10, sample=150, seed=2, metric=metric)
    rows = sample_indices(len(x), 150, 2)
    truth = Neighbors(brute_knn_rows(x, rows, 12, metric), np.zeros((150, 12), np.float32), metric)
    given = projection_quality(x, y, 10, sample=150, seed=2, metric=metric, space_neighbors=truth)
    for q in (searched, given):
        assert q.trustworthiness == pytest.approx(expected[0], abs=1e-12)
        assert q.neighbor_recall == pytest.approx(expected[1], abs=1e-12)
    quality, local = query_faithfulness(x, y, 10, sample=150, seed=2, metric=metric, space_neighbors=truth)
    assert quality == searched and float(np.nanmean(local.astype(np.float64))) == pytest.approx(expected[1])
    # every point's local recall and the figures from one map search
    full = Neighbors(brute_knn_rows(x, np.arange(len(x)), 10, metric), np.zeros((len(x), 10), np.float32), metric)
    quality, local = map_faithfulness(x, y, full, 10, sample=150, seed=2, metric=metric)
    assert quality == searched
    found = brute_knn_rows(y, np.arange(len(x)), 10, "euclidean")
    brute_local = [len(set(a) & set(b)) / 10 for a, b in zip(full.indices, found, strict=True)]
    np.testing.assert_allclose(local, brute_local, atol=1e-7)


@pytest.fixture(scope="module")
def tiny_view(tiny_gpt2_dir, module_cache):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir)).input


def test_query_truth_is_searched_once_then_read_and_equals_brute_force(tiny_view, monkeypatch, module_cache):
    from embedlens.reduce import quality

    monkeypatch.setenv("EMBEDLENS_CACHE", str(module_cache))
    path = query_truth_path(tiny_view, 10, 60, 1, "cosine")
    path.unlink(missing_ok=True)
    x = np.asarray(tiny_view.space.vectors, dtype=np.float32)
    rows = sample_indices(len(x), 60, 1)
    expected = brute_knn_rows(x, rows, 10)
    first, info = query_truth(tiny_view, 10, sample=60, seed=1)
    assert info["source"].startswith("exact search") and path.is_file()
    np.testing.assert_array_equal(first.indices, expected)

    def no_search(*args, **kwargs):
        raise AssertionError("searched although the query rows' truth is cached")

    monkeypatch.setattr(quality, "_search_truth", no_search)
    again, info = query_truth(tiny_view, 10, sample=60, seed=1)
    assert path.name in info["source"]
    np.testing.assert_array_equal(again.indices, expected)
    np.testing.assert_array_equal(again.scores, first.scores)
    monkeypatch.undo()
    monkeypatch.setenv("EMBEDLENS_CACHE", str(module_cache))

    path.write_bytes(b"not an npz")  # damaged: searched again and rewritten
    redone, info = query_truth(tiny_view, 10, sample=60, seed=1)
    assert info["source"].startswith("exact search")
    np.testing.assert_array_equal(redone.indices, expected)
    other, _ = query_truth(tiny_view, 10, sample=60, seed=2)  # another seed, other rows, its own file
    np.testing.assert_array_equal(other.indices, brute_knn_rows(x, sample_indices(len(x), 60, 2), 10))


def test_query_truth_comes_from_the_cached_graph_when_there_is_one(tiny_view, monkeypatch, module_cache):
    from embedlens.neighbors.knn import build_knn

    monkeypatch.setenv("EMBEDLENS_CACHE", str(module_cache))
    graph, path, _ = build_knn(tiny_view, 12)
    try:
        nb, info = query_truth(tiny_view, 10, sample=60, seed=3)
        assert info["source"] == "the space's cached k-NN graph"
        x = np.asarray(tiny_view.space.vectors, dtype=np.float32)
        np.testing.assert_array_equal(nb.indices, brute_knn_rows(x, sample_indices(len(x), 60, 3), 10))
        assert not query_truth_path(tiny_view, 10, 60, 3, "cosine").exists()
    finally:
        path.unlink()
        path.with_suffix(".json").unlink()


def test_a_second_whole_space_map_reads_its_query_truth(tiny_view, monkeypatch, module_cache):
    from embedlens.atlas import build_atlas, pipeline

    monkeypatch.setenv("EMBEDLENS_CACHE", str(module_cache))
    monkeypatch.setattr(pipeline, "QUALITY_SAMPLE", 80)
    for old in [*tiny_view.cache_folder().glob("quality-truth-*"), *tiny_view.cache_folder().glob("knn-*")]:
        old.unlink()
    first = build_atlas(tiny_view, all_tokens=True, reduce=ReduceOptions("pca"), clusters="none")
    assert "their true neighbours: exact search" in first.params["local_recall"]["truth"]["source"]
    second = build_atlas(tiny_view, all_tokens=True, reduce=ReduceOptions("pca", 3), clusters="none")
    assert "(quality-truth-input-cosine-k10-q80-seed0.npz)" in second.params["local_recall"]["truth"]["source"]
    x = np.asarray(tiny_view.space.vectors, dtype=np.float32)
    for result in (first, second):
        assert result.quality.neighbor_recall == pytest.approx(brute_quality(x, result.coords, 10, 80, 0, "cosine")[1])


@pytest.mark.real_model
def test_smollm2_quality_block_to_three_decimals(smollm2):
    """SmolLM2's whole vocabulary: the figures from the cached query truth equal an independent computation."""
    from sklearn.manifold import trustworthiness

    x = np.asarray(smollm2.space.vectors, dtype=np.float32)
    y = x @ np.random.default_rng(0).standard_normal((x.shape[1], 2)).astype(np.float32)
    truth, _ = query_truth(smollm2.input, 10, sample=2000, seed=0)  # searched, or read from the cache
    q = projection_quality(x, y, 10, sample=2000, seed=0, space_neighbors=truth)
    rows = sample_indices(len(x), 2000, 0)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    y64 = y.astype(np.float64)
    yy = (y64**2).sum(1)
    hits = 0
    for start in range(0, len(rows), 500):  # float32 brute force over every row in blocks, itself excluded
        r = rows[start : start + 500]
        scores = unit[r] @ unit.T
        scores[np.arange(len(r)), r] = -np.inf
        nx = np.argpartition(-scores, 10, axis=1)[:, :10]
        dy = yy[r, None] + yy[None, :] - 2 * (y64[r] @ y64.T)
        dy[np.arange(len(r)), r] = np.inf
        ny = np.argpartition(dy, 10, axis=1)[:, :10]
        hits += sum(len(set(a) & set(b)) for a, b in zip(nx.tolist(), ny.tolist(), strict=True))
    recall = hits / (10 * len(rows))
    assert round(q.neighbor_recall, 3) == round(float(recall), 3)
    expected = trustworthiness(x[rows].astype(np.float64), y[rows].astype(np.float64), n_neighbors=10, metric="cosine")
    assert round(q.trustworthiness, 3) == round(float(expected), 3)
