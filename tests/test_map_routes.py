"""The route that finds a map's k-NN graph: chosen by size, named in the params, its recall measured honestly,
and the same seed giving the same graph and map (NN-descent runs on a fixed thread count whatever numba's count)."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.neighbors.index import sample_rows
from embedlens.reduce.knn import map_graph, pick_route

from .conftest import skip_unless_installed

skip_unless_installed("pynndescent")
# pynndescent compiles its numba code in every process (tens of seconds): one worker pays it once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("nndescent")]

N, D, K = 700, 24, 14


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((12, D)) * 3
    return (centres[rng.integers(0, 12, N)] + rng.standard_normal((N, D))).astype(np.float32)


def brute_force(X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other rows by cosine, by a float64 matrix product over every row."""
    u = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
    s = u[rows] @ u.T
    s[np.arange(len(rows)), rows] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def nnd_graph(X):
    """NN-descent's graph with a cheap setting (so it misses neighbours), under two numba thread counts."""
    import numba

    graphs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        from embedlens.neighbors.nndescent import NNDescentIndex

        index = NNDescentIndex(X, k=K, seed=0, n_trees=1, n_iters=1, max_candidates=8)
        graphs.append((index, threads, numba.get_num_threads()))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return graphs


def test_auto_route_is_chosen_by_size_and_named(X):
    assert pick_route("auto", 1000, 5000) == "search"
    assert pick_route("auto", 5000, 5000) == "nndescent"
    assert pick_route("auto", 99_999) == "search"  # NN-descent pays only above the exhaustive search's range
    assert pick_route("exact", 10**6) == "exact"
    assert pick_route("auto", 10**6, k=90) == "nndescent" and pick_route("auto", 10**6, k=91) == "search"
    with pytest.raises(EmbedlensError, match="knn_route"):
        pick_route("hnsw", 10)
    nb, info, notes = map_graph(X, K, route="auto", nndescent_from=N, cache=False)
    assert info["knn_route"] == "nndescent" and info["knn_method"].startswith("nndescent")
    assert "NN-descent" in notes[0]
    nb, info, _ = map_graph(X, K, route="auto", cache=False)
    assert info["knn_route"] == "exact" and "knn_recall" not in info
    assert np.array_equal(nb.indices, brute_force(X, np.arange(N), K))


def test_nndescent_graph_is_exactly_scored_and_the_seed_alone_decides_it(X, nnd_graph):
    import numba

    from embedlens.neighbors.nndescent import GRAPH_THREADS

    (index, _, after), (other, threads, _) = nnd_graph
    assert after == 1  # the caller's numba thread count is restored
    assert np.array_equal(index.graph.indices, other.graph.indices), f"graph differs at {threads} numba threads"
    used = min(GRAPH_THREADS, numba.config.NUMBA_NUM_THREADS)
    assert index.info["nndescent_threads"] == other.info["nndescent_threads"] == used
    assert f"{used} thread" in index.name
    g = index.graph
    assert g.indices.shape == (N, K) and (g.indices != np.arange(N)[:, None]).all()
    u = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = np.einsum("id,ikd->ik", u.astype(np.float64), u[g.indices].astype(np.float64))
    assert np.allclose(g.scores, cos, atol=1e-5) and (np.diff(g.scores, axis=1) <= 1e-6).all()
    # Rows of the space read the graph; anything else is searched exactly.
    assert np.array_equal(index.query([3, 5], 4).indices, g.indices[[3, 5], :4])
    assert np.array_equal(index.query([3], K + 2).indices, brute_force(X, np.array([3]), K + 2))


def test_reported_graph_recall_is_a_direct_computation(X):
    from embedlens.neighbors.nndescent import NNDescentIndex

    cheap = NNDescentIndex(X, k=K, seed=0, n_trees=1, n_iters=1, max_candidates=8)
    from unittest import mock

    with mock.patch("embedlens.neighbors.nndescent.umap_settings",
                    return_value={"n_trees": 1, "n_iters": 1, "max_candidates": 8}):
        nb, info, _ = map_graph(X, K, route="nndescent", seed=0, cache=False)
    assert np.array_equal(nb.indices, cheap.graph.indices)
    rows = sample_rows(N, 256, 0)
    truth = brute_force(X, rows, K)
    direct = np.mean([len(set(a) & set(b)) / K for a, b in zip(nb.indices[rows], truth, strict=True)])
    assert 0.3 < direct < 1.0  # a cheap setting: some neighbours missed, so the figure is informative
    assert info["knn_recall"] == pytest.approx(direct, abs=5e-5)
    assert (info["knn_recall_k"], info["knn_recall_rows"]) == (K, 256)


def test_umap_names_the_route_and_schedule_and_same_seed_gives_the_same_map(X, monkeypatch):
    import umap as umap_learn

    from embedlens.reduce import umap as reduce_umap
    from embedlens.reduce.umap import LARGE_INIT, UMAPReducer, pick_init, schedule

    assert schedule(5000, None, None) == (500, 5.0) and schedule(50_000, None, None) == (200, 5.0)
    assert schedule(10**6, None, None) == (60, 10.0)
    assert schedule(10**6, 7, 3) == (7, 3.0)
    assert pick_init(10**6, 2, None) == LARGE_INIT == "random" and pick_init(50_000, 2, None) == "spectral"
    assert pick_init(10**6, 2, "pca") == "pca" and pick_init(4, 2, None) == pick_init(4, 2, "tswspectral") == "pca"
    monkeypatch.setattr(reduce_umap, "LARGE_FROM", N)  # this small input takes the big-vocabulary schedule
    seen = []
    real = umap_learn.UMAP

    def spy(**kw):
        seen.append((kw["n_epochs"], kw["negative_sample_rate"], kw["init"]))
        return real(**kw)

    monkeypatch.setattr(umap_learn, "UMAP", spy)

    def fit():
        r = UMAPReducer(seed=1, nndescent_from=N)
        return r, r.fit_transform(X)

    r1, y1 = fit()
    _, y2 = fit()
    assert r1.params_["knn_route"] == "nndescent" and 0 < r1.params_["knn_recall"] <= 1
    assert (r1.params_["n_epochs"], r1.params_["negative_sample_rate"], r1.params_["init"]) == (60, 10.0, LARGE_INIT)
    assert seen[0] == (60, 10.0, LARGE_INIT)
    assert np.array_equal(y1, y2)
    with pytest.raises(EmbedlensError, match="knn_route"):
        UMAPReducer(knn_route="fast").fit(X)
    with pytest.raises(EmbedlensError, match="negative_sample_rate"):
        UMAPReducer(negative_sample_rate=0).fit(X)
    with pytest.raises(EmbedlensError, match="init"):
        UMAPReducer(init="spectal").fit(X)


def test_tsne_takes_the_big_vocabulary_defaults_by_size_and_names_them(X, monkeypatch):
    from openTSNE import affinity

    from embedlens.reduce import tsne as reduce_tsne
    from embedlens.reduce.tsne import DEFAULT_PERPLEXITY, LARGE_PERPLEXITY, TSNEReducer, default_perplexity

    assert default_perplexity(100_000) == DEFAULT_PERPLEXITY == 30.0
    assert default_perplexity(100_001) == LARGE_PERPLEXITY == 10.0
    seen = []
    real = affinity.PerplexityBasedNN

    def spy(**kw):
        seen.append((kw["perplexity"], kw["knn_index"].indices.shape[1]))
        return real(**kw)

    monkeypatch.setattr(affinity, "PerplexityBasedNN", spy)
    short = {"n_iter": 30, "early_exaggeration_iter": 20}
    small = TSNEReducer(seed=0, **short).fit(X)
    assert (small.params_["perplexity"], small.params_["k_neighbors"], small.params_["knn_route"]) == (30.0, 90, "exact")
    monkeypatch.setattr(reduce_tsne, "LARGE_FROM", N)  # this small input takes the big-vocabulary defaults
    maps = []
    for _ in range(2):
        r = TSNEReducer(seed=0, nndescent_from=N, **short)
        maps.append(r.fit_transform(X))
        assert r.params_["perplexity"] == r.params_["perplexity_requested"] == 10.0
        assert r.params_["k_neighbors"] == 30 and r.params_["knn_route"] == "nndescent"
        assert 0 < r.params_["knn_recall"] <= 1 and r.params_["knn_recall_k"] == 30
    asked = TSNEReducer(seed=0, perplexity=30, nndescent_from=N, **short).fit(X)
    assert (asked.params_["perplexity"], asked.params_["k_neighbors"]) == (30.0, 90)
    assert seen == [(30.0, 90), (10.0, 30), (10.0, 30), (30.0, 90)]  # what openTSNE was given
    assert np.array_equal(maps[0], maps[1])


def test_opentsne_is_deterministic_for_a_seed_on_any_thread_count(X):
    from embedlens.reduce.tsne import TSNEReducer

    maps = [TSNEReducer(seed=0, n_jobs=j, n_iter=40, early_exaggeration_iter=20, negative_gradient_method=g,
                        knn_route="exact").fit_transform(X) for g in ("bh", "fft") for j in (1, 2)]
    assert np.array_equal(maps[0], maps[1]) and np.array_equal(maps[2], maps[3])


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="needs sched_setaffinity")
def test_a_one_core_machine_builds_the_two_thread_graph():
    """numba sizes its pool to the usable cores when imported: on one core NN-descent would run one thread
    and build another graph than every other machine."""
    import os
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import embedlens.reduce.umap as u; "
            "from embedlens.neighbors.nndescent import allow_graph_threads, graph_threads; "
            "allow_graph_threads(); import numba; print(graph_threads(), numba.config.NUMBA_NUM_THREADS)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["2", "2"]


def test_a_big_space_in_the_explorer_shares_its_maps_nndescent_graph_with_the_clusters_and_the_tsne(
        cache_dir, monkeypatch):
    """Above EXACT_MAX rows the explorer's graph is the t-SNE map's own (NN-descent at the map's k, found once):
    no 100-neighbour exhaustive search runs before the map, and the clusters read the same graph."""
    from embedlens.atlas import pipeline
    from embedlens.atlas.pipeline import QUALITY_SAMPLE, compute_projection
    from embedlens.lens import SpaceLens
    from embedlens.neighbors import nndescent
    from embedlens.reduce import knn as reduce_knn
    from embedlens.reduce import tsne as reduce_tsne
    from embedlens.reduce.options import ReduceOptions
    from embedlens.reduce.quality import sample_indices
    from embedlens.serve import explorer as explorer_module
    from embedlens.serve.explorer import Explorer
    from embedlens.serve.panels import Panel
    from embedlens.spaces.space import EmbeddingSpace

    n = 5200  # the map graph's disk cache starts at reduce.knn.CACHE_FROM rows
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, D)) * 3
    vectors = (centres[rng.integers(0, 40, n)] + rng.standard_normal((n, D))).astype(np.float32)
    lens = SpaceLens(EmbeddingSpace.from_arrays(vectors, [f"t{i}" for i in range(n)], name="big"))
    for module in (explorer_module, pipeline):  # where "a big space" is decided
        monkeypatch.setattr(module, "EXACT_MAX", n - 1)
    monkeypatch.setattr(reduce_tsne, "LARGE_FROM", n)
    monkeypatch.setattr(reduce_knn, "NNDESCENT_FROM", n)
    built = []
    real = nndescent.NNDescentIndex.__init__

    def spy(self, X, *args, **kwargs):
        built.append(kwargs.get("k"))
        real(self, X, *args, **kwargs)

    monkeypatch.setattr(nndescent.NNDescentIndex, "__init__", spy)
    explorer = Explorer([Panel(lens, index=0)], seed=0)
    try:
        panel = explorer.panels[0]
        graph = explorer.space_graph(panel, explorer.map_neighbors(panel, "tsne", 2))
        assert (graph.k, graph.method) == (30, "approx") and graph.backend.startswith("nndescent") and built == [30]
        truth = brute_force(vectors, sample_rows(n, 200, 1), 30)
        found = graph.indices[sample_rows(n, 200, 1)]
        recall = np.mean([len(set(a) & set(b)) / 30 for a, b in zip(found, truth, strict=True)])
        assert 0.8 < recall <= 1 and abs(graph.recall - recall) < 0.1  # the stored recall is a real measurement
        clusters = explorer.space_clusters(panel, "auto")
        assert "approx 30-NN graph (nndescent" in clusters.params["knn_source"]
        proj = compute_projection(panel.view, ReduceOptions("tsne", 2, seed=0, n_iter=30, early_exaggeration_iter=20))
        assert proj.params["knn_source"] == "cache" and proj.params["knn_route"] == "nndescent"
        assert proj.params["k_neighbors"] == 30 and built == [30]  # the map found the explorer's graph: no new search

        # The PCA map's faithfulness (what the page asks for on open) takes the same graph as its truth, and the
        # recall's query rows are searched exactly: the figure is the brute-force one.
        pca = compute_projection(panel.view, ReduceOptions("pca", 2, seed=0))
        searched = []
        real_build = reduce_knn.build_index
        monkeypatch.setattr(reduce_knn, "build_index", lambda *a, **kw: searched.append(1) or real_build(*a, **kw))
        faith = explorer.map_faithfulness(panel, "pca", 2, pca)
        assert faith["truth"]["exact"] is False and faith["truth"]["recall"] == round(graph.recall, 4)
        assert not searched and built == [30]
        rows = sample_indices(n, QUALITY_SAMPLE, 0)
        Y = pca.coords.astype(np.float64)
        d = ((Y[rows, None, :] - Y[None, :, :]) ** 2).sum(-1)
        d[np.arange(len(rows)), rows] = np.inf
        on_map = np.argsort(d, axis=1, kind="stable")[:, :10]
        expected = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(brute_force(vectors, rows, 10), on_map,
                                                                       strict=True)])
        assert faith["queries"] == len(rows) and abs(faith["recall"] - expected) < 1e-6
    finally:
        explorer.jobs.shutdown()
        explorer.index_jobs.shutdown()
