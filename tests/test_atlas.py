"""The vocabulary atlas: selection, coordinates, outputs, CLI errors, and the HTML in a real browser."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.options import ReduceOptions

from .conftest import CORPUS, MARKUP_TOKENS

TEXT = "\n".join(CORPUS + ["Markup tokens: " + " ".join(MARKUP_TOKENS) + " [/b] <br>"]) + "\n"


@pytest.fixture(scope="module")
def atlas_env(tiny_gpt2_dir, tmp_path_factory, module_cache):
    """The tiny GPT-2 lens (cached once for this module), its tokenizer, and a small corpus file."""
    cache = module_cache
    import embedlens

    lens = embedlens.load(str(tiny_gpt2_dir))
    folder = tmp_path_factory.mktemp("atlas-corpus")
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    return {"lens": lens, "cache": cache, "corpus": corpus, "model": str(tiny_gpt2_dir)}


@pytest.fixture
def env(atlas_env, monkeypatch):
    monkeypatch.setenv("EMBEDLENS_CACHE", str(atlas_env["cache"]))
    return atlas_env


def _direct_counts(lens, text: str) -> Counter:
    """Counts of the way embedlens counts a corpus: each line a document, tokenized alone, no special tokens."""
    return Counter(i for line in text.split("\n") if line.strip()
                   for i in lens.fast_tokenizer.encode(line, add_special_tokens=False).ids)


def _expected_ids(lens, text: str, min_count: int) -> list[int]:
    special = lens.space.special
    return sorted(i for i, c in _direct_counts(lens, text).items() if c >= min_count and not special[i])


def test_parquet_has_one_row_per_selected_token_and_the_result_coordinates(env, tmp_path):
    import pyarrow.parquet as pq

    from embedlens.atlas import write_atlas

    lens = env["lens"]
    result = write_atlas(lens, tmp_path / "out", corpus=str(env["corpus"]), reduce=ReduceOptions("pca"))
    table = pq.read_table(tmp_path / "out" / "points.parquet")
    expected = _expected_ids(lens, TEXT, 1)
    assert table.column_names == ["token_id", "token", "display", "frequency", "x", "y", "local_recall"]
    np.testing.assert_array_equal(table.column("local_recall").to_numpy(), result.local_recall)
    assert table.column("token_id").to_pylist() == expected == result.ids.tolist()
    counts = _direct_counts(lens, TEXT)
    assert table.column("frequency").to_pylist() == [counts[i] for i in expected]
    assert table.column("token").to_pylist() == [lens.space.labels[i] for i in expected]
    assert table.column("display").to_pylist() == [lens.space.display[i] for i in expected]
    np.testing.assert_array_equal(table.column("x").to_numpy(), result.coords[:, 0])
    np.testing.assert_array_equal(table.column("y").to_numpy(), result.coords[:, 1])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "map.html", "map.png",
                                                                    "points.parquet"]


def test_pca_coordinates_match_a_direct_eigendecomposition_up_to_sign(env):
    from embedlens.atlas import build_atlas

    lens = env["lens"]
    result = build_atlas(lens, corpus=str(env["corpus"]), reduce=ReduceOptions("pca", 3, metric="euclidean"))
    X = np.asarray(lens.space.vectors[result.ids], dtype=np.float64)
    Xc = X - X.mean(axis=0)
    _, vecs = np.linalg.eigh(Xc.T @ Xc)
    expected = Xc @ vecs[:, ::-1][:, :3]
    for j in range(3):
        sign = np.sign(expected[:, j] @ result.coords[:, j])
        np.testing.assert_allclose(result.coords[:, j], sign * expected[:, j], atol=1e-4, rtol=1e-3)


def test_min_count_filters_rare_tokens(env):
    from embedlens.atlas import build_atlas

    lens = env["lens"]
    r1 = build_atlas(lens, corpus=str(env["corpus"]), min_count=1)
    r5 = build_atlas(lens, corpus=str(env["corpus"]), min_count=5)
    assert r5.ids.tolist() == _expected_ids(lens, TEXT, 5)
    assert 0 < len(r5) < len(r1)
    assert int(r5.frequencies.min()) >= 5
    assert r5.params["selection"]["n_below_min_count"] == len(r1) - len(r5)
    with pytest.raises(EmbedlensError, match="no tokens left after filtering"):
        build_atlas(lens, corpus=str(env["corpus"]), min_count=10**6)


def test_all_tokens_maps_every_row_specials_included(env):
    from embedlens.atlas import build_atlas

    lens = env["lens"]
    result = build_atlas(lens, all_tokens=True)
    assert result.ids.tolist() == list(range(len(lens.space)))
    assert result.frequencies is None
    assert any("colouring by token length" in n for n in result.notes)
    assert lens.space.special.any() and result.params["selection"]["rule"] == "all"
    coloured = build_atlas(lens, all_tokens=True, corpus=str(env["corpus"]))
    assert len(coloured) == len(lens.space)
    counts = _direct_counts(lens, TEXT)
    assert coloured.frequencies.tolist() == [counts[i] for i in range(len(lens.space))]


def _quick_tsne(monkeypatch):
    """t-SNE with few iterations (the reducer's own tests cover full runs; here only the plumbing matters).

    Patched where every map builds its reducer (``ReduceOptions.reducer``), so the CLI's maps run quick too.
    """
    from embedlens.reduce.options import ReduceOptions as Options

    real = Options.reducer

    def reducer(self, axes=None):
        r = real(self, axes)
        if self.method == "tsne":
            r.n_iter, r.early_exaggeration_iter, r.negative_gradient_method = 20, 20, "bh"
        return r

    monkeypatch.setattr(Options, "reducer", reducer)


@pytest.mark.parametrize("method", ["pca", pytest.param("tsne", marks=pytest.mark.slow)])
def test_same_seed_gives_identical_coordinates(env, method, monkeypatch):
    from embedlens.atlas import build_atlas

    _quick_tsne(monkeypatch)
    lens = env["lens"]
    a = build_atlas(lens, corpus=str(env["corpus"]), reduce=ReduceOptions(method, seed=3))
    b = build_atlas(lens, corpus=str(env["corpus"]), reduce=ReduceOptions(method, seed=3))
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.quality_dict() == b.quality_dict()


def test_manifest_records_model_corpus_method_quality_and_timings(env, tmp_path):
    from embedlens.atlas import write_atlas
    from embedlens.cache import sha256_file

    lens = env["lens"]
    write_atlas(lens, tmp_path, corpus=str(env["corpus"]), reduce=ReduceOptions("pca", 3, seed=7))
    m = json.loads((tmp_path / "manifest.json").read_text())
    for key in ("model", "space", "corpus", "method", "dims", "metric", "seed", "params", "quality", "timings",
                "versions", "notes", "files", "n_points", "counting"):
        assert key in m, key
    assert m["model"]["content_hash"] == lens.meta["content_hash"]
    assert m["corpus"]["files"][0]["sha256"] == sha256_file(env["corpus"])
    assert m["method"] == "pca" and m["dims"] == 3 and m["seed"] == 7
    assert m["params"]["reducer"]["n_components"] == 3
    assert m["params"]["selection"]["n_points"] == m["n_points"]
    assert set(m["quality"]) >= {"trustworthiness", "neighbor_recall", "k", "n_sample", "seed", "metric"}
    assert m["quality"]["k"] == 10
    assert "searched over all" in m["quality"]["recall_definition"] and m["quality"]["n_points"] == m["n_points"]
    assert m["quality"]["trustworthiness_definition"].startswith("within a seeded sample")
    assert {"count", "select", "reduce", "quality", "html", "png", "parquet", "total"} <= set(m["timings"])
    assert {"numpy", "tokenizers", "plotly", "pyarrow"} <= set(m["versions"])


def test_figure_is_webgl_with_escaped_hover_and_quality_in_title(env):
    from embedlens.atlas import build_atlas

    result = build_atlas(env["lens"], corpus=str(env["corpus"]), size_by_frequency=True)
    figure = result.figure()
    fig = figure.to_dict()
    trace = fig["data"][0]
    assert trace["type"] == "scattergl"
    assert "&lt;script&gt;" in list(trace["text"]) and "<script>" not in list(trace["text"])
    assert "id %{customdata[0]}" in trace["hovertemplate"] and "frequency" in trace["hovertemplate"]
    assert "trustworthiness" in fig["layout"]["title"]["text"] and "recall@10" in fig["layout"]["title"]["text"]
    sizes = np.asarray(figure.data[0].marker.size)
    assert sizes.shape == (len(result),) and sizes[np.argmax(result.frequencies)] == sizes.max()
    fig3 = build_atlas(env["lens"], corpus=str(env["corpus"]), reduce=ReduceOptions("pca", 3), color="none").figure().to_dict()
    assert fig3["data"][0]["type"] == "scatter3d" and isinstance(fig3["data"][0]["marker"]["color"], str)


def test_html_is_self_contained(env, tmp_path):
    from embedlens.atlas import write_atlas

    write_atlas(env["lens"], tmp_path, corpus=str(env["corpus"]), png=False)  # the WebGL page (default)
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", html), "a script is loaded from elsewhere"
    assert not re.search(r"<link[^>]*href=[\"']?(https?:)?//", html), "a stylesheet is loaded from elsewhere"
    assert not re.search(r"https?:", html.replace('"http://www.w3.org/2000/svg"', "")) and "EmbedlensMap" in html
    assert "\\u003cscript\\u003e" in html and "<script>" not in html.split("</head>", 1)[1].split("<script>")[0]
    assert not (tmp_path / "map.png").exists()
    write_atlas(env["lens"], tmp_path, corpus=str(env["corpus"]), png=False, renderer="plotly")
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc=", html), "a script is loaded from elsewhere"
    # (plotly.js itself mentions CDN addresses for map tiles and icons it never fetches for a scatter plot;
    # the browser test checks that no request leaves file://.)
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js is embedded
    assert "&lt;script&gt;" in html


def test_interrupted_save_leaves_no_half_written_files(env, tmp_path, monkeypatch):
    from embedlens.atlas import build_atlas

    (tmp_path / "keep.txt").write_text("mine")
    result = build_atlas(env["lens"], corpus=str(env["corpus"]))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("embedlens.atlas.result.atlas_png", boom)  # where the save looks it up
    with pytest.raises(KeyboardInterrupt):
        result.save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]
    monkeypatch.undo()
    result.save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["keep.txt", "manifest.json", "map.html", "map.png", "points.parquet"]


def test_saved_map_loads_back(env, tmp_path):
    from embedlens.atlas import AtlasResult, write_atlas

    result = write_atlas(env["lens"], tmp_path, corpus=str(env["corpus"]), png=False)
    back = AtlasResult.load(tmp_path)
    np.testing.assert_array_equal(back.coords, result.coords)
    assert back.labels == result.labels and back.ids.tolist() == result.ids.tolist()
    assert back.frequencies.tolist() == result.frequencies.tolist()
    assert back.quality_line() == result.quality_line()
    np.testing.assert_array_equal(back.local_recall, result.local_recall)


def test_word_space_maps_corpus_words():
    from embedlens.atlas import build_atlas
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    words = sorted({w.lower() for line in CORPUS for w in line.replace(".", " ").split() if w.isalpha()})
    rng = np.random.default_rng(0)
    lens = SpaceLens(EmbeddingSpace.from_arrays(rng.normal(size=(len(words) + 5, 8)), words + list("vwxyz"),
                                                name="toy-words"))
    result = build_atlas(lens, corpus="lee", reduce=ReduceOptions("pca"), min_count=2)
    from embedlens.corpus import open_corpus

    text = open_corpus("lee").files[0].path.read_text(encoding="utf-8", errors="replace")
    counts = Counter(re.findall(r"\w+", text.lower()))
    vocab = words + list("vwxyz")
    expected = [w for w in vocab if counts[w] >= 2]
    assert result.labels == expected and result.frequencies.tolist() == [counts[w] for w in expected]
    assert result.space == "toy-words" and len(result) >= 4


# -- CLI ----------------------------------------------------------------------------------------------


def test_cli_map_writes_outputs_and_prints_the_quality(env, run_cli, tmp_path):
    out = tmp_path / "m"
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--out", out, "--dims", "3",
                "--min-count", "2")
    assert r.code == 0, r
    assert f"map: {out / 'map.html'}" in r.out
    assert "trustworthiness" in r.out and "recall@10" in r.out and "queries among all" in r.out
    m = json.loads((out / "manifest.json").read_text())
    assert m["dims"] == 3 and m["params"]["selection"]["min_count"] == 2
    j = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--out", out, "--json", "--no-png")
    assert j.code == 0 and json.loads(j.out)["n_points"] == len(_expected_ids(env["lens"], TEXT, 1))


@pytest.mark.slow
def test_the_map_recall_is_the_full_set_definition_and_pre_pca_is_a_flag(env, run_cli, tmp_path, monkeypatch):
    from embedlens.atlas import build_atlas
    from embedlens.reduce.quality import map_recall

    _quick_tsne(monkeypatch)  # the definition holds for any coordinates
    lens = env["lens"]
    result = build_atlas(lens, all_tokens=True, reduce=ReduceOptions("tsne", seed=3, perplexity=5))
    x = np.asarray(lens.space.vectors, dtype=np.float32)
    q = result.quality_dict()
    assert q["neighbor_recall"] == map_recall(x, result.coords, 10, sample=2000, seed=3)  # all tokens: all queries
    assert q["n_points"] == len(x) and result.params["reducer"]["knn_metric"] == "cosine"
    r = run_cli("map", "--model", env["model"], "--all", "--method", "tsne", "--perplexity", "5", "--pre-pca", "8",
                "--out", tmp_path / "p", "--no-png")
    assert r.code == 0, r
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["params"]["reducer"]["pre_pca"] == 8 and "knn_full_space_recall" in m["params"]["reducer"]
    assert any("the true 15 nearest neighbours of the full space" in n for n in m["notes"])


def test_cli_renderer_webgl_writes_the_light_page(env, run_cli, tmp_path):
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--dims", "3", "--renderer", "webgl",
                "--no-png", "--out", tmp_path)
    assert r.code == 0, r
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert 'id="embedlens-data"' in html and "Plotly.newPlot" not in html
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["renderer"] == "webgl"
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--no-png", "--out", tmp_path)
    assert r.code == 0 and json.loads((tmp_path / "manifest.json").read_text())["renderer"] == "webgl"  # auto, any size
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--renderer", "plotly", "--no-png",
                "--out", tmp_path)
    assert r.code == 0 and "Plotly.newPlot" in (tmp_path / "map.html").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "manifest.json").read_text())["renderer"] == "plotly"


def test_cli_several_corpora_and_binary_files(env, run_cli, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(TEXT, encoding="utf-8")
    (folder / "blob.txt").write_bytes(bytes(range(256)) * 10)
    other = tmp_path / "b.txt"
    other.write_text("The capital of France is Paris.", encoding="utf-8")
    r = run_cli("map", "--model", env["model"], "--corpus", folder, other, "--out", tmp_path / "o", "--no-png")
    assert r.code == 0, r
    assert "blob.txt" in r.err and "not UTF-8" in r.err
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [Path(f["path"]).name for f in m["corpus"]["files"]] == ["a.txt", "b.txt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dims", "4"], "--dims must be 2 or 3"),
        (["--corpus", "/no/such/file.txt"], "no such corpus file or folder"),
        (["--corpus", "{binary}"], "no readable text"),
        (["--corpus", "{corpus}", "--min-count", "100000"], "no tokens left after filtering"),
        (["--min-count", "0"], "--min-count must be at least 1"),
        (["--out", "{file}/sub"], "not writable"),
        (["stray.txt"], "unexpected argument"),
        (["--method", "mds"], "Invalid value for '--method'"),
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--method", "umap", "--min-dist", "2"], "min_dist must be a number between 0 and 1"),
        (["--method", "tsne", "--perplexity", "nan"], "perplexity must be a positive number"),
        (["--method", "umap", "--n-neighbors", "1"], "n_neighbors must be an integer of at least 2"),
        (["--renderer", "svg"], "Invalid value for '--renderer'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(env, run_cli, tmp_path, args, message):
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\x00\xff" * 64)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    subst = {"binary": binary, "corpus": env["corpus"], "file": a_file}
    args = [a.format(**subst) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    r = run_cli("map", "--model", env["model"], *args)
    assert r.code == 2, r
    lines = [ln for ln in r.err.splitlines() if ln.startswith("embedlens: error:")]
    assert len(lines) == 1 and message in lines[0], r.err
    assert "Traceback" not in r.err


def test_cli_too_large_perplexity_is_clamped_with_a_note(env, run_cli, tmp_path, monkeypatch):
    _quick_tsne(monkeypatch)
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--method", "tsne", "--perplexity", "500",
                "--out", tmp_path, "--no-png")
    assert r.code == 0, r
    assert "perplexity" in r.err
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["params"]["reducer"]["perplexity"] < 500


# -- browser --------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_map_html_renders_offline_in_chromium_with_markup_tokens_as_text(env, tmp_path, offline_page):
    from embedlens.atlas import build_atlas

    result = build_atlas(env["lens"], corpus=str(env["corpus"]))
    # Spread the points on a grid so that hovering a point's position shows exactly that point.
    n = len(result)
    side = int(np.ceil(np.sqrt(n)))
    result.coords = (np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0).astype(np.float32)
    result.renderer = "plotly"  # the WebGL page (the default) has its own hover test
    result.save(tmp_path, png=False)
    markup = [(i, d) for i, d in enumerate(result.display) if d in MARKUP_TOKENS]
    assert {d for _, d in markup} == set(MARKUP_TOKENS)
    page, seen = offline_page(tmp_path / "map.html")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return g && g._fullData && g.querySelector('.main-svg'); }", timeout=30_000)
    assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData[0].type") == "scattergl"
    title = page.evaluate("() => document.querySelector('.gtitle').textContent")
    assert "trustworthiness" in title and result.space in title
    for index, token in markup:
        pos = page.evaluate(
            """(i) => { const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
            const r = g.getBoundingClientRect();
            return [r.left + L._size.l + L.xaxis.l2p(g._fullData[0].x[i]),
                    r.top + L._size.t + L.yaxis.l2p(g._fullData[0].y[i])]; }""", index)
        page.mouse.move(2, 2)  # off the plot: the previous hover label goes away first
        page.wait_for_function("() => document.querySelector('.hoverlayer').textContent === ''")
        page.mouse.move(pos[0] + 3, pos[1] + 3)
        page.mouse.move(pos[0], pos[1])
        wanted = f"id {int(result.ids[index])}frequency"  # the hover lines run together in textContent
        page.wait_for_function("(w) => document.querySelector('.hoverlayer').textContent.includes(w)",
                               arg=wanted, timeout=10_000)
        shown = page.evaluate("() => document.querySelector('.hoverlayer').textContent")
        assert shown.startswith(token) and wanted in shown, (token, shown)
        tags = page.evaluate("() => Array.from(document.querySelectorAll('.hoverlayer *'), e => e.tagName)")
        assert set(tags) <= {"g", "path", "text", "tspan", "rect"}, tags
    injected = page.evaluate("() => document.querySelectorAll('.js-plotly-plot script, .js-plotly-plot div br,"
                             " svg div, svg script').length")
    assert injected == 0
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests


# -- real model -----------------------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_pca_map_of_lee(smollm2, use_shared_cache, tmp_path):
    import pyarrow.parquet as pq

    from embedlens.atlas import write_atlas
    from embedlens.corpus import open_corpus

    result = write_atlas(smollm2, tmp_path, corpus="lee", reduce=ReduceOptions("pca"), min_count=2, png=False)
    text = open_corpus("lee").files[0].path.read_text(encoding="utf-8", errors="replace")
    counts = _direct_counts(smollm2, text)
    special = smollm2.space.special
    expected = sorted(i for i, c in counts.items() if c >= 2 and not special[i])
    table = pq.read_table(tmp_path / "points.parquet")
    assert table.num_rows == len(expected) == len(result)
    assert table.column("token_id").to_pylist() == expected
    assert table.column("frequency").to_pylist() == [counts[i] for i in expected]
    q = result.quality_dict()
    assert 0.5 < q["trustworthiness"] <= 1.0 and 0.0 <= q["neighbor_recall"] <= 1.0
    assert q["n_sample"] == 2000


# -- the light WebGL page (large maps) ------------------------------------------------------------------


def test_webgl_page_data_keeps_every_point_in_row_order_with_viridis_and_a_draw_order(env):
    import base64

    from embedlens.atlas import build_atlas
    from embedlens.render.atlas import color_values
    from embedlens.render.pointcloud import VIRIDIS, page_data, viridis_rgb

    result = build_atlas(env["lens"], corpus=str(env["corpus"]), reduce=ReduceOptions("pca", 3))
    data = page_data(result)
    n = len(result)
    colors, bar = color_values(result)
    assert data["n"] == n and data["ids"] == result.ids.tolist() and data["display"] == list(result.display)
    assert data["freq"] == result.frequencies.tolist()
    # coordinates go as they are (the component frames them); low colour values are drawn first
    xyz = np.frombuffer(base64.b64decode(data["coords"]), dtype=np.float32).reshape(n, 3)
    np.testing.assert_array_equal(xyz, result.coords)
    order = np.frombuffer(base64.b64decode(data["order"]), dtype=np.int32)
    np.testing.assert_array_equal(order, np.argsort(colors, kind="stable"))
    rgb = np.frombuffer(base64.b64decode(data["rgb"]), dtype=np.uint8).reshape(n, 3)
    ends = viridis_rgb(np.array([0.0, 1.0]), 0.0, 1.0)
    assert ends.tolist() == [[0x44, 0x01, 0x54], [0xFD, 0xE7, 0x25]]
    assert "range" not in bar  # frequency colours span their own min..max
    np.testing.assert_array_equal(rgb, viridis_rgb(colors, float(colors.min()), float(colors.max())))
    assert rgb[order[0]].tolist() == ends[0].tolist() and rgb[order[-1]].tolist() == ends[1].tolist()
    assert data["colorbar"]["stops"][0][1] == VIRIDIS[0]
    # the finest label level: tokens by corpus frequency, most frequent first
    priority = np.frombuffer(base64.b64decode(data["token_priority"]), dtype=np.int32)
    assert sorted(priority.tolist()) == list(range(n))
    assert np.all(np.diff(result.frequencies[priority]) <= 0)


def test_auto_renderer_is_webgl_at_any_size(env, tmp_path):
    from embedlens.atlas import build_atlas

    result = build_atlas(env["lens"], corpus=str(env["corpus"]))
    assert len(result) < 1000 and result.html_renderer() == "webgl"
    result.save(tmp_path, png=False)
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert "embedlens-data" in html and "Plotly.newPlot" not in html and "<script" not in _js_of(html)
    assert json.loads((tmp_path / "manifest.json").read_text())["renderer"] == "webgl"
    # no token can close the data script: the only closing tags are the page's own two
    assert html.count("</script>") == 2
    result.renderer = "plotly"
    assert result.html_renderer() == "plotly" and "Plotly.newPlot" in result.html()
    result.renderer = "svg"
    with pytest.raises(EmbedlensError, match="unknown renderer"):
        result.html_renderer()


BREAKOUT = "</script><script>alert(1)</script><!--<script>"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("dims,scale", [(2, 1), (3, 2)])
def test_webgl_page_draws_offline_and_hovers_markup_tokens_as_text(env, tmp_path, offline_page, dims, scale):
    from embedlens.atlas import build_atlas

    result = build_atlas(env["lens"], corpus=str(env["corpus"]), reduce=ReduceOptions("pca", dims))
    n = len(result)
    result.display[0] = BREAKOUT  # a token that tries to close the data script and run its own
    side = int(np.ceil(np.sqrt(n)))
    grid = np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0
    if dims == 3:  # one flat layer (z = 0): no point hides another, whatever the camera
        grid = np.column_stack([grid, np.zeros(n)])
    result.coords = grid.astype(np.float32)
    result.renderer = "webgl"
    result.save(tmp_path, png=False)
    assert (tmp_path / "map.html").read_text(encoding="utf-8").count("</script>") == 2
    # scale 2: a high-density screen, where canvas pixels and CSS pixels differ
    page, seen = offline_page(tmp_path / "map.html", device_scale_factor=scale)
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    assert page.evaluate("() => embedlensMap.n") == n
    assert page.evaluate("() => embedlensMap.canvas.width") == scale * page.evaluate(
        "() => embedlensMap.canvas.clientWidth")
    title2 = page.evaluate("() => document.getElementById('title2').textContent")
    assert title2.startswith("neighbour recall@10 ") and "queries among all" in title2 and "trustworthiness" in title2
    # the canvas really holds coloured points, not only the white background
    shot = page.locator("#map canvas.em-gl").screenshot()
    from io import BytesIO

    from PIL import Image

    pixels = np.asarray(Image.open(BytesIO(shot)).convert("RGB"), dtype=np.int32)
    assert ((pixels.sum(axis=2) < 600) & (np.abs(pixels[..., 0] - pixels[..., 2]) > 20)).sum() > 10 * n
    labels = page.evaluate("() => embedlensMap.display")
    for token in [*MARKUP_TOKENS, BREAKOUT]:
        i = labels.index(token)
        x, y, _ = page.evaluate("(i) => embedlensMap.project(i)", i)
        box = page.locator("#map canvas.em-gl").bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function("(t) => document.querySelector('.em-tip-main').textContent === t", arg=token,
                               timeout=10_000)
        assert page.evaluate("() => document.querySelector('.em-tip').children.length") == 3
        assert page.evaluate("() => document.querySelector('.em-tip-main').children.length") == 0
        assert "frequency" in page.evaluate("() => document.querySelectorAll('.em-tip-line')[1].textContent")
    page.fill("#search", "alert(1)")
    assert page.evaluate("() => document.getElementById('found').textContent") == "1 match"
    page.fill("#search", "no token has this text")
    assert page.evaluate("() => document.getElementById('found').textContent") == "0 matches"
    assert page.evaluate("() => document.querySelectorAll('script').length") == 2
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests


def _js_of(html: str) -> str:
    """The viewer's own code (the page's last script): it must not even mention a script tag."""
    return html.rsplit("<script>", 1)[1].rsplit("</script>", 1)[0]


def test_webgl_page_data_without_colours_or_spread():
    import base64

    from embedlens.atlas import AtlasResult
    from embedlens.render.pointcloud import page_data

    result = AtlasResult(coords=np.zeros((3, 3), dtype=np.float32), ids=np.arange(3), labels=["a", "b", "c"],
                         display=["a", "b", "c"], frequencies=None, quality=None, model={"name": "m"}, space="m:input",
                         method="pca", dims=3, metric="cosine", seed=0, color="none")
    data = page_data(result)
    assert data["colorbar"] is None and data["freq"] is None and data["order"] is None
    assert data["levels"] is None and data["token_priority"] is None
    assert np.frombuffer(base64.b64decode(data["rgb"]), dtype=np.uint8).reshape(3, 3).tolist() == [[0x3B, 0x6E, 0xA8]] * 3
    assert np.frombuffer(base64.b64decode(data["coords"]), dtype=np.float32).tolist() == [0.0] * 9


@pytest.mark.browser
def test_a_map_without_clusters_labels_its_most_frequent_tokens(env, tmp_path, offline_page):
    """A PCA map of a corpus has no cluster levels: the page labels the most frequent tokens in view instead."""
    from embedlens.atlas import build_atlas

    result = build_atlas(env["lens"], corpus=str(env["corpus"]), reduce=ReduceOptions("pca"), clusters="none")
    assert result.clustering is None and result.frequencies is not None
    result.save(tmp_path, png=False)
    page, seen = offline_page(tmp_path / "map.html", viewport={"width": 1200, "height": 900})
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.em-label').length > 0", timeout=10_000)
    shown = page.evaluate("() => Array.from(document.querySelectorAll('.em-label'), (e) => [e.dataset.level, e.textContent])")
    assert {level for level, _ in shown} == {"tokens"}
    freq = np.asarray(result.frequencies)
    rank = {result.display[r]: i for i, r in enumerate(np.argsort(-freq, kind="stable"))}
    ranks = sorted(rank[text] for _, text in shown)
    assert ranks[0] == 0  # the most frequent token is labelled first (the whole map is in view)
    labelled = freq[[result.display.index(text) for _, text in shown]]
    assert labelled.mean() > freq.mean()  # labels go to frequent tokens first, not to any
    assert seen.dialogs == [] and seen.errors == []
