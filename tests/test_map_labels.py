"""Reading a map: labelled clusters, word axes, colour by script, grid regions, results shown in notebooks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.options import ReduceOptions

HOSTILE = ["<script>alert(1)</script>", 'say "hi"', "&amp;", "<b>bold</b>", "it's", "a > b & c"]


# -- shared data --------------------------------------------------------------------------------------------


def planted(groups: int = 5, per: int = 60, dim: int = 24, seed: int = 0):
    """Random points in ``groups`` well-separated groups; labels ``g{group}_{i}``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, dim)) * 4.0
    X = np.concatenate([centres[g] + rng.standard_normal((per, dim)) for g in range(groups)]).astype(np.float32)
    truth = np.repeat(np.arange(groups), per)
    return X, truth, [f"g{t}_{i}" for i, t in enumerate(truth)]


def space_lens(X, labels, name="planted"):
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    return SpaceLens(EmbeddingSpace.from_arrays(X, labels, name=name))


def hostile_result(tmp_path=None, *, dims=2, method="umap"):
    """An AtlasResult over planted groups whose most frequent member of each group is a markup token."""
    from embedlens.atlas import AtlasResult
    from embedlens.atlas.clusters import find_clusters

    X, truth, labels = planted(groups=len(HOSTILE), per=40)
    first = np.searchsorted(truth, np.arange(len(HOSTILE)))
    labels = list(labels)
    for g, i in enumerate(first):
        labels[i] = HOSTILE[g]
    freq = np.ones(len(labels), dtype=np.int64)
    freq[first] = 1000
    rng = np.random.default_rng(1)
    coords = (np.eye(dims)[truth % dims] * 10 + rng.standard_normal((len(X), dims))).astype(np.float32)
    coords[:, 0] += truth * 3
    clustering = find_clusters(X, clusters="auto", display=labels, coords=coords, frequencies=freq, seed=0)
    return AtlasResult(coords=coords, ids=np.arange(len(X)), labels=labels, display=labels, frequencies=freq,
                       quality=None, model={"name": "planted"}, space="planted", method=method, dims=dims,
                       metric="cosine", seed=0, clustering=clustering)


# -- word axes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_axes_coordinates_equal_the_formula_on_random_data(metric):
    from embedlens.reduce.axes import AxesReducer

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 16)).astype(np.float32) * rng.uniform(0.5, 3, size=(300, 1)).astype(np.float32)
    U = X.astype(np.float64)
    if metric == "cosine":
        U = U / np.linalg.norm(U, axis=1, keepdims=True)
    a, b, c, d = U[10], U[20], U[30], U[40]
    reducer = AxesReducer(x_axis=(X[10], X[20]), y_axis=(X[30], X[40]), metric=metric)
    Y = reducer.fit_transform(X)
    x = (U - a) @ (b - a) / ((b - a) @ (b - a))
    y = (U - c) @ (d - c) / ((d - c) @ (d - c))
    np.testing.assert_allclose(Y[:, 0], x, atol=2e-5)
    np.testing.assert_allclose(Y[:, 1], y, atol=2e-5)
    assert abs(Y[10, 0]) < 1e-5 and abs(Y[20, 0] - 1) < 1e-5 and abs(Y[30, 1]) < 1e-5 and abs(Y[40, 1] - 1) < 1e-5
    assert "(u - a)·(b - a) / |b - a|^2" in reducer.params_["formula"]


def test_axes_without_y_take_the_top_principal_direction_of_what_is_left():
    from embedlens.reduce.axes import AxesReducer

    rng = np.random.default_rng(4)
    X = (rng.standard_normal((400, 12)) * np.linspace(3, 0.5, 12)).astype(np.float32)
    U = X / np.linalg.norm(X, axis=1, keepdims=True).astype(np.float64)
    Y = AxesReducer(x_axis=(X[0], X[1])).fit_transform(X)
    v = (U[1] - U[0]) / np.linalg.norm(U[1] - U[0])
    centred = U - U.mean(axis=0)
    rest = centred - np.outer(centred @ v, v)
    w = np.linalg.eigh(rest.T @ rest)[1][:, -1]
    w = w if w[np.argmax(np.abs(w))] > 0 else -w
    np.testing.assert_allclose(Y[:, 1], centred @ w, atol=2e-5)
    assert abs(float(w @ v)) < 1e-8


def test_axes_bad_input_is_one_line():
    from embedlens.reduce.axes import AxesReducer, resolve_axes

    X, _, labels = planted(groups=2, per=10)
    lens = space_lens(X, labels)
    with pytest.raises(EmbedlensError, match="same token"):
        resolve_axes(lens.input, [("g0_1", "id:1"), None])
    with pytest.raises(EmbedlensError, match=r"is 2 tokens.*tok:"):
        resolve_axes(lens.input, [("g0_1 g0_2", "g1_12"), None])
    with pytest.raises(EmbedlensError, match="not in the vocabulary"):
        resolve_axes(lens.input, [("nowhere", "g0_1"), None])
    with pytest.raises(EmbedlensError, match="same vector"):
        AxesReducer(x_axis=(X[0], X[0].copy())).fit(X)
    with pytest.raises(EmbedlensError, match="z axis needs a y axis"):
        AxesReducer(x_axis=(X[0], X[1]), z_axis=(X[2], X[3])).fit(X)


def test_map_cli_bad_axis_and_cluster_input_exit_2_with_one_line(run_cli, cache_dir, tiny_gpt2_dir, tmp_path):
    model = str(tiny_gpt2_dir)
    cases = [
        (["--method", "axes", "--x-axis", "the", "the"], "itself"),
        (["--method", "axes"], "--x-axis"),
        (["--x-axis", "a", "b"], "--method axes"),
        (["--clusters", "1"], "at least 2"),
        (["--clusters", "many"], "auto, none or a number"),
        (["--method", "axes", "--x-axis", "zzqqxx-not-a-word", "the"], "tokens"),
    ]
    for args, words in cases:
        r = run_cli("map", "--model", model, "--all", "--out", str(tmp_path / "m"), *args)
        assert r.code == 2, (args, r)
        lines = [x for x in r.err.splitlines() if x.startswith("embedlens: error:")]
        assert len(lines) == 1 and words in lines[0], (args, r.err)
        assert "Traceback" not in r.err


def test_map_cli_axes_and_script_colour_write_their_columns(run_cli, cache_dir, tiny_gpt2_dir, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "axes"
    r = run_cli("map", "--model", str(tiny_gpt2_dir), "--all", "--method", "axes", "--x-axis", "id:5", "id:9",
                "--color", "script", "--clusters", "3", "--no-png", "--out", str(out), "--json")
    assert r.code == 0, r
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "axes" and "(u - a)·(b - a)" in manifest["params"]["reducer"]["formula"]
    assert manifest["params"]["axes"]["x"]["ids"] == [5, 9]
    table = pq.read_table(out / "points.parquet")
    ids = table.column("token_id").to_numpy()
    x = table.column("x").to_numpy()
    assert abs(x[ids == 5][0]) < 1e-5 and abs(x[ids == 9][0] - 1) < 1e-5
    assert set(table.column("script").to_pylist()) <= {"Latin", "Cyrillic", "Greek", "CJK", "Arabic", "other letters",
                                                       "digits", "punctuation", "whitespace", "bytes", "special"}
    assert sorted(set(table.column("cluster").to_pylist())) == [0, 1, 2]
    assert len(manifest["clusters"]["clusters"]) == 3


# -- clusters -----------------------------------------------------------------------------------------------


def test_planted_clusters_are_found_and_labelled_by_their_members():
    from embedlens.atlas.clusters import find_clusters

    X, truth, labels = planted()
    coords = np.random.default_rng(0).standard_normal((len(X), 2))
    found = find_clusters(X, clusters="auto", display=labels, coords=coords, seed=0)
    assert len(found) == 5 and (found.assignment >= 0).all()
    for c in found.clusters:
        members = truth[found.assignment == c.id]
        assert np.all(members == members[0]) and c.size == 60  # each cluster is one planted group
        assert len(c.tokens) == 3 and all(t.startswith(f"g{members[0]}_") for t in c.tokens)
        assert c.label == " · ".join(c.tokens)
    again = find_clusters(X, clusters="auto", display=labels, coords=coords, seed=0)
    np.testing.assert_array_equal(again.assignment, found.assignment)


def test_a_number_of_clusters_merges_to_that_number_and_tightness_is_the_mean_pairwise_cosine():
    from embedlens.atlas.clusters import find_clusters

    X, truth, labels = planted(groups=6, per=40)
    found = find_clusters(X, clusters=3, display=labels, coords=np.zeros((len(X), 2)), seed=0)
    assert len(found) == 3 and sorted(np.unique(found.assignment).tolist()) == [0, 1, 2]
    for c in found.clusters:  # merging keeps whole groups together
        assert len(np.unique(truth[found.assignment == c.id])) == 2
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = U @ U.T
    n = len(X)
    assert found.map_mean_cosine == pytest.approx((cos.sum() - n) / (n * (n - 1)), abs=1e-5)
    c = found.clusters[0]
    rows = np.flatnonzero(found.assignment == c.id)
    sub = cos[np.ix_(rows, rows)]
    assert c.mean_cosine == pytest.approx((sub.sum() - len(rows)) / (len(rows) * (len(rows) - 1)), abs=1e-5)
    assert c.lift == pytest.approx(c.mean_cosine - found.map_mean_cosine, abs=1e-9)


def test_labels_follow_frequency_when_there_is_a_corpus():
    from embedlens.atlas.clusters import find_clusters

    X, truth, labels = planted(groups=3, per=30)
    freq = np.zeros(len(X), dtype=np.int64)
    freq[[5, 7, 9]] = [30, 20, 10]
    found = find_clusters(X, display=labels, coords=np.zeros((len(X), 2)), frequencies=freq, seed=0)
    group0 = next(c for c in found.clusters if found.assignment[5] == c.id)
    assert group0.tokens == ["g0_5", "g0_7", "g0_9"] and found.label_by == "frequency"


@pytest.mark.parametrize("bad", ["1", 0, -3, "lots", 2.5, True])
def test_clusters_option_is_checked(bad):
    from embedlens.atlas.clusters import check_clusters

    with pytest.raises(EmbedlensError):
        check_clusters(bad)
    assert check_clusters("AUTO") == "auto" and check_clusters("7") == 7 and check_clusters("none") == "none"


def test_points_parquet_and_manifest_hold_the_clusters_and_load_back(tmp_path):
    import pyarrow.parquet as pq

    from embedlens.atlas import AtlasResult

    result = hostile_result()
    result.save(tmp_path / "out", png=False)
    table = pq.read_table(tmp_path / "out" / "points.parquet")
    np.testing.assert_array_equal(table.column("cluster").to_numpy(), result.clustering.assignment)
    block = json.loads((tmp_path / "out" / "manifest.json").read_text())["clusters"]
    assert {"id", "size", "label", "mean_cosine", "lift"} <= set(block["clusters"][0])
    assert "full space" in block["found_on"] and block["map_mean_cosine"] == round(result.clustering.map_mean_cosine, 4)
    back = AtlasResult.load(tmp_path / "out")
    assert [c.label for c in back.clustering.clusters] == [c.label for c in result.clustering.clusters]


# -- label placement ------------------------------------------------------------------------------------------


def test_place_labels_never_overlap():
    from embedlens.render.labels import overlaps, place_labels

    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 300, size=(200, 2))
    sizes = rng.uniform(10, 60, size=(200, 2))
    boxes = place_labels(anchors, sizes, bounds=(0, 0, 300, 300))
    assert not overlaps(boxes) and 10 < int((~np.isnan(boxes[:, 0])).sum()) < 200
    kept = boxes[~np.isnan(boxes[:, 0])]
    assert (kept[:, 0] >= 0).all() and (kept[:, 3] <= 300).all()


@pytest.mark.parametrize("dims", [2, 3])
def test_png_labels_do_not_overlap(dims):
    from embedlens.render.atlas import draw_atlas
    from embedlens.render.labels import overlaps

    result = hostile_result(dims=dims)
    fig, texts, boxes = draw_atlas(result, dpi=80)
    try:
        assert len(texts) >= len(result.clustering.clusters) and not overlaps(boxes)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        drawn = np.array([[e.x0, e.y0, e.x1, e.y1] for e in (t.get_bbox_patch().get_window_extent(renderer)
                                                           for t in texts)])
        assert not overlaps(drawn)  # the boxes as matplotlib really draws them
        shown = {t.get_text() for t in texts}
        assert {c.label for c in result.clustering.clusters} <= shown  # every cluster named (room enough here)
    finally:
        fig.clear()


def test_plotly_cluster_annotations_do_not_overlap_and_are_escaped():
    from embedlens.render.atlas import cluster_label_boxes
    from embedlens.render.labels import overlaps

    result = hostile_result()
    fig = result.figure().to_dict()
    notes = fig["layout"]["annotations"]
    boxes, _, _ = cluster_label_boxes(result)
    assert len(notes) == int((~np.isnan(boxes[:, 0])).sum()) >= 4 and not overlaps(boxes)
    assert all("<script>" not in a["text"] for a in notes)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in a["text"] for a in notes)
    assert any('say "hi"' in a["text"] for a in notes)  # quotes are left as they are (Plotly shows &quot; literally)


# -- script ---------------------------------------------------------------------------------------------------


def test_script_classes():
    from embedlens.writing_systems import classify_scripts, script_names

    cases = {"␣Paris": "Latin", "Москва": "Cyrillic", "αβγ": "Greek", "東京": "CJK", "ひらがな": "CJK", "한국": "CJK",
             "مرحبا": "Arabic", "עברית": "other letters", "123": "digits", "␣42": "digits", "...": "punctuation",
             "😀": "punctuation", "␣": "whitespace", "↵↵": "whitespace", "⟨U+200B⟩": "whitespace", "⟨0xE2⟩": "bytes",
             "⟨0xE2⟩⟨0x80⟩": "bytes", "⟪<|im_start|>⟫": "special", "a⟨0xE2⟩": "Latin", "x1": "Latin",
             "Mосква": "Cyrillic"}
    assert dict(zip(cases, script_names(classify_scripts(list(cases))), strict=True)) == cases


def test_script_classes_are_vectorised_over_a_large_vocabulary():
    import time

    from embedlens.writing_systems import classify_scripts, script_names

    words = ["␣the", "Москва", "東京", "12", "⟨0xE2⟩", ",", "␣Ελλάδα"] * 37_450  # 262,150 tokens
    started = time.perf_counter()
    classes = classify_scripts(words)
    assert time.perf_counter() - started < 5.0
    assert script_names(classes[:7]) == ["Latin", "Cyrillic", "CJK", "digits", "bytes", "punctuation", "Greek"]


def test_script_colour_draws_one_legend_entry_per_script():
    from embedlens.atlas import AtlasResult

    labels = ["␣cat", "кот", "猫", "7", ",", "␣dog", "собака"]
    result = AtlasResult(coords=np.random.default_rng(0).standard_normal((7, 2)).astype(np.float32),
                         ids=np.arange(7), labels=labels, display=labels, frequencies=None, quality=None, model={},
                         space="s", method="pca", dims=2, metric="cosine", seed=0, color="script")
    fig = result.figure()
    names = [t.name for t in fig.data]
    assert names == ["Latin", "Cyrillic", "CJK", "digits", "punctuation"] and fig.layout.showlegend
    assert [len(t.x) for t in fig.data] == [2, 2, 1, 1, 1]


# -- grid regions ---------------------------------------------------------------------------------------------


def grid_map(n=48, seed=0):
    """A GridMap whose top tokens form four quadrant regions, one 3x3 island and scattered single cells."""
    from embedlens.grid.result import GridMap

    ids = np.zeros((n, n), dtype=np.int64)
    ids[: n // 2, n // 2:] = 1
    ids[n // 2:, : n // 2] = 2
    ids[n // 2:, n // 2:] = 3
    ids[5:8, 5:8] = 4  # an island inside region 0
    ids[n - 8, 3] = 5  # a single cell: too small to name
    names = np.array(["␣north", "<script>", "&amp;", 'say "x"', "island", "dot"], dtype=object)
    flat = ids.reshape(-1)
    top = np.stack([flat, (flat + 1) % 6, (flat + 2) % 6, (flat + 3) % 6, (flat + 4) % 6], axis=1)
    xs = np.linspace(-1, 1, n)
    x, y = np.meshgrid(xs, xs)
    probs = np.tile(np.array([0.5, 0.2, 0.1, 0.1, 0.1], dtype=np.float32), (n * n, 1))
    return GridMap(config={"name": "toy", "n_layers": 2, "spacing": 0.1, "dtype": "float32"}, grid_size=n, layer=1,
                   method="pca", x=x.reshape(-1), y=y.reshape(-1), top5_ids=top, top5_probs=probs,
                   top5_tokens=names[top], top5_display=names[top]), ids


def test_token_regions_are_the_connected_regions_of_equal_top_tokens():
    from embedlens.render.grid import token_regions

    gm, ids = grid_map()
    regions = token_regions(gm)
    assert sorted(regions["token"][:2].tolist()) == [1, 3]  # largest first; the single cell is left out
    assert regions["token"][2:].tolist() == [2, 0, 4]
    assert regions["area"].tolist() == [576, 576, 575, 576 - 9, 9]
    assert regions["token"].tolist() == ids.reshape(-1)[regions["cell"]].tolist()  # each label sits in its region
    island = regions["cell"][4]
    assert divmod(int(island), 48) == (6, 6)  # the centre cell of the 3x3 island
    from scipy import ndimage

    for token in range(6):  # the same regions as scipy.ndimage.label, token by token
        labelled, count = ndimage.label(ids == token)
        ours = np.unique(regions["region"][(ids == token).reshape(-1)])
        assert len(ours) == count


def test_grid_outputs_name_regions_once_and_say_every_2nd_cell(tmp_path):
    from embedlens.render.grid import check_cell_labels, ordinal, region_trace, write_grid_png

    gm, _ = grid_map(n=60)
    assert check_cell_labels(None, 60) == "both" and check_cell_labels(None, 40) == "cells"
    assert [ordinal(k) for k in (1, 2, 3, 4, 11, 12, 13, 21, 22, 102)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd"]
    trace = region_trace(gm).to_plotly_json()
    assert sorted(trace["text"]) == sorted(["␣north", "&lt;script&gt;", "&amp;amp;", 'say "x"', "island"])
    assert trace["textfont"]["size"][0] > trace["textfont"]["size"][-1]  # sized by area
    fig = gm.figure().to_dict()
    assert len(fig["data"]) == 2 and fig["data"][1]["mode"] == "text"
    path = write_grid_png(gm, tmp_path / "g.png", max_display_size=30, figsize=(6, 6), dpi=60)
    assert path.stat().st_size > 1000
    with pytest.raises(EmbedlensError):
        check_cell_labels("all", 10)


def test_grid_cli_cell_labels(run_cli, cache_dir, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "grid"
    r = run_cli("grid", "--model", str(tiny_gpt2_dir), "--grid-size", "12", "--cell-labels", "regions",
                "--output-dir", str(out), "--json")
    assert r.code == 0, r
    assert json.loads((out / "manifest.json").read_text())["cell_labels"] == "regions"
    html = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert '"mode":"text"' in html.replace(" ", "")  # the region labels' text trace
    r = run_cli("grid", "--model", str(tiny_gpt2_dir), "--grid-size", "12", "--cell-labels", "all",
                "--output-dir", str(out))
    assert r.code == 2


def test_grid_png_title_wording():
    from embedlens.render.grid import _plan

    source = open(_plan.__code__.co_filename, encoding="utf-8").read()
    assert "{stride}th" not in source and "every {ordinal(stride)} cell" in source


# -- notebooks ------------------------------------------------------------------------------------------------


def test_repr_html_embeds_plotly_once_and_references_no_network():
    from embedlens.render import notebook

    result = hostile_result()
    notebook.reset()
    first = result._repr_html_()
    second = result._repr_html_()
    assert len(first) > 3_000_000 > len(second)  # the bundle only once
    from plotly.offline import get_plotlyjs

    assert first.count(get_plotlyjs()) == 1 and get_plotlyjs() not in second
    for html in (first.replace(get_plotlyjs(), ""), second):  # Plotly's own bundle holds URL strings it never loads
        assert not re.search(r"https?:|//cdn", html), re.search(r".{60}https?:.{60}", html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in second and "<script>alert(1)" not in second
    assert result.figure().to_dict()["data"][0]["type"] == "scattergl"


def test_grid_and_graph_results_show_themselves_offline(hostile_space, cache_dir):
    from embedlens.graph import build_graph, layout_graph
    from embedlens.render import notebook

    gm, _ = grid_map(n=20)
    lens, truth, leaders = hostile_space
    graph = build_graph(lens, ["g0_1", "g1_31"], k=5, use_cache=False)
    assert graph.positions is None
    notebook.reset()
    for result in (gm, graph):
        html = result._repr_html_()
        body = html.replace(__import__("plotly.offline").offline.get_plotlyjs(), "")
        assert "Plotly.newPlot" in html and not re.search(r"https?:", body)
        assert result.figure().to_dict()["data"]
    assert "20x20" in gm._repr_html_() and "2 seeds" in graph._repr_html_()
    assert graph.positions is not None  # laid out (layout_graph) for the figure
    assert layout_graph


def test_context_and_logit_lens_results_show_themselves_offline(cache_dir, tiny_gpt2_dir):
    import embedlens
    from embedlens.contextual import context_map
    from embedlens.render import notebook

    lens = embedlens.load(str(tiny_gpt2_dir))
    results = [context_map(lens, ["the cat sat on the mat", "a dog ran"], reduce=ReduceOptions("pca"), progress=False)]
    try:
        from embedlens.logitlens import logit_lens
    except ImportError:  # the logit lens is optional here
        logit_lens = None
    if logit_lens is not None:
        results.append(logit_lens(lens, "the cat sat on the mat"))
    notebook.reset()
    notebook._STATE["plotly_sent"] = True  # the bundle is checked elsewhere; here only what follows it
    for result in results:
        html = result._repr_html_()
        assert "Plotly.newPlot" in html and not re.search(r"https?:", html)
        assert result.figure().to_dict()["data"]


@pytest.mark.browser
def test_repr_html_and_maps_render_offline_and_read_hostile_labels_exactly(tmp_path, offline_page):
    from embedlens.render import notebook

    result = hostile_result()
    notebook.reset()
    page_path = tmp_path / "notebook.html"
    page_path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{result._repr_html_()}"
                         f"{result._repr_html_()}</body></html>", encoding="utf-8")
    page, seen = offline_page(page_path)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 2
    labels = {c.label for c in result.clustering.clusters}
    shown = set(page.eval_on_selector_all(".annotation-text", "els => els.map(e => e.textContent)"))
    assert labels <= shown, (labels, shown)
    assert not seen.dialogs and not seen.errors
    assert all(r.startswith(("file:", "data:", "blob:")) for r in seen.requests), seen.requests

    result.renderer = "webgl"  # the light WebGL page: labels are DOM text, placed without overlaps
    result.save(tmp_path / "gl", png=False)
    page, seen = offline_page(tmp_path / "gl" / "map.html")
    page.wait_for_selector("html[data-drawn='1']", timeout=30_000)
    texts = page.eval_on_selector_all(".em-label", "els => els.filter(e => e.style.display !== 'none')"
                                                   ".map(e => e.textContent)")
    assert set(texts) <= labels and len(texts) >= 3
    boxes = page.evaluate("window.embedlensMap.labelBoxes()")
    from embedlens.render.labels import overlaps

    assert len(boxes) == len(texts) and not overlaps(np.array([b["box"] for b in boxes]))
    assert not seen.dialogs and not seen.errors


# -- the real model -------------------------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_axes_equal_the_formula_and_clusters_are_labelled(smollm2, use_shared_cache):
    from embedlens.atlas import build_atlas
    from embedlens.corpus.frequencies import count_tokens
    from embedlens.corpus.reading import open_corpus

    with pytest.raises(EmbedlensError, match=r"'queen' is 2 tokens \(que, en\).*tok:Ġqueen"):
        build_atlas(smollm2, reduce=ReduceOptions("axes", x_axis=["man", "queen"]), progress=False)
    counts = count_tokens(smollm2, open_corpus(["lee"]), progress=False)  # counted once for both maps
    result = build_atlas(smollm2, reduce=ReduceOptions("axes", x_axis=["man", "woman"], y_axis=["tok:Ġking", "tok:Ġqueen"]),
                         frequencies=counts)
    rows = np.searchsorted(np.asarray(smollm2.space.ids), result.ids)
    U = np.asarray(smollm2.space.vectors[rows], dtype=np.float64)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    for k, axis in enumerate("xy"):
        ra, rb = result.params["axes"][axis]["rows"]
        a, b = smollm2.space.vectors[ra].astype(np.float64), smollm2.space.vectors[rb].astype(np.float64)
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
        np.testing.assert_allclose(result.coords[:, k], (U - a) @ (b - a) / ((b - a) @ (b - a)), atol=1e-4)
    x = result.coords[:, 0]
    assert abs(x[result.ids == smollm2.space.ids[result.params["axes"]["x"]["rows"][0]]][0]) < 1e-5
    assert abs(x[result.ids == smollm2.space.ids[result.params["axes"]["x"]["rows"][1]]][0] - 1) < 1e-5
    assert result.params["axes"]["x"]["display"] == ["man", "woman"]
    assert result.params["axes"]["y"]["display"] == ["␣king", "␣queen"]

    clustered = build_atlas(smollm2, reduce=ReduceOptions("pca"), clusters=12, frequencies=counts)
    c = clustered.clustering
    assert len(c) == 12 and c.label_by == "frequency" and (c.assignment >= 0).all()
    assert all(cl.label and cl.mean_cosine > c.map_mean_cosine - 0.2 for cl in c.clusters)
    with pytest.raises(EmbedlensError, match="tok:"):
        build_atlas(smollm2, reduce=ReduceOptions("axes", x_axis=["embedlens", "man"]), progress=False)


# -- the explorer ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_space():
    X, truth, labels = planted(groups=len(HOSTILE), per=30)
    first = np.searchsorted(truth, np.arange(len(HOSTILE)))
    labels = list(labels)
    for g, i in enumerate(first):
        labels[i] = HOSTILE[g]
        X[i] = X[truth == g].mean(axis=0)  # the most central member: it leads its cluster's label
    lens = space_lens(X, labels, name="hostile")
    return lens, truth, [lens.space.display[i] for i in first]


def test_explorer_serves_clusters_and_word_axes(hostile_space):
    pytest.importorskip("starlette")
    import time

    from starlette.testclient import TestClient

    from embedlens.serve import create_app

    lens, truth, leaders = hostile_space
    with TestClient(create_app([lens]), base_url="http://127.0.0.1") as client:
        for _ in range(600):
            body = client.get("/api/clusters", params={"space": 0, "n": "auto"}).json()
            if body["job"]["state"] in ("ready", "error"):
                break
            time.sleep(0.05)
        assert body["job"]["state"] == "ready", body
        assignment = np.array(body["assignment"])
        body = body["result"]
        assert len(body["clusters"]) == len(HOSTILE)
        for c in body["clusters"]:
            assert len(np.unique(truth[assignment == c["id"]])) == 1
        assert {c["tokens"][0] for c in body["clusters"]} == set(leaders)
        r = client.get("/api/axes", params={"space": 0, "xa": "g0_1", "xb": "g1_31"}).json()
        coords = np.array(r["coords"])
        assert coords.shape == (len(truth), 2) and abs(coords[1, 0]) < 1e-5 and abs(coords[31, 0] - 1) < 1e-5
        assert r["titles"][0] == "g0_1 → g1_31" and "|b - a|^2" in r["formula"]
        bad = client.get("/api/axes", params={"space": 0, "xa": "g0_1", "xb": "g0_1"})
        assert bad.status_code == 400 and "same token" in bad.json()["error"]
        bad = client.get("/api/axes", params={"space": 0, "xa": "g0_1", "xb": "g1_31", "ya": "g0_2"})
        assert bad.status_code == 400
        bad = client.get("/api/clusters", params={"space": 0, "n": "1"})
        assert bad.status_code == 400


@pytest.mark.browser
@pytest.mark.slow
def test_explorer_lists_clusters_with_exact_labels_and_a_click_selects_their_tokens(hostile_space):
    pytest.importorskip("uvicorn")
    from playwright.sync_api import sync_playwright

    from embedlens.serve import ServerThread, create_app

    from .conftest import CHROMIUM_ARGS

    lens, truth, leaders = hostile_space
    with ServerThread(create_app([lens])) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            page.click("#clusters-form button")
            page.wait_for_selector("#clusters-list li", timeout=60_000)
            labels = page.eval_on_selector_all("#clusters-list .cluster-label", "els => els.map(e => e.textContent)")
            assert len(labels) == len(HOSTILE)
            assert sorted(label.split(" · ")[0] for label in labels) == sorted(leaders), labels
            assert "<script>alert(1)</script>" in leaders and "&amp;" in leaders and 'say␣"hi"' in leaders
            page.click("#clusters-list li:nth-child(1)")  # selects the cluster's tokens on the map
            page.wait_for_function("() => embedlens.state.panels[0].map.selected().length === 30", timeout=20_000)
            shown = page.evaluate("() => { const P = embedlens.state.panels[0];"
                                  " return Array.from(P.map.selected(), (r) => P.points.display[r]); }")
            assert len(shown) == 30
            groups = {int(s.split("_")[0][1:]) for s in shown if re.fullmatch(r"g\d+_\d+", s)}
            assert len(groups) == 1 and len([s for s in shown if s in leaders]) == 1  # one planted group, whole
            page.select_option("#method", "axes")
            page.fill("#axis-xa", "g0_1")
            page.fill("#axis-xb", "g1_31")
            page.click("#axes-form button")
            # the earlier map also had 180 points: wait for the axes map's own x title, not the point count
            page.wait_for_function("() => Array.from(document.querySelectorAll('.plot .em-axis'),"
                                   " (e) => e.textContent).includes('g0_1 → g1_31')", timeout=20_000)
            assert page.eval_on_selector(".plot", "e => e.dataset.drawn") == "180"
            assert not dialogs
        finally:
            browser.close()


# -- the notebook example -------------------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_the_notebook_example_runs_top_to_bottom_offline(smollm2, use_shared_cache, monkeypatch):
    """docs/examples.ipynb in a real Jupyter kernel (nbclient + ipykernel); without them, its code as a script."""
    from pathlib import Path

    import nbformat

    path = Path(__file__).resolve().parents[1] / "docs" / "examples.ipynb"
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        from nbclient import NotebookClient
    except ImportError:
        NotebookClient = None
    if NotebookClient is not None:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"]
        html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
        assert len(html) == 2 and sum("Plotly.newPlot" in h for h in html) == 2
        assert sum(len(h) > 3_000_000 for h in html) == 1  # Plotly's JavaScript embedded once
        assert not any(re.search(r"""(src|href)=["']https?:""", h) for h in html[1:])
    else:
        scope: dict = {}
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, str(path), "exec"), scope)  # noqa: S102 - our own example
        assert scope["clustered"].clustering is not None and scope["axes"].method == "axes"
