"""The notebook widget's Python side: its traits, token ids <-> rows, refusals, and the map a space opens on."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.options import ReduceOptions

from .test_map_view import HOSTILE, view_result

pytest.importorskip("anywidget")


@pytest.fixture(scope="module")
def result():
    return view_result()


@pytest.fixture(scope="module")
def shuffled(result):
    """The planted map with ids in no particular order (rows != ids), so a mix-up cannot pass."""
    from dataclasses import replace

    ids = np.random.default_rng(3).permutation(50_000)[: len(result)] * 3 + 7
    return replace(result, ids=ids.astype(np.int64))


def test_traits_carry_the_map_as_bytes_and_json(result):
    import embedlens
    from embedlens.render.pointcloud import point_colors

    w = embedlens.widget(result, height=400)
    n = len(result)
    np.testing.assert_array_equal(np.frombuffer(w._coords, dtype=np.float32).reshape(n, 2), result.coords)
    np.testing.assert_array_equal(np.frombuffer(w._rgb, dtype=np.uint8).reshape(n, 3), point_colors(result)[0])
    order = np.frombuffer(w._order, dtype=np.int32)  # lowest count drawn first, frequent tokens on top
    assert sorted(order.tolist()) == list(range(n)) and np.all(np.diff(result.frequencies[order]) >= 0)
    priority = np.frombuffer(w._token_priority, dtype=np.int32)
    assert np.all(np.diff(result.frequencies[priority]) <= 0)
    assert w._data["display"] == result.display and "ids" not in w._data
    np.testing.assert_array_equal(np.frombuffer(w._ids, dtype=np.float64), result.ids)
    np.testing.assert_array_equal(np.frombuffer(w._freq, dtype=np.float64), result.frequencies)
    assert w._data["levels"] == result.label_levels() and [lv["name"] for lv in w._data["levels"]] == ["clusters", "sub-clusters"]
    assert w._data["caption"][0] == result.quality_line() and w.height == 400 and w.tool == "pan"
    # one renderer: the ES module is the map component followed by the widget's own code
    from importlib import resources

    static = resources.files("embedlens.render").joinpath("static")
    component = static.joinpath("pointcloud.js").read_text(encoding="utf-8")
    assert w._esm.startswith(component) and w._esm.count("global.EmbedlensMap = ") == 1
    assert w._esm.rstrip().endswith("export default { render };")
    assert not re.search(r"innerHTML\s*=|outerHTML|insertAdjacentHTML|document\.write", w._esm)  # textContent only


def test_selected_maps_token_ids_to_rows_both_ways_and_calls_back(shuffled):
    import embedlens

    w = embedlens.widget(shuffled)
    heard = []
    assert w.on_select(heard.append) == heard.append
    rng = np.random.default_rng(0)
    rows = rng.choice(len(shuffled), 60, replace=False)
    want = shuffled.ids[rows]
    w.selected = list(want[::-1]) + [int(want[0])]  # any order, repeats, numpy ints
    lookup = {int(t): r for r, t in enumerate(shuffled.ids)}  # brute force
    assert w._selection == sorted(lookup[int(t)] for t in want)
    assert w.selected == [int(shuffled.ids[r]) for r in sorted(rows)]
    assert w.selected_tokens == [shuffled.display[r] for r in sorted(rows)]
    assert heard == [w.selected]
    w._selection = [3, 1, 3]  # what the page sends after a lasso: rows
    assert w.selected == [int(shuffled.ids[1]), int(shuffled.ids[3])] and heard[-1] == w.selected
    w._selection = [2, len(shuffled), -1]  # a row past the map (a stale page) is dropped
    assert w._selection == [2]
    w.selected = np.array([float(shuffled.ids[5])])  # whole floats are ids too
    assert w._selection == [5]
    w.selected = []
    assert w.selected == [] and heard[-1] == [] and len(heard) == 5


@pytest.mark.parametrize(("ids", "message"), [
    ([1, 2], "2 token ids not on this map (1, 2)"),
    ([None], "token ids must be integers, got None"),
    (5, "selected takes a list of token ids, got int"),
    ("<script>", "selected takes a list of token ids, got str"),
    ([1.5], "token ids must be integers, got 1.5"),
    ([True, False], "token ids must be integers, got True"),
    (["a"], "token ids must be integers, got 'a'"),
    ([[10]], "a flat list of token ids"),
])
def test_bad_ids_are_refused_in_one_line_and_leave_the_selection_alone(shuffled, ids, message):
    import embedlens

    w = embedlens.widget(shuffled)
    w.selected = [int(shuffled.ids[0])]
    if isinstance(ids, list) and ids == [1, 2]:
        ids = [int(shuffled.ids[0]), 1, 2]  # one good id among the bad: nothing is selected
    with pytest.raises(EmbedlensError) as err:
        w.selected = ids
    assert message in str(err.value) and "\n" not in str(err.value)
    assert w._selection == [0]


def test_tool_height_colour_and_argument_refusals(result):
    import embedlens

    w = embedlens.widget(result, color="none")
    assert len(np.unique(np.frombuffer(w._rgb, dtype=np.uint8).reshape(-1, 3), axis=0)) == 1  # one plain colour
    assert result.color == "frequency"  # the caller's map is not changed
    w.tool = "lasso"
    for bad, call in [("unknown tool 'rope'", lambda: setattr(w, "tool", "rope")),
                      ("height must be", lambda: embedlens.widget(result, height=50)),
                      ("unknown colour 'pink'", lambda: embedlens.widget(result, color="pink")),
                      ("widget takes a map", lambda: embedlens.widget(np.zeros((3, 2))))]:
        with pytest.raises(EmbedlensError, match=bad):
            call()
    assert w.tool == "lasso"
    with pytest.raises(EmbedlensError, match="must be unique"):
        from embedlens.render.widget_data import RowIndex

        RowIndex(np.array([4, 5, 4]))


def test_a_space_opens_on_its_cached_tsne_map_else_pca_computed_now(module_cache):
    import embedlens
    from embedlens.atlas.projection import Projection, load_projection, projection_path, save_projection
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(150)] + HOSTILE
    space = EmbeddingSpace.from_arrays(rng.standard_normal((len(words), 16)).astype(np.float32), words, name="words")
    view = SpaceLens(space).input
    w = embedlens.widget(view)  # nothing cached: PCA now, cached, and the caption says so
    assert w.result.method == "pca" and any(line.startswith("PCA computed now") for line in w._data["caption"])
    pca = load_projection(projection_path(view.content_hash, "pca", 2, 0), len(words))
    np.testing.assert_array_equal(np.frombuffer(w._coords, dtype=np.float32).reshape(-1, 2), pca.coords)
    centred = space.vectors / np.linalg.norm(space.vectors, axis=1, keepdims=True)  # cosine PCA, independently
    centred = centred - centred.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    for k in range(2):
        assert abs(np.corrcoef(pca.coords[:, k], centred @ top[k])[0, 1]) > 0.999
    assert w._data["display"] == list(space.display) and w.selected == []
    assert not any("computed now" in line for line in embedlens.widget(view)._data["caption"])  # read back
    coords = rng.standard_normal((len(words), 2)).astype(np.float32)
    save_projection(projection_path(view.content_hash, "tsne", 2, 0),
                    Projection(coords, "tsne", 2, 0, {"perplexity": 30}, ["a cached t-SNE map"]))
    w = embedlens.widget(SpaceLens(space))  # a handle: its input space, on the cached t-SNE map
    assert w.result.method == "tsne" and "a cached t-SNE map" in w._data["caption"]
    np.testing.assert_array_equal(np.frombuffer(w._coords, dtype=np.float32).reshape(-1, 2), coords)
    w.selected = [words.index("<script>")]
    assert w.selected_tokens == ["<script>"]


def test_without_anywidget_the_import_says_which_pip_install_fixes_it(monkeypatch):
    import embedlens

    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget -> ImportError
    monkeypatch.delitem(sys.modules, "embedlens.render.widget", raising=False)
    monkeypatch.delitem(sys.modules, "embedlens.atlas.widget", raising=False)
    monkeypatch.delitem(embedlens.__dict__, "widget", raising=False)
    with pytest.raises(EmbedlensError) as err:
        embedlens.widget  # noqa: B018 - the lazy attribute imports the module
    assert str(err.value) == ("embedlens.widget (the map in a notebook) needs the 'anywidget' package, which is not "
                              "installed: run pip install 'embedlens[notebook]'")


def test_caption_reads_local_recall_of_the_measured_points_only(result):
    """A whole-space PCA map measures its recall's query rows only (NaN elsewhere): the caption's mean is theirs."""
    from dataclasses import replace

    from embedlens.render.widget_data import caption_lines

    n = len(result)
    local = np.full(n, np.nan, dtype=np.float32)
    measured = np.arange(0, n, 7)
    local[measured] = np.resize(np.array([0.0, 0.2, 0.4, 1.0], dtype=np.float32), measured.size)
    partial = replace(result, local_recall=local, params={**result.params, "local_recall": {"k": 5}})
    line = next(s for s in caption_lines(partial) if s.startswith("local recall"))
    expected = local[measured]
    assert "nan" not in line.lower()
    assert f"mean {expected.mean():.3f}" in line and f"{np.mean(expected == 0):.0%} of points keep none" in line
    assert line.startswith("local recall@5") and f"{measured.size:,} of {n:,} points measured" in line


def test_a_small_space_opens_with_its_local_recall_named_by_its_own_k(cache_dir):
    """15 tokens: the recall's k is (15 - 1) // 2 = 7, and every label of the map opened from the cache says @7."""
    from dataclasses import replace

    from embedlens.atlas.default_map import atlas_of_projection
    from embedlens.atlas.pipeline import compute_projection
    from embedlens.lens import SpaceLens
    from embedlens.render.atlas import color_values
    from embedlens.render.widget_data import caption_lines
    from embedlens.spaces.space import EmbeddingSpace

    vectors = np.random.default_rng(0).standard_normal((15, 6)).astype(np.float32)
    view = SpaceLens(EmbeddingSpace.from_arrays(vectors, [f"w{i}" for i in range(15)], name="small")).input
    proj = compute_projection(view, ReduceOptions("pca"), local_recall=True)
    assert proj.params["local_recall"]["k"] == 7 and proj.local_recall is not None
    result = replace(atlas_of_projection(view, proj), color="faithfulness")
    assert color_values(result)[1]["title"]["text"] == "local recall@7"
    lines = caption_lines(result)
    assert any(s.startswith("local recall@7 ") for s in lines) and not any("@10" in s for s in lines)
