"""``embedlens export-site`` / ``serve --export``: the explorer as a static folder, opened from ``file://``.

One export of the tiny GPT-2 (tokens such as ``<script>``, ``&amp;``, ``"quoted"``) for the module; the
data files are checked against NumPy (brute-force cosine top-k, the server's own answers), then the
folder is opened in headless Chromium from ``file://``: the map draws, hover, search, neighbours, a box
selection, the table and the CSV export read the tokens exactly, and no request leaves the folder.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from .conftest import MARKUP_TOKENS

# The browser tests share one page in order (a selection made by one is the permalink the next reopens):
# one xdist worker runs this module, in file order.
pytestmark = pytest.mark.xdist_group("export_site")

pytest.importorskip("starlette")

VIEWPORT = {"width": 1400, "height": 900}
SPREADSHEET = ("=", "+", "-", "@")
K = 12


@pytest.fixture(scope="module")
def exported(module_cache, tiny_gpt2_dir, tmp_path_factory):
    import embedlens
    from embedlens.serve.export import export_site

    lens = embedlens.load(str(tiny_gpt2_dir))
    out = tmp_path_factory.mktemp("export") / "site"
    result = export_site([lens], out, k=K, progress=False)
    return {"lens": lens, "result": result, "dir": out, "data": read_panel(out / "data" / "panel-0.js")}


def read_panel(path: Path) -> dict:
    """The JSON inside ``window.EMBEDLENS_DATA.panels[0] = {...};`` (json_for_script escapes are JSON escapes)."""
    text = path.read_text(encoding="utf-8")
    prefix = "window.EMBEDLENS_DATA.panels[0] = "
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix):-2])


def typed(block: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(block["base64"]), dtype="<" + {"float32": "f4", "int32": "i4"}[block["dtype"]]
                         ).reshape(block["shape"])


def brute_topk(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit.astype(np.float64) @ unit.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


# -- the folder ------------------------------------------------------------------------------------------------


def test_export_holds_every_tokens_exact_neighbours_and_the_map(exported):
    lens, data = exported["lens"], exported["data"]
    n = len(lens.space)
    rows, scores = typed(data["neighbors"]["rows"]), typed(data["neighbors"]["scores"])
    assert rows.shape == scores.shape == (n, K)
    want_rows, want_scores = brute_topk(np.asarray(lens.space.vectors, dtype=np.float64), K)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # the exact index's contract: the ids of a float64 brute force, ties by lower row (1% wrong rows would pass a share)
    np.testing.assert_array_equal(rows, want_rows)
    from embedlens.atlas.default_map import default_map

    proj = default_map(lens.input).projection  # the PCA map the export computed and cached
    assert data["map"]["method"] == proj.method == "pca" and data["map"]["computed_now"] is True
    assert any(note.startswith("PCA map: no t-SNE or UMAP map") for note in data["map"]["notes"])
    assert np.array_equal(typed(data["map"]["coords"]), proj.coords.astype(np.float32))
    assert data["points"]["display"] == list(lens.space.display)
    # the clusters, local recall and frequencies are the server's answers, in its shape: {job, result, ...}
    assert all(data[key]["job"]["state"] == "ready" for key in ("faithfulness", "clusters", "frequency"))
    local = np.asarray(data["faithfulness"]["result"]["local_recall"])
    assert local.shape == (n,) and 0 <= local.min() and local.max() <= 1
    assert len(data["clusters"]["assignment"]) == n and data["clusters"]["result"]["clusters"]
    assert len(data["frequency"]["counts"]) == n


def test_manifest_sizes_and_page_are_offline(exported):
    out, result = exported["dir"], exported["result"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["k"] == K and manifest["seed"] == 0 and manifest["spaces"][0]["content_key"]
    assert manifest["spaces"][0]["map"]["method"] == "pca" and manifest["spaces"][0]["map"]["stand_in"] is True
    assert "embedlens" in manifest["versions"] and manifest["timings"]["panel_0"]["knn_s"] >= 0
    panel = manifest["timings"]["panel_0"]  # seconds per stage, rounded to 3 places: a format users read
    assert list(panel) == ["knn_s", "map_s", "recall_s", "clusters_s", "frequency_s", "pack_s"]
    assert all(s == round(s, 3) >= 0 for s in [*panel.values(), manifest["timings"]["total_s"]])
    assert manifest["timings"]["total_s"] >= sum(panel.values()) - 0.006
    files = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert {k: v for k, v in files.items() if k != "manifest.json"} == manifest["sizes"]
    assert result.total_bytes == sum(files.values())
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "/static/" not in html and "http" not in html.lower().replace("http-equiv", "")
    assert "Content-Security-Policy" in html and "connect-src 'none'" in html
    srcs = [s for s in re.findall(r'(?:src|href)="([^"]+)"', html) if s != "#"]
    assert srcs and all((out / s).is_file() for s in srcs), srcs
    # a token "</script>" cannot end a data script: no "<" at all inside it
    assert "<" not in (out / "data" / "panel-0.js").read_text(encoding="utf-8")


def test_bad_input_is_refused_before_any_work(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("export-site", str(blocker))
    assert r.code == 2 and "is a file" in r.err and len(r.err.strip().splitlines()) == 1
    r = run_cli("serve", "--export", str(tmp_path / "out"), "--export-k", "0")
    assert r.code == 2 and "--export-k must be" in r.err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    r = run_cli("export-site", str(busy), "--model", "no-such-model")
    assert r.code == 2 and "holds other files" in r.err
    assert (busy / "notes.txt").read_text() == "mine"
    # a manifest.json of something else (a web app, a dataset) does not make a folder an earlier export
    (busy / "manifest.json").write_text('{"name": "my app", "version": "1.0"}')
    r = run_cli("export-site", str(busy), "--model", "no-such-model")
    assert r.code == 2 and "holds other files" in r.err and len(r.err.strip().splitlines()) == 1
    assert sorted(p.name for p in busy.iterdir()) == ["manifest.json", "notes.txt"]


def test_an_earlier_export_is_replaced_only_when_it_holds_what_the_export_wrote(exported, tmp_path):
    import shutil

    from embedlens.errors import EmbedlensError
    from embedlens.serve.export import check_export_target

    site = tmp_path / "site"
    shutil.copytree(exported["dir"], site)
    assert check_export_target(site) == site.resolve()  # an earlier export, untouched: replaced
    (site / "data" / "mine.txt").write_text("notes")
    with pytest.raises(EmbedlensError, match="holds other files"):
        check_export_target(site)


@pytest.mark.parametrize("where", [".", ".."])
def test_the_current_folder_or_one_above_it_is_refused(tmp_path, monkeypatch, where):
    """Replacing the folder a shell sits in leaves the shell in a deleted folder (or fails half-way for '..')."""
    from embedlens.errors import EmbedlensError
    from embedlens.serve.export import check_export_target

    here = tmp_path / "empty" / "here"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    with pytest.raises(EmbedlensError, match="current folder"):
        check_export_target(where)
    assert check_export_target("new") == here / "new"


def test_serve_export_writes_the_folder_through_the_cli(run_cli, exported, tiny_gpt2_dir, tmp_path):
    """With a cached t-SNE map (a stand-in: the PCA map turned a quarter), the export opens on it."""
    from embedlens.atlas.projection import Projection, projection_path, save_projection

    lens = exported["lens"]
    pca = typed(exported["data"]["map"]["coords"])
    tsne = np.ascontiguousarray(np.stack([-pca[:, 1], pca[:, 0]], axis=1))
    save_projection(projection_path(lens.input.content_hash, "tsne", 2, 0),
                    Projection(coords=tsne, method="tsne", dims=2, seed=0, params={}, notes=["test stand-in"]))
    out = tmp_path / "again"
    r = run_cli("serve", "--model", str(tiny_gpt2_dir), "--export", str(out), "--export-k", str(K))
    assert r.code == 0, r.err
    assert r.out.strip() == str(out / "index.html")
    again = read_panel(out / "data" / "panel-0.js")
    assert again["neighbors"] == exported["data"]["neighbors"] and again["points"] == exported["data"]["points"]
    assert again["map"]["method"] == "tsne" and again["map"]["computed_now"] is False
    assert np.array_equal(typed(again["map"]["coords"]), tsne)
    assert len(again["faithfulness"]["result"]["local_recall"]) == len(lens.space)  # measured for the t-SNE map now


# -- the page from file:// ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(exported, offline_module_page):
    pg, seen = offline_module_page(exported["dir"] / "index.html", viewport=VIEWPORT)
    pg.wait_for_selector("body[data-ready='1']", timeout=60_000)
    pg.wait_for_function("() => Number(document.getElementById('plot-0').dataset.drawn) > 0", timeout=60_000)
    pg.wait_for_function("() => { const P = window.embedlens.state.panels[0];"
                         " return P.freq && P.clusters && P.faith && P.faith.state === 'ready'; }", timeout=30_000)
    yield pg, seen
    pg.close()


def assert_offline(seen) -> None:
    leaving = [u for u in seen.requests if urlsplit(u).scheme not in ("file", "data", "blob")]
    assert not leaving, leaving
    assert seen.dialogs == [] and seen.errors == [], (seen.dialogs, seen.errors)


def screen_of(pg, rows) -> np.ndarray:
    return np.asarray(pg.evaluate(
        """rows => { const m = window.embedlens.state.panels[0].map, t = m.transform();
        return rows.map(r => { const p = m.project(r); return [t.left + p[0], t.top + p[1]]; }); }""", list(rows)))


@pytest.mark.browser
def test_page_draws_the_map_and_hovers_hostile_tokens_exactly(exported, page):
    pg, seen = page
    lens = exported["lens"]
    display = list(lens.space.display)
    assert pg.eval_on_selector("#plot-0", "e => Number(e.dataset.drawn)") == len(display)
    assert pg.eval_on_selector("#plot-0", "e => e.dataset.method") == "pca"
    singles = [t for t in ('"', "'", "&", "<", ">") if t in display]
    assert len(singles) == 5
    for token in [*MARKUP_TOKENS, *singles]:
        row = display.index(token)
        pg.evaluate("r => { const m = window.embedlens.state.panels[0].map; m.frame(); const p = m.project(r);"
                    " m.zoomBy(12, p[0], p[1]); }", row)
        (x, y), = screen_of(pg, [row])
        pg.mouse.move(x + 40, y + 40)
        pg.mouse.move(x, y)
        pg.wait_for_function("r => document.getElementById('hover-0').dataset.row == r", arg=row, timeout=10_000)
        tip = pg.eval_on_selector("#plot-0 .em-tip .em-tip-main", "e => e.textContent")
        assert tip == token and pg.text_content("#hover-0") == token, (token, tip)
    pg.evaluate("() => window.embedlens.state.panels[0].map.frame()")
    pg.mouse.move(2, 2)
    labels = pg.eval_on_selector_all("#plot-0 .em-label[data-level='clusters']", "ls => ls.map(l => l.textContent)")
    assert labels and set(labels) <= {c["label"] for c in exported["data"]["clusters"]["result"]["clusters"]}
    # what needs a server is hidden, and one line says so
    assert pg.is_hidden("#prompt") and pg.is_hidden("#tab-layers") and pg.is_hidden("#sel-centroid")
    assert "embedlens serve" in pg.text_content("#offline-note")
    assert pg.evaluate("() => document.querySelectorAll('#views script, #side script, .em-label script').length") == 0
    assert pg.input_value("#k") == str(K)
    # the page's own policy forbids the network: a fetch is refused before any request is made
    blocked = pg.evaluate("""() => new Promise(done => {
        document.addEventListener('securitypolicyviolation', e => done(e.violatedDirective), { once: true });
        fetch('http://127.0.0.1:9/x').catch(() => null); })""")
    assert blocked == "connect-src"
    pg.screenshot(path=str(exported["dir"].parent / "export-page.png"))
    assert_offline(seen)


@pytest.mark.browser
def test_search_then_click_shows_the_brute_force_neighbours(exported, page):
    pg, seen = page
    lens = exported["lens"]
    display = list(lens.space.display)
    pg.fill("#search", "<scr")
    pg.select_option("#search-mode", "text")
    pg.click("#search-form button[type='submit']")
    pg.wait_for_selector("#search-list li[data-row]")
    found = pg.eval_on_selector_all("#search-list li[data-row]", "ls => ls.map(l => l.querySelector('.tok').textContent)")
    assert found == [s for s in display if "<scr" in s.lower()] and "<script>" in found
    pg.fill("#k", str(K))
    pg.dispatch_event("#k", "change")
    row = display.index("<script>")
    pg.click(f"#search-list li[data-row='{row}']")
    pg.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
    shown = pg.eval_on_selector_all(".sel-panel table.neighbors tr[data-id]",
                                    "rs => rs.map(r => [Number(r.dataset.row), r.children[2].textContent, Number(r.children[3].textContent)])")
    want_rows, want_scores = brute_topk(np.asarray(lens.space.vectors, dtype=np.float64), K)
    assert [r for r, _, _ in shown] == want_rows[row].tolist()
    assert [t for _, t, _ in shown] == [display[r] for r in want_rows[row]]
    np.testing.assert_allclose([s for _, _, s in shown], want_scores[row], atol=1e-4)
    assert pg.text_content(".sel-panel .selected-token .tok") == "<script>"
    # a regular expression, matched in the page
    pg.select_option("#search-mode", "regex")
    pg.fill("#search", "^[&<]")
    pg.click("#search-form button[type='submit']")
    pg.wait_for_function("n => window.embedlens.state.panels[0].overlays.search.length === n",
                         arg=sum(1 for s in display if re.match(r"[&<]", s)))
    assert "token=id" in pg.url and "search=" in pg.url
    assert_offline(seen)


@pytest.mark.browser
def test_box_selection_fills_the_table_and_csv_is_exact(exported, page):
    pg, seen = page
    data = exported["data"]
    display, ids = data["points"]["display"], data["points"]["ids"]
    freq = data["frequency"]["counts"]
    pg.click("#tab-map")
    pg.evaluate("() => window.embedlens.state.panels[0].map.frame()")
    pg.click("#tools button[data-tool='box']")
    box = pg.eval_on_selector("#plot-0 canvas", "c => { const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }")
    x0, y0 = round(box[0] + box[2] * 0.3), round(box[1] + box[3] * 0.3)
    x1, y1 = round(box[0] + box[2] * 0.7), round(box[1] + box[3] * 0.7)
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    pg.mouse.move(x1, y1, steps=4)
    pg.mouse.up()
    pts = screen_of(pg, range(len(display)))
    inside = np.flatnonzero((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1))
    assert 5 < inside.size < len(display) - 5
    pg.wait_for_function("n => window.embedlens.selection.rows().length === n", arg=int(inside.size), timeout=10_000)
    assert pg.evaluate("() => window.embedlens.selection.rows()") == inside.tolist()
    pg.click("#tools button[data-tool='pan']")
    # add the hostile and spreadsheet-formula tokens, then export the table as CSV
    formula = [i for i, s in enumerate(display) if s.startswith(SPREADSHEET)]
    rows = sorted(set(inside.tolist()) | {display.index(t) for t in MARKUP_TOKENS} | set(formula))
    pg.evaluate("rows => window.embedlens.selection.set(window.embedlens.state.panels[0], rows)", rows)
    pg.click("#tab-table")
    cells = dict(pg.eval_on_selector_all("#sel-body tr[data-row]", "rs => rs.map(r => [Number(r.dataset.row), r.children[1].textContent])"))
    assert all(cells[r] == display[r] for r in cells) and len(cells) >= min(30, len(rows))
    with pg.expect_download() as dl:
        pg.click("#export-csv")
    table = list(csv.DictReader(io.StringIO(open(dl.value.path(), encoding="utf-8", newline="").read())))
    assert sorted(int(r["row"]) for r in table) == rows
    for r in table:
        row = int(r["row"])
        token = display[row]
        assert r["token"] == ("'" + token if token.startswith(SPREADSHEET) else token), (token, r["token"])
        assert int(r["id"]) == ids[row] and int(r["frequency"]) == freq[row]
    assert {r["token"] for r in table} >= set(MARKUP_TOKENS)
    assert "sel=0" in pg.url
    assert_offline(seen)


@pytest.mark.browser
def test_a_link_restores_the_selection_and_token_offline(exported, page, offline_module_page):
    pg, _ = page
    display = exported["data"]["points"]["display"]
    url = pg.url  # the permalink of the page above: its selection and its token
    pg2, seen = offline_module_page(url, viewport=VIEWPORT)
    pg2.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert pg2.evaluate("() => window.embedlens.selection.rows()") == pg.evaluate("() => window.embedlens.selection.rows()")
    pg2.wait_for_selector(".sel-panel table.neighbors tr[data-id]")
    assert pg2.text_content(".sel-panel .selected-token .tok") == "<script>" == display[display.index("<script>")]
    assert_offline(seen)
    pg2.close()


def test_two_spaces_side_by_side(exported, tiny_llama_dir, tmp_path):
    import embedlens
    from embedlens.serve.export import export_site

    other = embedlens.load(str(tiny_llama_dir))
    result = export_site([exported["lens"], other], tmp_path / "two", k=5, progress=False)
    html = (result.path / "index.html").read_text(encoding="utf-8")
    assert 'src="data/panel-0.js"' in html and 'src="data/panel-1.js"' in html
    second = json.loads((result.path / "data" / "panel-1.js").read_text(encoding="utf-8")
                        .removeprefix("window.EMBEDLENS_DATA.panels[1] = ").removesuffix(";\n"))
    want_rows, _ = brute_topk(np.asarray(other.space.vectors, dtype=np.float64), 5)
    np.testing.assert_array_equal(typed(second["neighbors"]["rows"]), want_rows)
    assert [s["title"] for s in result.manifest["spaces"]] == [f"{exported['lens'].name}:input", f"{other.name}:input"]


def test_two_spaces_are_drawn_with_one_map_method(exported, tiny_llama_dir, tmp_path):
    """The page draws every panel with the first panel's method: a t-SNE map cached for one space only
    must not leave the other panel asking its data for a map they do not hold."""
    import embedlens
    from embedlens.atlas.projection import Projection, projection_path, save_projection
    from embedlens.serve.export import export_site

    lens, other = exported["lens"], embedlens.load(str(tiny_llama_dir))
    pca = typed(exported["data"]["map"]["coords"])
    save_projection(projection_path(lens.input.content_hash, "tsne", 2, 0),  # the first space alone has a t-SNE map
                    Projection(coords=np.ascontiguousarray(pca[:, ::-1]), method="tsne", dims=2, seed=0, params={},
                               notes=["test stand-in"]))
    result = export_site([lens, other], tmp_path / "mixed", k=5, progress=False)
    text = (result.path / "data" / "info.js").read_text(encoding="utf-8")
    info = json.loads(text.removeprefix('window.EMBEDLENS_DATA = {"info": ').removesuffix(', "panels": []};\n'))
    blocks = [json.loads((result.path / "data" / f"panel-{i}.js").read_text(encoding="utf-8")
                         .removeprefix(f"window.EMBEDLENS_DATA.panels[{i}] = ").removesuffix(";\n")) for i in (0, 1)]
    wanted = info["panels"][0]["default_map"]["method"]  # what the page asks every panel for
    assert [b["map"]["method"] for b in blocks] == [wanted, wanted] == ["pca", "pca"]
    assert all(s["map"]["stand_in"] and "every space" in s["map"]["note"] for s in result.manifest["spaces"])
