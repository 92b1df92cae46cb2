"""``serve -m A -m B``: the two panels compared (/api/compare), linked hover and the "changed" colour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import MARKUP_TOKENS

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


# "labelled" once the other map shows the token's overlay label, "outside" when its point lies outside that map's view
RINGED = """([plot, panel, row, token]) => {
  const m = embedlens.state.panels[panel].map, p = m.project(row), c = m.canvas;
  const labels = Array.from(document.querySelectorAll(plot + " .em-label[data-level='overlay']"), (e) => e.textContent);
  if (labels.includes(token)) return "labelled";
  const inside = p[0] >= 0 && p[1] >= 0 && p[0] <= c.clientWidth && p[1] <= c.clientHeight;
  return inside ? false : "outside";
}"""


@pytest.fixture(scope="module")
def two_panels(module_cache, tiny_gpt2_dir, tiny_llama_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir)).input, embedlens.load(str(tiny_llama_dir)).output


def test_api_compare_answers_what_the_library_computes(two_panels):
    from starlette.testclient import TestClient

    from embedlens.comparison import compare
    from embedlens.serve import create_app

    a, b = two_panels
    with TestClient(create_app([a, b]), base_url="http://127.0.0.1:8765") as c:
        for _ in range(600):
            body = c.get("/api/compare").json()
            if body["job"]["state"] in ("ready", "error"):
                break
            import time

            time.sleep(0.1)
    assert body["job"]["state"] == "ready", body
    want = compare(a, b, maps=False)
    body = body["result"]
    expected = json.loads(json.dumps(want.to_dict()))  # the library's JSON, as its file holds it (timings aside)
    assert {k: v for k, v in body.items() if k != "timings"} == {k: v for k, v in expected.items() if k != "timings"}
    assert body["rows_a"] == want.rows_a.tolist() and body["rows_b"] == want.rows_b.tolist()
    np.testing.assert_allclose(body["overlap"], want.overlap)
    assert body["cka"] == pytest.approx(want.figures["cka"]) and body["control"] == want.control
    with TestClient(create_app([a]), base_url="http://127.0.0.1:8765") as c:
        r = c.get("/api/compare")
        assert r.status_code == 400 and "two spaces" in r.json()["error"]


@pytest.mark.browser
def test_hovering_a_token_rings_it_on_the_other_panel_and_changed_colours_both(two_panels, offline_page):
    from embedlens.atlas.projection import Projection
    from embedlens.serve import ServerThread, create_app
    from embedlens.serve import explorer as explorer_module

    real = explorer_module.compute_projection

    def quick(view, reduce):  # no 20 s t-SNE on a busy machine: PCA stands in
        pca = real(view, reduce.replace(method="pca"))
        return pca if reduce.method != "tsne" else Projection(pca.coords, "tsne", reduce.n_components, reduce.seed, {},
                                                              ["test stand-in"])

    mp = pytest.MonkeyPatch()
    mp.setattr(explorer_module, "compute_projection", quick)
    a, b = two_panels
    try:
        with ServerThread(create_app([a, b])) as url:
            page, seen = offline_page(url + "#method=pca&dims=2&color=changed", viewport={"width": 1500, "height": 900})
            page.wait_for_function("() => embedlens.state.panels.length === 2 && embedlens.state.panels.every("
                                   "(P) => P.map && P.change)", timeout=60_000)
            legend = page.eval_on_selector("#plot-1 .legend-title", "e => e.textContent")
            assert legend.startswith("changed: 1 − overlap of the 10 nearest")
            display = page.evaluate("() => embedlens.state.panels[0].points.display")
            labelled = 0
            for token in MARKUP_TOKENS:
                row = display.index(token)
                other = page.evaluate("(r) => embedlens.state.panels[0].link[r]", row)
                assert other == row  # one vocabulary: row r is row r
                box = page.locator("#plot-0 canvas.em-gl").bounding_box()
                x, y, _ = page.evaluate("(r) => { const m = embedlens.state.panels[0].map; const p = m.project(r);"
                                        " m.zoomBy(40, p[0], p[1]); m.draw(false); return m.project(r); }", row)
                page.mouse.move(box["x"] + 2, box["y"] + 2)
                page.mouse.move(box["x"] + x, box["y"] + y)
                page.wait_for_function("(r) => embedlens.state.panels[0].map.stats().hovered === r", arg=row,
                                       timeout=10_000)
                assert page.eval_on_selector("#plot-0 .em-tip-main", "e => e.textContent") == token
                # ringed and labelled on the other panel (drawn on its next frame; unless it lies outside its view)
                shown = page.wait_for_function(RINGED, arg=["#plot-1", 1, other, token], timeout=10_000).json_value()
                labelled += shown == "labelled"
                page.evaluate("() => embedlens.state.panels[0].map.frame()")
            assert labelled >= len(MARKUP_TOKENS) - 2  # only a point outside the other map's view goes unlabelled
            assert seen.dialogs == [] and seen.errors == []
            assert all(u.startswith(url) for u in seen.requests), seen.requests
    finally:
        mp.undo()
