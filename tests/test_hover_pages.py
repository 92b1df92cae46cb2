"""Every HTML page embedlens writes, opened in Chromium and hovered: tokens read exactly as their readable form.

Plotly draws hover text as its own small markup and decodes only a few entities, so a page must escape
exactly ``&``, ``<`` and ``>``: an escaped quote would show as ``&quot;``, an unescaped ``<br>`` would break
the line, and ``&amp;`` must read ``&amp;``. Each test hovers real points (the mouse where points are spread
apart, Plotly's own hover call on one point where they may overlap), reads the hover box back as a person
sees it, and checks that no script ran and nothing left the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import embedlens

from .conftest import MARKUP_TOKENS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# What hostile tokens must never turn into on screen.
OVER_ESCAPED = ("&quot;", "&#39;", "&lt;", "&gt;", "&amp;amp;")

_READY = ("() => { const g = document.querySelector('.js-plotly-plot');"
          " return g && g._fullData && g.querySelector('.main-svg'); }")


def _wait_plot(page) -> None:
    page.wait_for_function(_READY, timeout=30_000)


def _hover_box(page) -> str:
    return page.evaluate("() => document.querySelector('.hoverlayer').textContent")


def hover_point(page, curve: int, point: int | list[int], *, div: str = ".js-plotly-plot") -> str:
    """Hover one point through Plotly's own hover (exactly that point, even where points overlap)."""
    page.mouse.move(1, 1)
    page.evaluate("(d) => Plotly.Fx.unhover(document.querySelector(d))", div)
    page.evaluate("([d, c, p]) => Plotly.Fx.hover(document.querySelector(d), [{curveNumber: c, pointNumber: p}])",
                  [div, curve, point])
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.length > 0", timeout=10_000)
    return _hover_box(page)


def mouse_hover(page, x: float, y: float, curve: int = 0) -> str:
    """Move the real mouse over data coordinates (x, y) of a 2D trace and read the hover box."""
    pos = page.evaluate(
        """([x, y, c]) => { const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
        const t = g._fullData[c], xa = L[t.xaxis.replace('x', 'xaxis')], ya = L[t.yaxis.replace('y', 'yaxis')];
        const r = g.querySelector('.main-svg').getBoundingClientRect();
        return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)]; }""", [x, y, curve])
    page.mouse.move(2, 2)
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent === ''", timeout=10_000)
    page.mouse.move(pos[0] + 3, pos[1] + 3)
    page.mouse.move(pos[0], pos[1])
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.length > 0", timeout=10_000)
    return _hover_box(page)


def component_hover(page, row: int) -> tuple[str, list[str]]:
    """Hover one point of a map drawn by the map component (map.html) with the real mouse, zoomed in around it
    so no neighbour sits under the cursor; returns the tip's token and its other lines."""
    box = page.locator("#map canvas.em-gl").bounding_box()
    x, y, _ = page.evaluate("(i) => embedlensMap.project(i)", row)
    page.evaluate("([x, y]) => { embedlensMap.zoomBy(60, x, y); embedlensMap.draw(false); }", [x, y])
    x, y, _ = page.evaluate("(i) => embedlensMap.project(i)", row)
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function("(r) => embedlensMap.stats().hovered === r", arg=row, timeout=10_000)
    main = page.evaluate("() => document.querySelector('.em-tip-main').textContent")
    lines = page.evaluate("() => Array.from(document.querySelectorAll('.em-tip-line'), (e) => e.textContent)")
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.evaluate("() => embedlensMap.frame()")
    return main, lines


def assert_safe(page, seen) -> None:
    tags = page.evaluate("() => Array.from(document.querySelectorAll('.hoverlayer *'), e => e.tagName)")
    assert set(tags) <= {"g", "path", "text", "tspan", "rect"}, tags
    assert page.evaluate("() => document.querySelectorAll('svg script, svg div, svg img, svg iframe').length") == 0
    assert seen.dialogs == [] and seen.errors == [], (seen.dialogs, seen.errors)
    assert seen.requests and all(u.startswith(("file://", "data:", "blob:")) for u in seen.requests), seen.requests


def assert_reads(shown: str, token: str) -> None:
    assert token in shown, (token, shown)
    for bad in OVER_ESCAPED:
        assert bad not in shown.replace(token, ""), (bad, token, shown)


# -- vocabulary map (Plotly) -------------------------------------------------------------------------------------


def test_map_hover_reads_quotes_and_entities_exactly(tiny_gpt2_dir, cache_dir, tmp_path, offline_page):
    from embedlens.atlas import build_atlas

    corpus = tmp_path / "c.txt"
    corpus.write_text("Tokens: " + " ".join(MARKUP_TOKENS) + ' and " \' & here.\n', encoding="utf-8")
    result = build_atlas(embedlens.load(str(tiny_gpt2_dir)), corpus=str(corpus))
    n = len(result)
    side = int(np.ceil(np.sqrt(n)))  # spread on a grid: the mouse over a point hovers exactly that point
    result.coords = (np.column_stack([np.arange(n) % side, np.arange(n) // side]) * 10.0).astype(np.float32)
    result.renderer = "plotly"
    result.save(tmp_path / "map", png=False)
    page, seen = offline_page(tmp_path / "map" / "map.html", viewport={"width": 1280, "height": 1000})
    _wait_plot(page)
    wanted = [t for t in (*MARKUP_TOKENS, '"', "'", "&") if t in result.display]
    assert set(MARKUP_TOKENS) <= set(wanted) and '"' in wanted
    for token in wanted:
        i = result.display.index(token)
        shown = mouse_hover(page, float(result.coords[i, 0]), float(result.coords[i, 1]))
        assert shown.startswith(token + "id"), (token, shown)  # the first hover line is the token itself
        assert_reads(shown, token)
    assert_safe(page, seen)


# -- embedding graph ----------------------------------------------------------------------------------------------


def test_graph_node_labels_and_hovers_read_exactly(tiny_gpt2_dir, cache_dir, tmp_path, offline_page):
    from embedlens.graph import token_graph, write_graph

    lens = embedlens.load(str(tiny_gpt2_dir))
    g = token_graph(lens, words=",".join(f"tok:{t}" for t in MARKUP_TOKENS), k=3)
    paths = write_graph(g, tmp_path / "out")
    page, seen = offline_page(Path(paths["graph.html"]).resolve())
    _wait_plot(page)
    labels = page.eval_on_selector_all(".scatterlayer .textpoint text", "els => els.map(e => e.textContent)")
    names = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.name)")
    for token in MARKUP_TOKENS:
        assert token in labels, (token, labels)
    hovered = set()
    for curve, name in enumerate(names):
        if name not in ("seeds", "neighbours"):
            continue
        members = [nd for nd in g.nodes if nd.is_seed == (name == "seeds")]
        for point, node in enumerate(members):
            shown = hover_point(page, curve, point)
            assert shown.startswith(f"{node.display}id {node.id}"), (node.display, shown)
            assert_reads(shown, node.display)
            hovered.add(node.display)
    assert set(MARKUP_TOKENS) <= hovered
    assert_safe(page, seen)


# -- contextual map -----------------------------------------------------------------------------------------------


def test_context_hovers_read_quotes_exactly(tiny_gpt2_dir, cache_dir, run_cli, tmp_path, offline_page):
    out = tmp_path / "page"
    texts = ['He said "quoted" and it\'s fine.', "Fish &amp; chips a&b <script>alert(1)</script>"]
    res = run_cli("context", *texts, "-m", tiny_gpt2_dir, "--layer", "all", "--method", "pca",
                  "--out", out, "--no-png")
    assert res.code == 0, res
    page, seen = offline_page(out / "context.html")
    _wait_plot(page)
    data = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map("
                         "t => ({visible: t.visible, n: (t.x || []).length, skip: t.hoverinfo === 'skip'}))")
    checked = set()
    for curve, trace in enumerate(data):
        if trace["visible"] is not True or not trace["n"] or trace["skip"]:
            continue
        for point in range(trace["n"]):
            shown = hover_point(page, curve, point)
            for token in ('"quoted"', "it's", "&amp;", "a&b", "<script>"):
                if token in shown:
                    assert_reads(shown, token)
                    checked.add(token)
    assert checked == {'"quoted"', "it's", "&amp;", "a&b", "<script>"}, checked
    # the snippet line shows the text around the token literally, quotes included
    assert_safe(page, seen)


# -- token grid map ------------------------------------------------------------------------------------------------


def test_grid_hover_reads_quotes_exactly(tiny_gpt2_dir, cache_dir, tmp_path, offline_page):
    from embedlens.grid import EmbeddingGridVisualizer
    from embedlens.models.loading import load_model
    from embedlens.render.grid import write_grid_html

    model, tok = load_model(str(tiny_gpt2_dir))
    gm = EmbeddingGridVisualizer(model, tok).compute_map(3, 1.0, "replicated")
    gm.top5_display[4] = ['"quoted"', "it's", "&amp;", "a&b", "<br>"]  # the centre cell
    write_grid_html(gm, tmp_path / "g.html")
    page, seen = offline_page(tmp_path / "g.html")
    _wait_plot(page)
    shown = mouse_hover(page, 0.0, 0.0)
    for token in ('"quoted"', "it's", "&amp;", "a&b", "<br>"):
        assert_reads(shown, token)
    cells = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot text'), e => e.textContent)")
    assert any(c.startswith('"quo') for c in cells), cells  # the centre cell's label, shortened, not &quot;
    assert_safe(page, seen)


# -- demo report and its map, on the real model ------------------------------------------------------------------


@pytest.mark.real_model
def test_demo_map_hover_shows_the_quote_token_of_smollm2(smollm2, use_shared_cache, run_cli, tmp_path, offline_page):
    corpus = tmp_path / "quotes.txt"
    corpus.write_text('He said "yes" and she said "no"; it\'s R&D, not <b>bold</b> &amp; co.\n' * 5, encoding="utf-8")
    out = tmp_path / "demo"
    res = run_cli("demo", "--out", out, "--corpus", corpus)
    assert res.code == 0, res
    points = __import__("pyarrow.parquet", fromlist=["x"]).read_table(out / "map" / "points.parquet").to_pydict()
    page, seen = offline_page(out / "map" / "map.html", viewport={"width": 1280, "height": 1000})
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    quote_row = points["token_id"].index(18)  # SmolLM2's token `"`, the one the issue saw as `&quot;`
    assert smollm2.space.display[18] == '"'
    for token in ('"', '␣"', "&", "<"):
        if token not in points["display"]:
            continue
        row = points["display"].index(token)
        main, lines = component_hover(page, row)
        assert main == token and f"id {points['token_id'][row]}" in " ".join(lines), (token, main, lines)
        assert_reads(main, token)
    main, lines = component_hover(page, quote_row)
    assert main == '"' and "id 18" in " ".join(lines)
    assert_safe(page, seen)
    # the report page: tokens in its tables read exactly (HTML text, not Plotly)
    report, seen2 = offline_page(out / "index.html")
    cells = report.eval_on_selector_all("td.tok", "els => els.map(e => e.textContent)")
    tokens = json.loads((out / "tokens.json").read_text())
    neighbors = json.loads((out / "neighbors.json").read_text())
    for shown in [t["display"] for t in tokens["tokens"]] + [n["display"] for r in neighbors for n in r["neighbors"]]:
        assert shown in cells, (shown, cells[:20])
    assert not any(bad in c for c in cells for bad in OVER_ESCAPED)
    assert seen2.dialogs == [] and seen2.errors == []


# -- the explorer: its map, table and grid view are hovered and read in tests/test_serve_browser.py -------------


def test_grid_panel_page_of_several_layers_reads_tokens_exactly(tiny_gpt2_dir, cache_dir, tmp_path, offline_page):
    from embedlens.grid import EmbeddingGridVisualizer
    from embedlens.models.loading import load_model
    from embedlens.render.grid import write_panel_html

    model, tok = load_model(str(tiny_gpt2_dir))
    viz = EmbeddingGridVisualizer(model, tok)
    maps = [viz.compute_map(3, 1.0, "replicated", layer_idx=layer) for layer in (0, 1)]
    maps[1].top5_display[4] = ["&amp;", '"quoted"', "it's", "<script>", "a&b"]
    write_panel_html(maps, tmp_path / "panel.html")
    page, seen = offline_page(tmp_path / "panel.html")
    _wait_plot(page)
    curves = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.type)")
    assert curves.count("heatmap") == 2, curves
    shown = mouse_hover(page, 0.0, 0.0, curve=curves.index("heatmap", 1))  # the second layer's centre cell
    for token in ("&amp;", '"quoted"', "it's", "<script>", "a&b"):
        assert_reads(shown, token)
    assert_safe(page, seen)
