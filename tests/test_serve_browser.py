"""``embedlens serve`` end to end in headless Chromium: the map, selection, table, filters, exports and links.

One server (the tiny GPT-2 with markup-like tokens) and one browser for the module; each test checks what
the page shows against an independent computation in NumPy (points in a polygon, counts of filtered rows,
cosine neighbours), and that nothing left the machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import pytest

from embedlens.logitlens import SEMANTICS

from .conftest import MARKUP_TOKENS

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1500, "height": 950}
PCA = "#method=pca&dims=2"
SPREADSHEET = ("=", "+", "-", "@")


@pytest.fixture(scope="module")
def explorer(module_cache, tiny_gpt2_dir):
    """The running server, its lens and the /api answers the tests compare with.

    The server's background t-SNE (what the page swaps in when it is ready) is a quick stand-in here: the
    PCA map turned a quarter, so the swap is tested without 20 s of t-SNE on a busy machine.
    """
    import httpx

    import embedlens
    from embedlens.atlas.projection import Projection
    from embedlens.serve import ServerThread, create_app
    from embedlens.serve import explorer as explorer_module

    real = explorer_module.compute_projection

    def quick(view, reduce):
        if reduce.method != "tsne":
            return real(view, reduce)
        pca = real(view, reduce.replace(method="pca"))
        coords = np.ascontiguousarray(np.stack([-pca.coords[:, 1], pca.coords[:, 0]], axis=1))
        return Projection(coords=coords, method="tsne", dims=reduce.n_components, seed=reduce.seed, params={},
                          notes=["test stand-in"])

    mp = pytest.MonkeyPatch()
    mp.setattr(explorer_module, "compute_projection", quick)
    lens = embedlens.load(str(tiny_gpt2_dir))
    with ServerThread(create_app([lens])) as url:
        def get(path, **params):
            r = httpx.get(url + "api/" + path, params=params, timeout=60)
            r.raise_for_status()
            return r.json()

        yield {"url": url, "lens": lens, "get": get}
    mp.undo()


@pytest.fixture(scope="module")
def page(explorer, offline_module_page):
    """The explorer on the PCA map (a fixed map: no t-SNE swapped in under the tests)."""
    pg, seen = offline_module_page(explorer["url"] + PCA, viewport=VIEWPORT)
    wait_ready(pg)
    yield pg, seen
    pg.close()


def wait_ready(pg) -> None:
    pg.wait_for_selector("body[data-ready='1']", timeout=60_000)
    pg.wait_for_function("() => Number(document.getElementById('plot-0').dataset.drawn) > 0", timeout=60_000)


def settled(explorer, pg) -> dict:
    """Wait until frequencies, clusters and faithfulness reached the page; returns the arrays it works with."""
    get = explorer["get"]
    freq = np.asarray(poll(get, "frequency")["counts"])
    clusters = poll(get, "clusters", n="auto")
    pg.wait_for_function("() => { const P = window.embedlens.state.panels[0];"
                         " return P.freq && P.clusters && P.faith && P.faith.state === 'ready'; }", timeout=60_000)
    pts = get("points")
    coords = np.asarray(pg.evaluate("() => Array.from(window.embedlens.state.panels[0].coords)"), dtype=np.float32)
    coords = coords.reshape(-1, 2)
    return {"freq": freq, "assignment": np.asarray(clusters["assignment"]), "clusters": clusters, "points": pts,
            "coords": coords}


def poll(get, path, **params) -> dict:
    import time

    for _ in range(600):
        body = get(path, **params)
        if body["job"]["state"] == "ready":
            return body
        assert body["job"]["state"] != "error", body
        time.sleep(0.1)
    raise AssertionError(f"{path} never became ready")


def assert_offline(seen, url: str) -> None:
    host = urlsplit(url).netloc
    leaving = [r for r in seen.requests if urlsplit(r).scheme not in ("data", "blob") and urlsplit(r).netloc != host]
    assert not leaving, leaving
    assert urlsplit(url).hostname == "127.0.0.1"
    assert seen.dialogs == [] and seen.errors == [], (seen.dialogs, seen.errors)


def screen_of(pg, rows) -> np.ndarray:
    """Client (CSS px) positions of map rows through the component's own transform."""
    return np.asarray(pg.evaluate(
        """rows => { const m = window.embedlens.state.panels[0].map, t = m.transform();
        return rows.map(r => { const p = m.project(r); return [t.left + p[0], t.top + p[1]]; }); }""", list(rows)))


def inside_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points (an independent re-implementation of the lasso test)."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    xa, ya = poly[:, 0][None, :], poly[:, 1][None, :]
    xb, yb = np.roll(poly[:, 0], 1)[None, :], np.roll(poly[:, 1], 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        crosses = ((ya > y) != (yb > y)) & (x < (xb - xa) * (y - ya) / (yb - ya) + xa)
    return crosses.sum(axis=1) % 2 == 1


def encode_ids(ids) -> str:
    """The link's selection format, written independently: runs of sorted ids as base-36 ``gap[_extra]``."""
    def b36(v: int) -> str:
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"
        out = ""
        while True:
            v, r = divmod(v, 36)
            out = digits[r] + out
            if v == 0:
                return out

    ids = sorted(set(int(i) for i in ids))
    parts, prev, i = [], -1, 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(b36(ids[i] - prev - 1) + (f"_{b36(j - i)}" if j > i else ""))
        prev, i = ids[j], j + 1
    return ".".join(parts)


def table_rows(pg) -> list[int]:
    return pg.eval_on_selector_all("#sel-body tr[data-row]", "rs => rs.map(r => Number(r.dataset.row))")


# -- the map -------------------------------------------------------------------------------------------------


def test_opens_on_the_default_map_and_swaps_in_the_pending_tsne(explorer, offline_module_page):
    """The module's first test: its fresh cache has no t-SNE yet, so the page opens on PCA and swaps it in."""
    pg, seen = offline_module_page(explorer["url"], viewport=VIEWPORT)
    wait_ready(pg)
    info = pg.evaluate("() => window.embedlens.state.info.panels[0].default_map")
    assert info == {"method": "pca", "dims": 2, "pending": "tsne"}
    pg.wait_for_function("() => document.getElementById('plot-0').dataset.method === 'tsne'", timeout=120_000)
    assert "t-SNE map is ready" in pg.text_content("#plot-0 .notice")
    shown = np.asarray(pg.evaluate("() => Array.from(window.embedlens.state.panels[0].coords)"), dtype=np.float32)
    served = pg.evaluate("() => fetch('/api/projection/data?space=0&method=tsne&dims=2').then(r => r.arrayBuffer())"
                         ".then(b => Array.from(new Float32Array(b)))")
    assert np.array_equal(shown, np.asarray(served, dtype=np.float32))
    assert pg.input_value("#method") == "tsne" and "method=tsne" in pg.url
    assert_offline(seen, explorer["url"])
    pg.close()


def test_hover_reads_hostile_tokens_exactly_and_nothing_leaves(explorer, page):
    pg, seen = page
    lens = explorer["lens"]
    assert pg.eval_on_selector("#plot-0", "e => Number(e.dataset.drawn)") == len(lens.space)
    singles = [t for t in ('"', "'", "&", "<", ">") if t in lens.space.display]
    assert len(singles) == 5
    for token in [*MARKUP_TOKENS, *singles]:
        row = lens.space.display.index(token)
        # zoom on the token so no neighbour sits under the mouse, then move the real mouse onto it
        pg.evaluate("r => { const m = window.embedlens.state.panels[0].map; m.frame(); const p = m.project(r);"
                    " m.zoomBy(12, p[0], p[1]); }", row)
        (x, y), = screen_of(pg, [row])
        pg.mouse.move(x + 40, y + 40)
        pg.mouse.move(x, y)
        pg.wait_for_function("r => document.getElementById('hover-0').dataset.row == r",
                             arg=row, timeout=10_000)
        tip = pg.eval_on_selector("#plot-0 .em-tip .em-tip-main", "e => e.textContent")
        readout = pg.text_content("#hover-0")
        assert tip == token and readout == token, (token, tip, readout)
    pg.evaluate("() => window.embedlens.state.panels[0].map.frame()")
    pg.mouse.move(2, 2)
    # the cluster labels on the map are the server's labels, exactly (token text, never markup)
    clusters = poll(explorer["get"], "clusters", n="auto")
    pg.wait_for_selector("#plot-0 .em-label[data-level='clusters']")
    shown = pg.eval_on_selector_all("#plot-0 .em-label[data-level='clusters']", "ls => ls.map(l => l.textContent)")
    assert shown and set(shown) <= {c["label"] for c in clusters["result"]["clusters"]}
    assert pg.evaluate("() => document.querySelectorAll('#views script, #side script, .em-label script, .em-tip b').length") == 0
    assert_offline(seen, explorer["url"])


def test_lasso_with_the_mouse_selects_the_points_inside_into_the_table(explorer, page):
    pg, seen = page
    data = settled(explorer, pg)
    pg.click("#tab-map")
    pg.click("#tools button[data-tool='lasso']")
    box = pg.eval_on_selector("#plot-0 canvas", "c => { const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }")
    cx, cy, r = box[0] + box[2] / 2, box[1] + box[3] / 2, min(box[2], box[3]) * 0.3
    angles = np.linspace(0, 2 * np.pi, 7)[:-1] + 0.3
    poly = np.stack([cx + r * np.cos(angles) * np.array([1, 0.6, 1.1, 0.8, 1, 0.5]),
                     cy + r * np.sin(angles) * np.array([1, 0.6, 1.1, 0.8, 1, 0.5])], axis=1).round()
    # whole pixels, one mouse event per corner: the lasso's polygon is exactly this one (events carry whole px)
    pg.mouse.move(*poly[0])
    pg.mouse.down()
    for p in [*poly[1:], poly[0]]:
        pg.mouse.move(*p)
    pg.mouse.up()
    expected = np.flatnonzero(inside_polygon(screen_of(pg, range(len(data["coords"]))), poly))
    assert 10 < expected.size < len(data["coords"]) - 10  # a real test: some points in, most out
    pg.wait_for_function("n => window.embedlens.selection.rows().length === n", arg=int(expected.size), timeout=10_000)
    assert pg.evaluate("() => window.embedlens.selection.rows()") == expected.tolist()
    pg.click("#tab-table")
    order = pg.evaluate("() => window.embedlens.selection.order()")
    assert sorted(order) == expected.tolist()
    shown = table_rows(pg)  # only the rows in view (and a margin) are in the DOM
    assert shown == order[:len(shown)] and len(shown) >= min(30, len(order))
    pg.eval_on_selector("#table-scroll", "e => { e.scrollTop = e.scrollHeight; }")
    pg.wait_for_function("last => Array.from(document.querySelectorAll('#sel-body tr[data-row]')).pop().dataset.row == last",
                         arg=order[-1])
    pg.eval_on_selector("#table-scroll", "e => { e.scrollTop = 0; }")
    pg.wait_for_function("first => document.querySelector('#sel-body tr[data-row]').dataset.row == first", arg=order[0])
    assert pg.text_content("#tab-table") == f"selection ({expected.size})"
    # the table shows each row's facts, read from /api/points and /api/frequency
    row = order[0]
    cells = pg.eval_on_selector(f"#sel-body tr[data-row='{row}']", "r => Array.from(r.children, c => c.textContent)")
    pts = data["points"]
    assert cells[:4] == [str(pts["ids"][row]), pts["display"][row], f"{data['freq'][row]:,}", str(pts["length"][row])]
    # the link keeps the selection
    sel = parse_qs(urlsplit(pg.url).fragment)["sel"][0]
    assert sel == "0:" + encode_ids(np.asarray(pts["ids"])[expected])
    pg.click("#tools button[data-tool='pan']")


def test_table_sorts_by_clicking_headers(explorer, page):
    pg, _ = page
    data = settled(explorer, pg)
    rows = np.arange(0, len(data["coords"]), 3)
    pg.evaluate("rows => window.embedlens.selection.set(window.embedlens.state.panels[0], rows)", rows.tolist())
    pg.click("#tab-table")
    freq, lengths = data["freq"], np.asarray(data["points"]["length"])
    pg.click("#sel-head th[data-key='frequency']")  # numbers sort largest first on the first click
    want = sorted(rows.tolist(), key=lambda r: (-freq[r], r))
    assert pg.evaluate("() => window.embedlens.selection.order()") == want
    assert table_rows(pg) == want[:len(table_rows(pg))] and len(table_rows(pg)) >= 30
    pg.click("#sel-head th[data-key='frequency']")
    assert pg.evaluate("() => window.embedlens.selection.order()") == sorted(rows.tolist(), key=lambda r: (freq[r], r))
    pg.click("#sel-head th[data-key='length']")
    assert table_rows(pg)[:20] == sorted(rows.tolist(), key=lambda r: (-lengths[r], r))[:20]
    pg.click("#sel-head th[data-key='token']")
    display = data["points"]["display"]
    assert pg.evaluate("() => window.embedlens.selection.order()") == sorted(rows.tolist(), key=lambda r: (display[r], r))


def test_brushing_a_histogram_filters_the_map_and_the_other_counts(explorer, page):
    pg, _ = page
    data = settled(explorer, pg)
    pg.click("#tab-map")
    pg.click("#filter-clear") if pg.is_enabled("#filter-clear") else None
    lengths = np.minimum(np.asarray(data["points"]["length"]), 30)
    lo, hi = 2, 4
    a = pg.eval_on_selector(f".hist[data-dim='length'] .bar[data-bin='{lo}']", "b => { const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height - 3]; }")
    b = pg.eval_on_selector(f".hist[data-dim='length'] .bar[data-bin='{hi}']", "b => { const r = b.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height - 3]; }")
    pg.mouse.move(*a)
    pg.mouse.down()
    pg.mouse.move(*b, steps=5)
    pg.mouse.up()
    keep = (lengths >= lo) & (lengths <= hi)
    assert pg.text_content("#filter-summary").startswith(f"{keep.sum():,} of {len(lengths):,}")
    assert pg.evaluate("() => Array.from(window.embedlens.filters.mask())") == keep.astype(int).tolist()
    freq_bin = np.where(data["freq"] > 0, np.floor(np.log2(np.maximum(data["freq"], 1))).astype(int) + 1, 0)
    shown = dict(pg.eval_on_selector_all(".hist[data-dim='frequency'] .bar", "bs => bs.map(b => [Number(b.dataset.bin), Number(b.dataset.count)])"))
    assert shown == {b: int(((freq_bin == b) & keep).sum()) for b in range(freq_bin.max() + 1)}
    # the brushed histogram itself still counts every token (the filter is its own)
    own = dict(pg.eval_on_selector_all(".hist[data-dim='length'] .bar", "bs => bs.map(b => [Number(b.dataset.bin), Number(b.dataset.count)])"))
    assert own == {b: int((lengths == b).sum()) for b in range(lengths.max() + 1)}
    # a click on cluster bars narrows further: the length counts are now those of the chosen clusters
    assignment = data["assignment"]
    top = int(np.bincount(assignment[assignment >= 0]).argmax())
    label = next(c["label"] for c in data["clusters"]["result"]["clusters"] if c["id"] == top)
    cluster_bar = pg.eval_on_selector_all(".hist[data-dim='cluster'] .bar", "(bs, l) => bs.findIndex(b => b.title.startsWith(l + ':'))", label)
    pg.click(f".hist[data-dim='cluster'] .bar >> nth={cluster_bar}")
    both = keep & (assignment == top)
    assert pg.text_content("#filter-summary").startswith(f"{both.sum():,} of")
    own = dict(pg.eval_on_selector_all(".hist[data-dim='length'] .bar", "bs => bs.map(b => [Number(b.dataset.bin), Number(b.dataset.count)])"))
    assert own == {b: int(((lengths == b) & (assignment == top)).sum()) for b in range(lengths.max() + 1)}
    pg.click("#filter-clear")
    assert pg.evaluate("() => window.embedlens.filters.mask()") is None


def test_export_csv_and_json_are_exact_and_spreadsheet_safe(explorer, page):
    pg, _ = page
    data = settled(explorer, pg)
    pts = data["points"]
    display = pts["display"]
    hostile = [display.index(t) for t in MARKUP_TOKENS]
    formula = [i for i, s in enumerate(display) if s.startswith(SPREADSHEET)]
    assert formula, "the tiny vocabulary has byte tokens such as '=' and '-'"
    rows = sorted(set(hostile + formula + [0, 1, 2]))
    pg.evaluate("rows => window.embedlens.selection.set(window.embedlens.state.panels[0], rows)", rows)
    pg.click("#tab-table")
    pg.click("#sel-head th[data-key='id']")
    if not pg.text_content("#sel-head th[data-key='id']").endswith("▲"):
        pg.click("#sel-head th[data-key='id']")  # ids ascending
    with pg.expect_download() as dl:
        pg.click("#export-csv")
    text = open(dl.value.path(), encoding="utf-8", newline="").read()
    table = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(r["row"]) for r in table) == rows
    for r in table:
        row = int(r["row"])
        token = display[row]
        assert r["token"] == ("'" + token if token.startswith(SPREADSHEET) else token), (token, r["token"])
        assert int(r["id"]) == pts["ids"][row] and int(r["length"]) == pts["length"][row]
        assert int(r["frequency"]) == data["freq"][row]
    assert {r["token"] for r in table} >= set(MARKUP_TOKENS)
    # the table's token cells read exactly as the readable tokens
    cells = dict(pg.eval_on_selector_all("#sel-body tr[data-row]", "rs => rs.map(r => [Number(r.dataset.row), r.children[1].textContent])"))
    assert {r: display[r] for r in hostile} == {r: cells[r] for r in hostile}
    pg.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=explorer["url"].rstrip("/"))
    pg.click("#copy-ids")
    pg.wait_for_function("() => document.getElementById('sel-note').textContent.startsWith('copied')")
    copied = pg.evaluate("() => navigator.clipboard.readText()")
    assert copied.split() == [str(pts["ids"][r]) for r in sorted(rows, key=lambda r: pts["ids"][r])]
    with pg.expect_download() as dl:
        pg.click("#export-json")
    body = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert [t["token"] for t in body["tokens"]] == [display[r] for r in sorted(rows, key=lambda r: pts["ids"][r])]


def test_a_link_restores_the_selection_and_the_view(explorer, offline_module_page):
    lens = explorer["lens"]
    rows = [3, 4, 5, 6, 10, 40, 41, 299, lens.space.display.index("<script>")]
    ids = [int(lens.space.ids[r]) for r in rows]
    url = (explorer["url"] + PCA + "&view=table&k=5&sel=0:" + encode_ids(ids) + "&token=" + quote("tok:<script>")
           + "&search=" + quote("^l", safe="") + "&mode=regex")
    pg, seen = offline_module_page(url, viewport=VIEWPORT)
    wait_ready(pg)
    assert pg.evaluate("() => window.embedlens.selection.rows()") == sorted(rows)
    assert sorted(table_rows(pg)) == sorted(rows)
    assert pg.is_visible("#view-table") and not pg.is_visible("#view-map")
    pg.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
    shown = pg.eval_on_selector_all(".sel-panel table.neighbors tr[data-id]", "rs => rs.map(r => Number(r.dataset.id))")
    assert shown == [n.id for n in lens.nearest("tok:<script>", 5).neighbors]
    assert pg.evaluate("window.embedlens.state.panels[0].overlays.search") == [
        i for i, s in enumerate(lens.space.display) if s.lower().startswith("l")]
    assert_offline(seen, explorer["url"])
    pg.close()


# -- a token, the search, the layers ------------------------------------------------------------------------


def test_click_a_token_draws_lines_to_its_true_neighbours(explorer, page):
    pg, _ = page
    lens = explorer["lens"]
    pg.click("#tab-map")
    row = lens.space.display.index("<script>")
    pg.evaluate("r => { const m = window.embedlens.state.panels[0].map; m.frame(); const p = m.project(r); m.zoomBy(12, p[0], p[1]); }", row)
    (x, y), = screen_of(pg, [row])
    pg.mouse.move(x + 30, y + 30)
    pg.mouse.click(x, y)
    pg.wait_for_function("r => { const t = window.embedlens.state.panels[0].overlays.truth; return t && t.row === r; }", arg=row)
    v = np.asarray(lens.space.vectors, dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v[row]
    cos[row] = -np.inf
    want = np.argsort(-cos, kind="stable")[:10]
    got = pg.evaluate("() => window.embedlens.state.panels[0].overlays.truth.rows")
    assert got == want.tolist()
    assert pg.text_content(".selected-token .tok") == "<script>"
    pg.evaluate("() => window.embedlens.state.panels[0].map.frame()")


def test_search_lists_exact_matches_first_with_the_count(explorer, page):
    pg, _ = page
    lens = explorer["lens"]
    pg.fill("#search", "the")
    pg.select_option("#search-mode", "text")
    pg.click("#search-form button")
    pg.wait_for_function("() => document.getElementById('search-summary').textContent.includes('match')")
    display = lens.space.display
    hits = [i for i, s in enumerate(display) if "the" in s.lower()]
    exact = [i for i in hits if display[i].lstrip("␣") .lower() == "the"]
    assert pg.text_content("#search-summary") == f"{len(hits)} matches · {len(exact)} exact"
    listed = pg.eval_on_selector_all("#search-list li[data-row]", "ls => ls.map(l => Number(l.dataset.row))")
    assert sorted(listed[:len(exact)]) == sorted(exact) and sorted(listed) == sorted(hits)
    assert sorted(pg.evaluate("window.embedlens.state.panels[0].overlays.search")) == hits


def test_layers_view_fills_the_main_area(explorer, page):
    pg, _ = page
    pg.fill("#prompt-text", "The list of <br> tags")
    pg.click("#prompt-form button")
    pg.wait_for_selector("#layers-btn:not([hidden])")
    pg.click("#layers-btn")
    pg.wait_for_function("() => Number(document.getElementById('layers-plot').dataset.layers) > 0", timeout=60_000)
    plot = pg.eval_on_selector("#layers-plot .main-svg", "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }")
    view = pg.eval_on_selector("#view-layers", "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }")
    assert plot[0] >= 0.9 * view[0] and plot[1] >= 0.75 * view[1], (plot, view)
    assert view[0] >= 0.6 * VIEWPORT["width"] and view[1] >= 0.75 * VIEWPORT["height"]
    ticks = pg.evaluate("() => Array.from(document.querySelectorAll('#layers-plot .xtick text'), e => e.textContent)")
    assert "<br>" in ticks
    pg.wait_for_function("() => !document.getElementById('layers-note').textContent.startsWith('decoding')")
    assert pg.text_content("#layers-note").endswith(SEMANTICS)  # read from the result's settings
    pg.click("#tab-map")


def test_search_result_prompt_and_trajectory(explorer, page):
    pg, _ = page
    lens = explorer["lens"]
    pg.fill("#search", "list")
    # the page is shared: an earlier test's search may also have said "2 matches", so wait for this one's answer
    pg.evaluate("() => { document.getElementById('search-summary').textContent = ''; }")
    pg.click("#search-form button")
    pg.wait_for_function("() => document.getElementById('search-summary').textContent.startsWith('2 matches')")
    variant_rows = {lens.space.row_of_id[n.id] for n in lens.variants("list").neighbors}
    assert variant_rows <= set(pg.evaluate("window.embedlens.state.panels[0].overlays.search"))
    target = lens.space.row_of_label["Ġlist"]
    pg.click(f"#search-list li[data-row='{target}']")
    pg.wait_for_function("id => (document.querySelector('.sel-panel table.neighbors tr[data-id]') || {}).dataset &&"
                         " location.hash.includes('token=id%3A' + id)", arg=int(lens.space.ids[target]))
    expected = lens.nearest(f"id:{int(lens.space.ids[target])}", 20)
    shown = pg.eval_on_selector_all(".sel-panel table.neighbors tr[data-id]",
                                    "rs => rs.map(r => [Number(r.dataset.id), r.children[2].textContent, r.children[3].textContent])")
    assert [tuple(r) for r in shown] == [(n.id, n.display, f"{n.score:.4f}") for n in expected.neighbors]
    # markup-like tokens in the search list are text, never elements
    pg.fill("#search", "<")
    pg.click("#search-form button")
    pg.wait_for_function("() => document.querySelectorAll('#search-list li[data-row]').length >= 3")
    items = pg.eval_on_selector_all("#search-list li[data-row] .tok", "li => li.map(x => x.textContent)")
    assert {"<script>", "</div>", "<br>"} <= set(items)
    assert pg.evaluate("document.querySelectorAll('#side script, #side br, #side div.x').length") == 0
    # the prompt: its tokens as chips and on the map; one token's path through the layers
    pg.fill("#prompt-text", "The list of <br> tags")
    pg.click("#prompt-form button")
    pg.wait_for_selector("#prompt-tokens span")
    table = lens.tokens("The list of <br> tags")
    assert pg.eval_on_selector_all("#prompt-tokens span", "s => s.map(x => x.textContent)") == [
        f"{r.position} {r.display}" for r in table.rows]
    assert pg.evaluate("window.embedlens.state.panels[0].overlays.prompt") == [r.id for r in table.rows]
    pg.select_option("#trajectory-pos", "1")
    pg.click("#trajectory-btn")
    pg.wait_for_function("() => window.embedlens.state.panels[0].overlays.trajectory !== null")
    assert len(pg.evaluate("window.embedlens.state.panels[0].overlays.trajectory.layers")) == lens.meta["n_layers"] + 1
    assert "pos=1" in pg.url


# -- server actions on a selection, the default map, colours -------------------------------------------------


def test_centroid_and_graph_of_the_selection(explorer, page):
    pg, _ = page
    lens = explorer["lens"]
    rows = [lens.space.display.index(t) for t in ("<script>", "</div>", "<br>", "[/b]")]
    pg.evaluate("rows => window.embedlens.selection.set(window.embedlens.state.panels[0], rows)", rows)
    pg.click("#tab-table")
    pg.fill("#k", "7")
    pg.dispatch_event("#k", "change")
    pg.click("#sel-centroid")
    pg.wait_for_selector("#centroid-result table.centroid tr[data-id]")
    v = np.asarray(lens.space.vectors, dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c = v[rows].mean(axis=0)
    want = np.argsort(-(v @ (c / np.linalg.norm(c))), kind="stable")[:7]
    shown = pg.eval_on_selector_all("#centroid-result tr[data-row]", "rs => rs.map(r => Number(r.dataset.row))")
    assert shown == want.tolist()
    pg.click("#sel-graph")
    pg.wait_for_function("() => Number(document.getElementById('graph-map').dataset.nodes) > 0", timeout=60_000)
    assert pg.is_visible("#view-graph")
    graph = pg.evaluate("rows => fetch('/api/selection_graph', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                        " body: JSON.stringify({space: 0, rows, k: 10})}).then(r => r.json())", rows)
    assert pg.eval_on_selector("#graph-map", "e => [Number(e.dataset.nodes), Number(e.dataset.edges)]") == [
        len(graph["nodes"]), len(graph["edges"])]
    labels = pg.eval_on_selector_all("#graph-map .em-label", "ls => ls.map(l => l.textContent)")
    assert {"<script>", "</div>", "<br>", "[/b]"} <= set(labels)
    pg.fill("#k", "20")
    pg.dispatch_event("#k", "change")
    pg.click("#tab-map")


def test_colour_scales_are_readable(explorer, page):
    pg, _ = page
    data = settled(explorer, pg)
    pg.click("#tab-map")
    pg.select_option("#color", "frequency")
    colors = np.asarray(pg.evaluate("() => Array.from(window.embedlens.colouring(window.embedlens.state.panels[0]).colors)"))
    rgb = colors.reshape(-1, 3).astype(float)
    seen = data["freq"] > 0
    # a rank scale: the seen tokens spread evenly over the ramp (a quarter in each quarter of it), unseen ones grey
    lum = (rgb[seen] @ [0.2126, 0.7152, 0.0722])
    order = np.argsort(data["freq"][seen], kind="stable")
    quarters = np.array_split(lum[order], 4)
    assert [q.mean() for q in quarters] == sorted(q.mean() for q in quarters)
    assert np.all(rgb[~seen] == [205, 205, 205])
    legend = pg.text_content("#plot-0 .legend")
    ranked = np.sort(data["freq"][seen])
    assert "rank scale" in legend and f"median {ranked[(ranked.size - 1) // 2]:,}" in legend
    # local faithfulness: the colour of each token follows /api/faithfulness
    faith = poll(explorer["get"], "faithfulness", method="pca", dims=2)["result"]
    pg.select_option("#color", "faithfulness")
    pg.wait_for_function("() => (window.embedlens.state.panels[0].faith || {}).state === 'ready'", timeout=60_000)
    lr = np.asarray(pg.evaluate("() => window.embedlens.state.panels[0].faith.local_recall"))
    assert np.allclose(lr, faith["local_recall"])
    assert f"recall@{faith['k']} {faith['recall']:.3f}" in pg.text_content("#plot-0 ~ .caption")
    pg.select_option("#color", "script")
    names = pg.eval_on_selector_all("#plot-0 .legend .legend-row .tok", "ns => ns.map(n => n.textContent)")
    counts = {n: int(c) for n, c in zip(*np.unique(np.asarray(data["points"]["script"]), return_counts=True), strict=True)}
    assert set(names) == set(counts)
    pg.select_option("#color", "frequency")


def test_grid_view_draws_the_grid_api_and_hovers_exactly(explorer, page):
    """The grid view: computed from its form, the heatmap is /api/grid's map, the hover reads its tokens."""
    from embedlens.grid import EmbeddingGridVisualizer

    pg, seen = page
    lens = explorer["lens"]
    pg.click("#tab-grid")
    pg.fill("#grid-layer", "1")
    pg.select_option("#grid-plane", "replicated")
    pg.fill("#grid-size", "5")
    pg.click("#grid-form button")
    pg.wait_for_function("() => { const g = document.getElementById('grid-plot');"
                         " return g && g._fullData && g._fullData.length === 1; }", timeout=120_000)
    gm = EmbeddingGridVisualizer(lens).compute_map(5, 0.5, "replicated", layer_idx=1, progress=False)
    shown_top = pg.evaluate("() => document.getElementById('grid-plot')._fullData[0].text.flat()")
    # plotly_text escapes exactly &, < and >
    assert [t.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for t in shown_top] == [
        row[0] for row in gm.top5_display]
    cell = 12  # the centre cell of 5 x 5
    pos = pg.evaluate(
        """() => { const g = document.getElementById('grid-plot'), L = g._fullLayout, t = g._fullData[0];
        const r = g.querySelector('.main-svg').getBoundingClientRect();
        return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[2]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[2])]; }""")
    pg.mouse.move(pos[0] + 3, pos[1] + 3)
    pg.mouse.move(pos[0], pos[1])
    pg.wait_for_function("() => document.querySelector('#grid-plot .hoverlayer').textContent.length > 0")
    hover = pg.evaluate("() => document.querySelector('#grid-plot .hoverlayer').textContent")
    for token in gm.top5_display[cell]:
        assert token in hover
        for bad in ("&quot;", "&#39;", "&lt;", "&gt;", "&amp;amp;"):
            assert bad not in hover.replace(token, ""), (bad, token, hover)
    box = pg.eval_on_selector("#grid-plot .main-svg", "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }")
    assert min(box) >= 0.6 * (VIEWPORT["height"] - 150)  # sized to be read, not a strip of the side bar
    if shot := os.environ.get("EMBEDLENS_SCREENSHOT_DIR"):  # to look at the page
        pg.screenshot(path=str(Path(shot) / "grid.png"))
    assert_offline(seen, explorer["url"])
    pg.click("#tab-map")


@pytest.mark.real_model
def test_smollm2_whole_vocabulary(smollm2, use_shared_cache, offline_module_page):
    from embedlens.serve import ServerThread, create_app

    with ServerThread(create_app([smollm2])) as url:
        pg, seen = offline_module_page(url + PCA, viewport=VIEWPORT)
        wait_ready(pg)
        assert pg.eval_on_selector("#plot-0", "e => Number(e.dataset.drawn)") == 49_152
        pg.fill("#search", "list")
        pg.click("#search-form button")
        pg.wait_for_function("() => document.getElementById('search-summary').textContent.includes('match')")
        highlighted = set(pg.evaluate("window.embedlens.state.panels[0].overlays.search"))
        variant_rows = {smollm2.space.row_of_id[n.id] for n in smollm2.variants("list").neighbors}
        assert len(variant_rows) >= 8 and variant_rows <= highlighted
        first = pg.eval_on_selector_all("#search-list li[data-row]", "ls => ls.slice(0, 2).map(l => l.textContent)")
        assert first[0].startswith("list") or first[0].startswith("␣list"), first  # exact matches lead
        row = smollm2.space.row_of_label["list"]
        pg.click(f"#search-list li[data-row='{row}']")
        pg.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
        expected = smollm2.nearest("list", 20)
        shown = pg.eval_on_selector_all(".sel-panel table.neighbors tr[data-id]",
                                        "rs => rs.map(r => [Number(r.dataset.id), r.children[2].textContent, r.children[3].textContent])")
        assert [tuple(r) for r in shown] == [(n.id, n.display, f"{n.score:.4f}") for n in expected.neighbors]
        assert_offline(seen, url)
        pg.close()
