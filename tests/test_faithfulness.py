"""Where a map lies: each point's local recall, checked against brute force and against the map's recall@k."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.options import ReduceOptions
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


# -- maps: AtlasResult.local_recall, its truth, colours, the CLI and the one projection cache ---------------


@pytest.fixture(scope="module")
def faith_env(tiny_gpt2_dir, tmp_path_factory, module_cache):
    import embedlens

    from .conftest import CORPUS, MARKUP_TOKENS

    folder = tmp_path_factory.mktemp("faith-corpus")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(CORPUS + [" ".join(MARKUP_TOKENS)]) + "\n", encoding="utf-8")
    return {"lens": embedlens.load(str(tiny_gpt2_dir)), "cache": module_cache, "corpus": corpus,
            "model": str(tiny_gpt2_dir)}


@pytest.fixture
def fenv(faith_env, monkeypatch):
    monkeypatch.setenv("EMBEDLENS_CACHE", str(faith_env["cache"]))
    folder = faith_env["lens"].input.cache_folder()
    for old in [*folder.glob("knn-*"), *folder.glob("quality-truth-*")]:  # every test starts without k-NN graphs
        old.unlink()
    return faith_env


def _vectors(lens, rows=None) -> np.ndarray:
    x = np.asarray(lens.input.space.vectors, dtype=np.float32)
    return x if rows is None else x[rows]


def test_a_corpus_map_measures_against_a_search_among_its_rows(fenv):
    from embedlens.atlas import build_atlas

    result = build_atlas(fenv["lens"], corpus=str(fenv["corpus"]), reduce=ReduceOptions("pca"))
    rows = np.searchsorted(np.asarray(fenv["lens"].input.space.ids), result.ids)
    expected = brute_local_recall(_vectors(fenv["lens"], rows), result.coords, 10)
    np.testing.assert_allclose(result.local_recall, expected, atol=1e-7)
    truth = result.params["local_recall"]["truth"]
    assert truth["exact"] and f"among the {len(result):,} mapped rows" in truth["source"]
    q = result.quality_dict()
    picked = sample_indices(len(result), q["n_sample"], q["seed"])
    assert float(result.local_recall[picked].astype(np.float64).mean()) == pytest.approx(q["neighbor_recall"], abs=1e-6)


def test_a_whole_space_pca_map_measures_its_queries_until_a_graph_is_cached(fenv, monkeypatch):
    """A PCA map has no graph of its own: it measures the recall's query rows only (a graph of the whole
    space costs far more than the map), colouring by faithfulness builds the graph once, later maps reuse it."""
    from embedlens.atlas import build_atlas, pipeline
    from embedlens.neighbors.knn import cached_knn
    from embedlens.reduce.quality import sample_indices

    monkeypatch.setattr(pipeline, "QUALITY_SAMPLE", 100)  # fewer queries than points, as in a real vocabulary
    view = fenv["lens"].input
    assert cached_knn(view, 10) is None
    plain = build_atlas(fenv["lens"], all_tokens=True, reduce=ReduceOptions("pca"))
    assert cached_knn(view, 10) is None  # nothing was built
    assert "query rows only" in plain.params["local_recall"]["truth"]["source"]
    rows = sample_indices(len(view.space), 100, 0)
    measured = ~np.isnan(plain.local_recall)
    assert np.array_equal(np.flatnonzero(measured), rows)
    truth = brute_local_recall(_vectors(fenv["lens"]), plain.coords, 10)
    np.testing.assert_allclose(plain.local_recall[rows], truth[rows], atol=1e-7)
    assert float(plain.local_recall[rows].astype(np.float64).mean()) == pytest.approx(plain.quality.neighbor_recall, abs=1e-6)

    first = build_atlas(fenv["lens"], all_tokens=True, reduce=ReduceOptions("pca"), color="faithfulness")
    assert "built and cached" in first.params["local_recall"]["truth"]["source"]
    graph = cached_knn(view, 10)
    assert graph is not None and graph.method == "exact"
    np.testing.assert_array_equal(graph.indices, brute_knn(_vectors(fenv["lens"]), 10, "cosine"))
    np.testing.assert_allclose(first.local_recall, truth, atol=1e-7)
    again = build_atlas(fenv["lens"], all_tokens=True, reduce=ReduceOptions("pca"))
    assert again.params["local_recall"]["truth"]["source"] == "the space's cached k-NN graph"
    np.testing.assert_array_equal(again.local_recall, first.local_recall)


def test_a_whole_space_tsne_map_leaves_its_exact_graph_in_the_knn_cache(fenv, monkeypatch):
    from embedlens.atlas import build_atlas
    from embedlens.neighbors.knn import cached_knn

    from .test_atlas import _quick_tsne

    _quick_tsne(monkeypatch)
    result = build_atlas(fenv["lens"], all_tokens=True, reduce=ReduceOptions("tsne"), clusters="none")
    need = int(result.params["reducer"]["knn_k_stored"])
    graph = cached_knn(fenv["lens"].input, need)
    assert graph is not None and graph.k == need and graph.method == "exact"
    assert result.params["local_recall"]["truth"] == {"source": f"the map's own k-NN graph ({need} neighbours per "
                                                      "point)", "exact": True, "k_stored": need}
    np.testing.assert_allclose(result.local_recall, brute_local_recall(_vectors(fenv["lens"]), result.coords, 10),
                               atol=1e-7)


def test_faithfulness_colours_both_pages_on_a_fixed_zero_to_one_scale(fenv):
    from embedlens.atlas import build_atlas
    from embedlens.render.pointcloud import page_data

    result = build_atlas(fenv["lens"], corpus=str(fenv["corpus"]), reduce=ReduceOptions("pca"), color="faithfulness")
    marker = result.figure().data[0].marker
    np.testing.assert_array_equal(np.asarray(marker.color, dtype=np.float32), result.local_recall)
    assert marker.colorbar.title.text == "local recall@10" and (marker.cmin, marker.cmax) == (0, 1)
    bar = page_data(result)["colorbar"]
    assert bar["title"] == "local recall@10" and [t[1] for t in bar["ticks"]] == ["0", "0.25", "0.5", "0.75", "1"]
    result.local_recall = None  # nothing measured: token length, as for frequency without counts
    assert result.figure().data[0].marker.colorbar.title.text == "characters"


def test_cli_color_faithfulness_and_the_projection_the_explorer_opens_on(fenv, run_cli, tmp_path):
    import json

    import pyarrow.parquet as pq

    from embedlens.atlas.projection import load_projection, projection_path

    view = fenv["lens"].input
    path = projection_path(view.content_hash, "pca", 2, 0)
    path.unlink(missing_ok=True)
    out = tmp_path / "all"
    r = run_cli("map", "--model", fenv["model"], "--all", "--color", "faithfulness", "--out", out, "--no-png")
    assert r.code == 0, r
    table = pq.read_table(out / "points.parquet")
    local = table.column("local_recall").to_numpy()
    coords = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])
    np.testing.assert_allclose(local, brute_local_recall(_vectors(fenv["lens"]), coords, 10), atol=1e-7)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["color"] == "faithfulness" and manifest["params"]["local_recall"]["truth"]["exact"]
    assert "local recall@10" in (out / "map.html").read_text(encoding="utf-8")
    proj = load_projection(path, len(view.space))
    assert proj is not None and proj.method == "pca"
    np.testing.assert_array_equal(proj.coords, coords)
    np.testing.assert_array_equal(proj.local_recall, local)
    assert proj.params["quality"]["neighbor_recall"] == manifest["quality"]["neighbor_recall"]
    stamp = path.read_bytes()
    for other in (["--all", "--metric", "euclidean"], ["--corpus", fenv["corpus"]]):  # not the explorer's map
        r = run_cli("map", "--model", fenv["model"], *other, "--out", tmp_path / "other", "--no-png")
        assert r.code == 0, r
        assert path.read_bytes() == stamp


def test_a_projection_without_local_recall_gets_it_later(fenv):
    from embedlens.atlas.pipeline import add_local_recall, compute_projection

    view = fenv["lens"].input
    quick = compute_projection(view, ReduceOptions("pca"), local_recall=False)
    assert quick.local_recall is None and "local_recall" not in quick.params
    full = add_local_recall(view, quick)  # builds and caches the space's graph
    np.testing.assert_allclose(full.local_recall, brute_local_recall(_vectors(fenv["lens"]), quick.coords, 10),
                               atol=1e-7)
    again = compute_projection(view, ReduceOptions("pca"))  # the graph is cached now: measured at once
    np.testing.assert_array_equal(again.local_recall, full.local_recall)
    assert full.params["quality"] == again.params["quality"] == quick.params["quality"]
    assert full.params["local_recall"]["k"] == again.params["local_recall"]["k"] == 10
    assert "built and cached" in full.params["local_recall"]["truth"]["source"] and full.info()["has_local_recall"]
    assert again.params["local_recall"]["truth"]["source"] == "the space's cached k-NN graph"


@pytest.mark.browser
@pytest.mark.slow
def test_faithfulness_pages_in_chromium_show_the_colour_bar_and_markup_tokens_as_text(fenv, tmp_path, offline_page):
    from embedlens.atlas import build_atlas

    from .conftest import MARKUP_TOKENS

    result = build_atlas(fenv["lens"], corpus=str(fenv["corpus"]), reduce=ReduceOptions("pca"), color="faithfulness")
    n = len(result)
    side = int(np.ceil(np.sqrt(n)))  # a grid: hovering a point's position shows exactly that point
    result.coords = (np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0).astype(np.float32)
    result.renderer = "plotly"
    result.save(tmp_path / "plotly", png=False)
    page, seen = offline_page(tmp_path / "plotly" / "map.html")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return g && g._fullData && g.querySelector('.cbtitle'); }", timeout=30_000)
    assert page.evaluate("() => document.querySelector('.cbtitle').textContent") == "local recall@10"
    shown_range = page.evaluate("() => { const m = document.querySelector('.js-plotly-plot')._fullData[0].marker;"
                                " return [m.cmin, m.cmax]; }")
    assert shown_range == [0, 1]
    markup = [(i, d) for i, d in enumerate(result.display) if d in MARKUP_TOKENS]
    assert {d for _, d in markup} == set(MARKUP_TOKENS)
    for index, token in markup:
        pos = page.evaluate(
            """(i) => { const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
            const r = g.getBoundingClientRect();
            return [r.left + L._size.l + L.xaxis.l2p(g._fullData[0].x[i]),
                    r.top + L._size.t + L.yaxis.l2p(g._fullData[0].y[i])]; }""", index)
        page.mouse.move(2, 2)
        page.wait_for_function("() => document.querySelector('.hoverlayer').textContent === ''")
        page.mouse.move(pos[0] + 3, pos[1] + 3)
        page.mouse.move(pos[0], pos[1])
        wanted = f"id {int(result.ids[index])}frequency"
        page.wait_for_function("(w) => document.querySelector('.hoverlayer').textContent.includes(w)",
                               arg=wanted, timeout=10_000)
        assert page.evaluate("() => document.querySelector('.hoverlayer').textContent").startswith(token)
    page.screenshot(path=str(tmp_path / "plotly.png"))
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests
    result.renderer = "webgl"
    result.save(tmp_path / "webgl", png=False)
    page, seen = offline_page(tmp_path / "webgl" / "map.html")
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    assert "local recall@10" in page.evaluate("() => document.body.textContent")
    page.screenshot(path=str(tmp_path / "webgl.png"))
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests
