"""t-SNE perplexity sweeps: each map equals a single run at that perplexity, one k-NN graph, the small multiples page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlens.reduce.options import ReduceOptions

from .conftest import CORPUS, MARKUP_TOKENS

TEXT = "\n".join(CORPUS + ["Markup tokens: " + " ".join(MARKUP_TOKENS) + " [/b] <br>"]) + "\n"
BREAKOUT = "</script><script>alert(1)</script><!--<script>"
PERPLEXITIES = [5.0, 12.0, 30.0]
QUICK = {"n_iter": 20, "early_exaggeration_iter": 20}


def _quick(mp):
    """Few t-SNE iterations for maps the command line makes (the reducer's own tests cover full runs; here the
    sharing and the pages matter); library calls pass ``ReduceOptions(..., **QUICK)`` instead."""
    real = ReduceOptions.reducer

    def reducer(self, axes=None):
        return real(self.replace(**QUICK) if self.method == "tsne" else self, axes)

    mp.setattr(ReduceOptions, "reducer", reducer)


def _count_builds(mp):
    """Spy on every k-NN graph a map builds (map_graph's index)."""
    import embedlens.reduce.knn as knn

    calls = []
    real = knn.build_index

    def spy(X, **kwargs):
        calls.append(X.shape[0])
        return real(X, **kwargs)

    mp.setattr(knn, "build_index", spy)
    return calls


@pytest.fixture(scope="module")
def sweep_env(tiny_gpt2_dir, tmp_path_factory, module_cache):
    """The tiny GPT-2, a corpus, and a sweep of its corpus tokens at three perplexities (built once)."""
    import embedlens
    from embedlens.atlas.sweep import build_perplexity_sweep

    folder = tmp_path_factory.mktemp("sweep-corpus")
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    lens = embedlens.load(str(tiny_gpt2_dir))
    with pytest.MonkeyPatch.context() as mp:
        _quick(mp)
        builds = _count_builds(mp)
        sweep = build_perplexity_sweep(lens, PERPLEXITIES, corpus=str(corpus), reduce=ReduceOptions("tsne", seed=1, **QUICK), progress=False)
    return {"lens": lens, "corpus": corpus, "sweep": sweep, "builds": builds, "model": str(tiny_gpt2_dir),
            "cache": module_cache}


@pytest.fixture
def env(sweep_env, monkeypatch):
    monkeypatch.setenv("EMBEDLENS_CACHE", str(sweep_env["cache"]))
    _quick(monkeypatch)
    return sweep_env


def test_sweep_maps_equal_single_runs_and_share_one_graph(env, monkeypatch):
    from embedlens.atlas import build_atlas

    sweep = env["sweep"]
    n = sweep.maps[0].n_points
    assert env["builds"] == [n]  # one graph, for the largest perplexity, reused by every map and its quality
    assert sweep.graph["k"] == 90 and sweep.perplexities == PERPLEXITIES
    builds = _count_builds(monkeypatch)
    for p, m in zip(PERPLEXITIES, sweep.maps, strict=True):
        single = build_atlas(env["lens"], corpus=str(env["corpus"]), reduce=ReduceOptions("tsne", seed=1, perplexity=p, **QUICK),
                             clusters="none", progress=False)
        assert np.array_equal(single.coords, m.coords), p
        assert single.quality_dict() == m.quality_dict()
        assert m.params["reducer"]["k_neighbors"] == int(3 * p)
    assert builds == [n] * 3  # each single run finds its own graph
    # different perplexities make different maps
    assert not np.allclose(sweep.maps[0].coords, sweep.maps[2].coords)


def test_whole_vocabulary_sweep_starts_from_the_spaces_graph_and_equals_a_single_run(env):
    from embedlens.atlas import build_atlas
    from embedlens.atlas.sweep import build_perplexity_sweep

    sweep = build_perplexity_sweep(env["lens"], [4, 15], all_tokens=True, reduce=ReduceOptions("tsne", seed=2, **QUICK), progress=False)
    assert sweep.graph["knn_source"] == "the space's k-NN graph" and sweep.graph["k"] == 45
    single = build_atlas(env["lens"], all_tokens=True, reduce=ReduceOptions("tsne", seed=2, perplexity=4, **QUICK), clusters="none",
                         progress=False)
    assert np.array_equal(single.coords, sweep.maps[0].coords)
    assert single.quality_dict() == sweep.maps[0].quality_dict()


def test_array_sweep_equals_single_reducer_runs_with_one_graph(monkeypatch):
    from embedlens.reduce.sweep import perplexity_sweep
    from embedlens.reduce.tsne import TSNEReducer

    X = np.random.default_rng(0).normal(size=(150, 16)).astype(np.float32)
    builds = _count_builds(monkeypatch)
    sweep = perplexity_sweep(X, [20, 4], ReduceOptions("tsne", seed=3, **QUICK))
    assert builds == [150] and sweep.graph["k"] == 60
    for m in sweep.maps:
        single = TSNEReducer(perplexity=m.perplexity, seed=3, **QUICK)
        assert np.array_equal(single.fit_transform(X), m.coords)
        assert single.params_["k_neighbors"] == int(3 * m.perplexity)
        # the quality figures, from the shared graph, equal those of an exact search
        from embedlens.reduce.quality import projection_quality

        assert projection_quality(X, m.coords, k=10, seed=3) == m.quality


def test_cli_map_sweep_writes_small_multiples_and_every_maps_points(env, run_cli, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "sweep"
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], "--method", "tsne", "--perplexity",
                "5,30", "--seed", "1", "--out", out)
    assert r.code == 0, r
    assert "perplexity 5: recall@10 " in r.out and "perplexity 30: recall@10 " in r.out
    table = pq.read_table(out / "points.parquet").to_pydict()
    n = env["sweep"].maps[0].n_points
    assert table["perplexity"] == [5.0] * n + [30.0] * n
    by_p = {p: np.column_stack([table["x"], table["y"]])[np.asarray(table["perplexity"]) == p] for p in (5.0, 30.0)}
    assert np.allclose(by_p[5.0], env["sweep"].maps[0].coords) and np.allclose(by_p[30.0], env["sweep"].maps[2].coords)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["perplexities"] == [5.0, 30.0] and manifest["graph"]["k"] == 90
    assert [m["quality"]["k"] for m in manifest["maps"]] == [10, 10]
    assert (out / "sweep.png").stat().st_size > 10_000
    html = (out / "sweep.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2 and "recall@10" in html


@pytest.mark.parametrize("args,message", [
    (["--method", "pca", "--perplexity", "5,30"], "add --method tsne"),
    (["--method", "tsne", "--perplexity", "5,x"], "comma-separated list"),
    (["--method", "tsne", "--perplexity", "5,5"], "perplexities must differ"),
    (["--method", "tsne", "--perplexity", "5,-1"], "positive number"),
])
def test_cli_bad_sweep_is_one_line_and_exit_2(env, run_cli, tmp_path, args, message):
    r = run_cli("map", "--model", env["model"], "--corpus", env["corpus"], *args, "--out", tmp_path / "m")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and message in r.err, r


def test_cli_context_sweep(env, run_cli, tmp_path):
    out = tmp_path / "ctx"
    r = run_cli("context", *CORPUS[:3], "--model", env["model"], "--perplexity", "3,8", "--out", out)
    assert r.code == 0, r
    manifest = json.loads((out / "manifest.json").read_text())
    sweep = manifest["sweep"]
    assert sweep["perplexities"] == [3.0, 8.0] and sweep["graph"]["k"] == 24
    assert all(m["quality"]["neighbor_recall"] >= 0 for m in sweep["maps"])
    assert {"sweep.html", "sweep.png", "context.html"} <= set(manifest["outputs"])
    assert manifest["models"][0]["projection"]["params"]["perplexity"] == 8.0  # the panel shows the largest
    r = run_cli("context", *CORPUS[:3], "--model", env["model"], "--perplexity", "3,8", "--runs", "2", "--out", out)
    assert r.code == 2 and "--runs 1" in r.err


@pytest.mark.browser
def test_sweep_page_links_hover_across_panels_and_shows_markup_tokens_as_text(env, tmp_path, offline_page):
    from dataclasses import replace

    sweep = env["sweep"]
    n = sweep.maps[0].n_points
    side = int(np.ceil(np.sqrt(n)))
    grid = (np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0).astype(np.float32)
    mirrored = grid * np.array([-1.0, 1.0], dtype=np.float32)  # another layout: left and right swapped
    maps = [replace(m, display=list(m.display), coords=grid if i % 2 == 0 else mirrored)
            for i, m in enumerate(sweep.maps)]
    for m in maps:
        m.display[0] = BREAKOUT  # a token that tries to close the data script and run its own
    page_sweep = replace(sweep, maps=maps, files={})
    page_sweep.save(tmp_path, png=False)
    # wide enough that the longest token's label fits beside its point on a third of the page
    page, seen = offline_page(tmp_path / "sweep.html", viewport={"width": 1800, "height": 800})
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    assert page.evaluate("() => embedlensSweep.maps.length") == 3
    titles = page.evaluate("() => Array.from(document.querySelectorAll('.panel-quality'), (e) => e.textContent)")
    assert all(t.startswith("recall@10 ") and "trustworthiness" in t for t in titles)
    canvas = page.locator(".panel-map canvas.em-gl").nth(0)
    for token in [*MARKUP_TOKENS, BREAKOUT]:
        i = maps[0].display.index(token)
        x, y, _ = page.evaluate("(i) => embedlensSweep.maps[0].project(i)", i)
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function("(t) => document.querySelector('.panel .em-tip-main').textContent === t", arg=token,
                               timeout=10_000)
        # the same token is marked, and labelled literally, on the other panels
        for panel in (1, 2):
            page.wait_for_function(
                "([p, t]) => Array.from(document.querySelectorAll('.panel')[p].querySelectorAll("
                "'.em-label[data-level=overlay]')).some((l) => l.style.display !== 'none' && l.textContent === t)",
                arg=[panel, token], timeout=10_000)
    page.screenshot(path=str(tmp_path / "sweep-page.png"))
    assert page.evaluate("() => document.querySelectorAll('script').length") == 2
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests
