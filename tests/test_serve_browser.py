"""``embedlens serve`` end to end in headless Chromium: offline page, search, neighbours, markup tokens."""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the test set-up installs Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def tiny_server(module_cache, tiny_gpt2_dir):
    import embedlens
    from embedlens.serve import ServerThread, create_app

    lens = embedlens.load(str(tiny_gpt2_dir))
    with ServerThread(create_app([lens])) as url:
        yield url, lens


def open_page(browser, url: str):
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return page, requests, errors


def assert_local(requests: list[str], url: str) -> None:
    host = urlsplit(url).netloc
    leaving = [r for r in requests if urlsplit(r).scheme not in ("data", "blob") and urlsplit(r).netloc != host]
    assert not leaving, leaving
    assert urlsplit(url).hostname == "127.0.0.1"


def shown_neighbors(page, panel: int = 0) -> list[tuple[int, str, str]]:
    rows = page.eval_on_selector_all(
        f".sel-panel[data-panel='{panel}'] table.neighbors tr[data-id]",
        "rows => rows.map(r => [Number(r.dataset.id), r.children[2].textContent, r.children[3].textContent])")
    return [tuple(r) for r in rows]


def search(page, text: str, mode: str = "text") -> None:
    page.fill("#search", text)
    page.select_option("#search-mode", mode)
    page.click("#search-form button")
    page.wait_for_function("q => document.getElementById('search-summary').textContent.includes('match')", arg=text)


@pytest.mark.slow
def test_tiny_model_page_search_click_neighbours_and_markup(browser, tiny_server):
    url, lens = tiny_server
    page, requests, errors = open_page(browser, url)
    assert page.eval_on_selector("#plot-0", "e => Number(e.dataset.drawn)") == len(lens.space)

    # Searching `list` highlights its variants on the map.
    search(page, "list")
    highlighted = set(page.evaluate("window.embedlens.state.panels[0].overlays.search"))
    variant_rows = {lens.space.row_of_id[n.id] for n in lens.variants("list").neighbors}
    assert variant_rows and variant_rows <= highlighted
    assert page.eval_on_selector("#plot-0", "e => e.data[1].x.length") == len(highlighted)

    # Clicking a search result selects it: the same neighbours as `embedlens neighbors`.
    target = lens.space.row_of_label["Ġlist"] if "Ġlist" in lens.space.row_of_label else min(variant_rows)
    page.click(f"#search-list li[data-row='{target}']")
    page.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
    expected = lens.nearest(f"id:{int(lens.space.ids[target])}", 20)
    assert shown_neighbors(page) == [(n.id, n.display, f"{n.score:.4f}") for n in expected.neighbors]
    assert f"token=id%3A{int(lens.space.ids[target])}" in page.url

    # A click on the WebGL map (through Plotly's own event) selects the clicked point.
    row = lens.space.row_of_label["Ġthe"] if "Ġthe" in lens.space.row_of_label else 10
    page.evaluate("r => document.getElementById('plot-0').emit('plotly_click', {points: [{curveNumber: 0, pointNumber: r}]})",
                  row)
    page.wait_for_function("id => location.hash.includes('token=id%3A' + id)", arg=int(lens.space.ids[row]))
    page.wait_for_function("n => document.querySelectorAll('.sel-panel table.neighbors tr[data-id]').length === n", arg=20)
    expected = lens.nearest(f"id:{int(lens.space.ids[row])}", 20)
    page.wait_for_function("id => document.querySelector('.sel-panel table.neighbors tr[data-id]').dataset.id == id",
                           arg=expected.neighbors[0].id)
    assert [r[0] for r in shown_neighbors(page)] == [n.id for n in expected.neighbors]

    # Tokens that look like markup are shown literally and inject nothing.
    before = page.evaluate("document.getElementsByTagName('*').length")
    search(page, "<")
    items = page.eval_on_selector_all("#search-list li", "li => li.map(x => x.textContent)")
    for markup in ("<script>", "</div>", "<br>"):
        assert markup in items
    script_row = lens.space.row_of_label["<script>"]
    page.click(f"#search-list li[data-row='{script_row}']")
    page.wait_for_function("() => (document.querySelector('.selected-token .tok') || {}).textContent === '<script>'")
    assert page.evaluate("document.querySelectorAll('#side script, #side br, #side b, #side div.x').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 3  # boot.js, plotly.min.js, app.js only
    hover = page.evaluate("r => document.getElementById('plot-0').data[0].hovertext[r]", script_row)
    assert hover == "&lt;script&gt;"  # Plotly decodes entities: shown as <script>, never parsed as a tag
    # the selected point's label is drawn by WebGL, which decodes no entities but reads tags: a zero-width
    # space after "<" keeps it literal (an entity would show as `&lt;script&gt;` on the map)
    page.wait_for_function("() => JSON.stringify(document.getElementById('plot-0').data[4].text) === "
                           "JSON.stringify(['<\u200bscript>'])")
    assert page.evaluate("document.getElementsByTagName('*').length") >= before  # sanity: the page is still alive
    assert not errors, errors
    assert_local(requests, url)
    page.close()


@pytest.mark.slow
def test_a_link_reproduces_the_view(browser, tiny_server):
    url, lens = tiny_server
    page, requests, errors = open_page(browser, url + "#method=pca&dims=2&k=5&token=" + quote("tok:<script>")
                                       + "&search=" + quote("^l", safe="") + "&mode=regex")
    page.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
    assert [r[0] for r in shown_neighbors(page)] == [n.id for n in lens.nearest("tok:<script>", 5).neighbors]
    assert page.input_value("#search") == "^l" and page.input_value("#search-mode") == "regex"
    rows = page.evaluate("window.embedlens.state.panels[0].overlays.search")
    assert rows == [i for i, s in enumerate(lens.space.display) if s.lower().startswith("l")]

    # The prompt box: tokens on the map, and the per-layer trajectory of one of them.
    page.fill("#prompt-text", "The list of <br> tags")
    page.click("#prompt-form button")
    page.wait_for_selector("#prompt-tokens span")
    table = lens.tokens("The list of <br> tags")
    assert page.eval_on_selector_all("#prompt-tokens span", "s => s.map(x => x.textContent)") == [
        f"{r.position} {r.display}" for r in table.rows]
    assert page.evaluate("window.embedlens.state.panels[0].overlays.prompt") == [r.id for r in table.rows]
    page.select_option("#trajectory-pos", "1")
    page.click("#trajectory-btn")
    page.wait_for_function("() => document.getElementById('plot-0').data[6].x.length > 0")
    assert page.evaluate("document.getElementById('plot-0').data[6].x.length") == lens.meta["n_layers"] + 1
    assert "pos=1" in page.url
    assert not errors, errors
    assert_local(requests, url)
    page.close()


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_whole_vocabulary(browser, smollm2, use_shared_cache):
    from embedlens.serve import ServerThread, create_app

    with ServerThread(create_app([smollm2])) as url:
        page, requests, errors = open_page(browser, url)
        assert page.eval_on_selector("#plot-0", "e => Number(e.dataset.drawn)") == 49_152
        search(page, "list")
        highlighted = set(page.evaluate("window.embedlens.state.panels[0].overlays.search"))
        variant_rows = {smollm2.space.row_of_id[n.id] for n in smollm2.variants("list").neighbors}
        assert len(variant_rows) >= 8 and variant_rows <= highlighted
        row = smollm2.space.row_of_label["list"]
        page.click(f"#search-list li[data-row='{row}']")
        page.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
        expected = smollm2.nearest("list", 20)
        assert shown_neighbors(page) == [(n.id, n.display, f"{n.score:.4f}") for n in expected.neighbors]
        assert not errors, errors
        assert_local(requests, url)
        page.close()
