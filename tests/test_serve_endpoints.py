"""The explorer's API is one table over the library: every answer is the library result's ``to_dict()``,
and the layers panel reads a model's tuned lens when it has one (a logit | tuned switch)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from embedlens.logitlens import logit_lens  # noqa: E402
from embedlens.logitlens.compute import context_limit  # noqa: E402
from embedlens.serve.explorer import LOGIT_LENS_MAX_TOKENS, LOGIT_LENS_TOP_K  # noqa: E402

BASE = "http://127.0.0.1"
PROMPT = 'The capital <script>alert(1)</script> of "quoted" it\'s &amp; a&b <br> is'


@pytest.fixture(scope="module")
def models(module_cache, tiny_llama_dir, tiny_gpt2_dir):
    """The tiny llama with a tuned lens in its cache entry (random translators: its readout differs from the
    logit lens), and the tiny gpt2 without one."""
    import embedlens
    from embedlens.logitlens.tuned_files import cached_folder, save_tuned_lens
    from embedlens.tunedlens import TunedLens

    llama, gpt2 = embedlens.load(str(tiny_llama_dir)), embedlens.load(str(tiny_gpt2_dir))
    n, d = int(llama.meta["n_layers"]), int(llama.meta["d_model"])
    rng = np.random.default_rng(0)
    tuned = TunedLens(rng.normal(0, 2.0 / np.sqrt(d), (n, d, d)), rng.normal(0, 1.0, (n, d)),
                      {"model": {"content_hash": llama.meta.get("content_hash")}})
    save_tuned_lens(tuned, cached_folder(llama))
    return llama, gpt2


@pytest.fixture(scope="module")
def app(models):
    from embedlens.serve import create_app

    return create_app(list(models))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def logit_lens_dict(model, decoder: str) -> dict:
    cap = min(LOGIT_LENS_MAX_TOKENS, context_limit(model) or LOGIT_LENS_MAX_TOKENS)  # the explorer's cap on a prompt
    out = json.loads(json.dumps(logit_lens(model, PROMPT, top_k=LOGIT_LENS_TOP_K, max_tokens=cap, decoder=decoder).to_dict()))
    out.pop("timings")
    return out


def test_every_api_route_is_a_row_of_the_table(app):
    from embedlens.serve.endpoints import ENDPOINTS

    routes = {(r.path, m) for r in app.routes if r.path.startswith("/api/") for m in r.methods if m != "HEAD"}
    assert routes == {(f"/api/{e.path}", e.method) for e in ENDPOINTS}
    assert len(ENDPOINTS) == len({e.path for e in ENDPOINTS})


def test_no_function_in_serve_is_over_80_lines():
    import embedlens.serve

    folder = Path(embedlens.serve.__file__).parent
    long = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_tokens_neighbors_and_variants_are_the_results_to_dict(client, models):
    llama = models[0]
    row_of_id = llama.space.row_of_id
    checks = [("/api/tokens", {"text": PROMPT}, llama.tokens(PROMPT)),
              ("/api/neighbors", {"q": "the", "k": 6}, llama.nearest("the", 6)),
              ("/api/variants", {"q": "the"}, llama.variants("the"))]
    for path, params, result in checks:
        body = client.get(path, params={"space": 0, **params}).json()
        expected = json.loads(json.dumps(result.to_dict()))
        assert {key: body[key] for key in expected} == expected, path
        ids = [t.id for t in result.rows] if path == "/api/tokens" else [nb.id for nb in result.neighbors]
        assert body["rows"] == [row_of_id[i] for i in ids], path


def ready(client, path: str, params: dict) -> dict:
    """A long-work endpoint's answer once its job is ready (its shape checked on every poll)."""
    from embedlens.serve.jobs import Job

    deadline = time.monotonic() + 120
    while True:
        body = client.get(path, params=params).json()
        assert set(body) >= {"job", "result"} and set(body["job"]) >= set(Job("k", "kind", "label").to_dict()), body
        if body["job"]["state"] in ("ready", "error"):
            assert body["job"]["state"] == "ready", body
            return body
        assert body["result"] is None and time.monotonic() < deadline
        time.sleep(0.05)


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_frequency_is_token_frequencies_to_dict(client, models):
    from embedlens.corpus.frequencies import token_frequencies

    body = ready(client, "/api/frequency", {"space": 1})
    freqs = token_frequencies(models[1], "lee", progress=False)
    expected = json.loads(json.dumps(freqs.to_dict()))
    assert without(body["result"], "seconds") == without(expected, "seconds")
    assert body["counts"] == freqs.counts.tolist()


def test_projection_answers_what_its_file_on_disk_holds(client, models, module_cache):
    params = {"space": 1, "method": "pca", "dims": 2}
    body = ready(client, "/api/projection", params)
    path = module_cache / "projections" / f"{models[1].meta['content_hash']}-pca-2-0.npz"
    with np.load(path, allow_pickle=False) as saved:
        meta = json.loads(str(saved["meta_json"]))
        coords = saved["coords"]
    meta.pop("format")
    assert {key: body["result"][key] for key in meta} == json.loads(json.dumps(meta)) and body["n"] == len(coords)
    data = client.get("/api/projection/data", params=params)
    assert data.content == np.ascontiguousarray(coords, dtype="<f4").tobytes()


def test_grid_clusters_and_compare_results_are_the_library_results_to_dict(client, models):
    """Each long-work endpoint answers {job, result}: the result is the library's ``to_dict()`` (its file's
    JSON), computed here again from scratch; what the page needs besides (a cluster per row) sits beside it."""
    from embedlens.atlas.clusters import find_clusters, label_levels
    from embedlens.comparison import compare
    from embedlens.grid import EmbeddingGridVisualizer

    llama, gpt2 = models
    grid = ready(client, "/api/grid", {"space": 0, "layer": 1, "plane": "pca", "size": 4})
    gm = EmbeddingGridVisualizer(llama).compute_map(4, 0.5, "pca", layer_idx=1, progress=False)
    expected = json.loads(json.dumps(gm.to_dict()))
    for d in (grid["result"], expected):
        d["config"].pop("timings")
    assert set(grid) == {"job", "result"} and grid["result"] == expected

    clusters = ready(client, "/api/clusters", {"space": 1, "n": "auto"})
    fresh = find_clusters(gpt2.space.vectors, clusters="auto", metric="cosine", seed=0,
                          display=list(gpt2.space.display), sub=True)
    expected = json.loads(json.dumps(fresh.to_dict()))
    got = json.loads(json.dumps(clusters["result"]))
    for d in (got, expected, got["sub"], expected["sub"]):  # how the graph was found and timings aside
        d.pop("params"), d.pop("timings")
    assert got == expected
    assert clusters["assignment"] == fresh.assignment.tolist()
    assert clusters["levels"] == json.loads(json.dumps(label_levels(fresh, fresh.sub)))

    compared = ready(client, "/api/compare", {})
    expected = json.loads(json.dumps(compare(llama, gpt2, maps=False).to_dict()))
    got = json.loads(json.dumps(compared["result"]))
    for d in (got, expected):
        d.pop("timings", None)
    assert set(compared) == {"job", "result"} and got == expected


def test_faithfulness_waits_for_its_map_in_the_same_shape(client, models):
    """Before the map exists the answer says which job it waits for; then the result is the map's local recall."""
    params = {"space": 1, "method": "pca", "dims": 3}
    body = client.get("/api/faithfulness", params=params)
    assert body.status_code == 409 and "ask /api/projection" in body.json()["error"]
    projection = client.get("/api/projection", params=params).json()
    waiting = client.get("/api/faithfulness", params=params).json()
    if waiting["job"]["state"] == "waiting":  # the map's job still runs
        assert waiting["job"]["waiting_for"] == projection["job"]["key"] and waiting["result"] is None
    ready(client, "/api/projection", params)
    faith = ready(client, "/api/faithfulness", params)
    result = faith["result"]
    assert set(faith) == {"job", "result"} and result["k"] == 10 and len(result["local_recall"]) == len(models[1].space)
    assert result["queries"] == len(models[1].space)  # a small space: every row is a query
    assert result["recall"] == sum(round(r * 10) for r in result["local_recall"]) / (10 * result["queries"])


def test_info_says_which_panels_have_a_tuned_lens(client, models):
    llama, gpt2 = models
    panels = client.get("/api/info").json()["panels"]
    assert panels[0]["decoders"] == {"tuned": True, "train": f"embedlens lens train -m {llama.source.spec}"}
    assert panels[1]["decoders"]["tuned"] is False
    assert panels[1]["decoders"]["train"] == f"embedlens lens train -m {gpt2.source.spec}"


def test_logit_lens_reads_with_the_asked_decoder(client, models):
    llama = models[0]
    answers = {}
    for decoder in ("logit", "tuned"):
        body = client.get("/api/logit_lens", params={"space": 0, "text": PROMPT, "decoder": decoder}).json()
        body.pop("timings")
        assert body == logit_lens_dict(llama, decoder), decoder
        answers[decoder] = body
    assert answers["tuned"]["settings"]["decoder"]["kind"] == "tuned"
    # random translators move the readout: the two answers differ where it matters, in the top tokens
    assert answers["tuned"]["top_ids"][:-1] != answers["logit"]["top_ids"][:-1]
    assert answers["tuned"]["top_ids"][-1] == answers["logit"]["top_ids"][-1]  # the last layer is the model's own
    near = client.get("/api/layer_nearest", params={"space": 0, "text": PROMPT, "layer": 1, "position": 2,
                                                   "decoder": "tuned"}).json()
    assert [t["id"] for t in near["top"]] == answers["tuned"]["top_ids"][1][2]


@pytest.mark.parametrize("params, status, message", [
    ({"space": 1, "text": "a b", "decoder": "tuned"}, 400, "no tuned lens yet"),
    ({"space": 0, "text": "a b", "decoder": "/etc/passwd"}, 400, "must be one of logit, tuned"),
    ({"space": 0, "text": "a b", "lens": "tuned"}, 400, "'lens' is now called 'decoder'"),  # not silently logit
])
def test_logit_lens_refuses_a_decoder_it_cannot_read(client, params, status, message):
    r = client.get("/api/logit_lens", params=params)
    assert r.status_code == status and message in r.json()["error"], r.text


def _hover_cell(page, layer: int, position: int) -> str:
    """Hover the layers heatmap's cell (layer, position) and return Plotly's hover text."""
    page.eval_on_selector("#layers-plot", "e => e.scrollIntoView()")
    xy = page.evaluate(
        f"""() => {{ const g = document.getElementById('layers-plot'), L = g._fullLayout;
        const r = g.getBoundingClientRect();
        return [r.left + L._size.l + L.xaxis.l2p({position}), r.top + L._size.t + L.yaxis.l2p({layer})]; }}""")
    page.mouse.move(1, 1)
    page.mouse.move(xy[0], xy[1])
    page.wait_for_function(f"() => document.querySelector('#layers-plot .hoverlayer').textContent.includes('layer {layer} ')")
    # Plotly writes each line as its own text element: compare without whitespace
    return "".join(page.evaluate("() => document.querySelector('#layers-plot .hoverlayer').textContent").split())


def _top_lines(r: dict, li: int, j: int) -> str:
    """The hover's readout of cell (layer index li, position j): ``1. token p`` for each of the top tokens."""
    return "".join(f"{m + 1}.{''.join(d.split())}{p:.4f}" for m, (d, p) in enumerate(zip(r["top_display"][li][j], r["top_probs"][li][j],
                                                                          strict=True)))


@pytest.mark.browser
@pytest.mark.slow
def test_layers_panel_switches_between_the_logit_and_the_tuned_lens(models, offline_page):
    from urllib.parse import quote

    from embedlens.serve import ServerThread, create_app

    llama, gpt2 = models
    logit, tuned = logit_lens_dict(llama, "logit"), logit_lens_dict(llama, "tuned")
    # the cell of the prompt's "<script>" token at the layer where the two readouts differ most
    j = logit["display"].index("<script>") if "<script>" in logit["display"] else len(logit["display"]) // 2
    li = next(i for i in range(len(logit["layers"]) - 1) if logit["top_display"][i][j][0] != tuned["top_display"][i][j][0])
    layer = logit["layers"][li]
    with ServerThread(create_app([llama])) as url:
        page, seen = offline_page(f"{url}#prompt={quote(PROMPT)}")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.click("#layers-btn")
        page.wait_for_function("() => document.getElementById('layers-plot').dataset.decoder === 'logit'", timeout=30_000)
        assert page.is_enabled("#layers-decoder button[data-decoder=tuned]")
        shown = _hover_cell(page, layer, j)
        assert f"layer{layer}·position{j}:{''.join(logit['display'][j].split())}" in shown, shown
        assert _top_lines(logit, li, j) in shown and _top_lines(tuned, li, j) not in shown, shown
        page.click("#layers-decoder button[data-decoder=tuned]")
        page.wait_for_function("() => document.getElementById('layers-plot').dataset.decoder === 'tuned'", timeout=30_000)
        shown = _hover_cell(page, layer, j)
        assert _top_lines(tuned, li, j) in shown and _top_lines(logit, li, j) not in shown, shown
        assert "tuned lens" in page.text_content("#layers-note") and "lens=tuned" in page.evaluate("location.hash")
        ticks = page.evaluate("() => Array.from(document.querySelectorAll('#layers-plot .xtick text'), e => e.textContent)")
        assert [" ".join(t.split()) for t in ticks] == [" ".join(logit["display"][p].split()) for p in logit["positions"]]
        if shot := os.environ.get("EMBEDLENS_SCREENSHOT_DIR"):  # to look at the page
            page.screenshot(path=str(Path(shot) / "layers-tuned.png"))
        assert seen.dialogs == [] and seen.errors == []
        assert all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in seen.requests), seen.requests
    with ServerThread(create_app([gpt2])) as url:  # no tuned lens: the switch is off and says how to train one
        page, seen = offline_page(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert not page.is_enabled("#layers-decoder button[data-decoder=tuned]")
        assert page.text_content("#layers-decoder-note") == (
            f"tuned: none for this model yet; train one with embedlens lens train -m {gpt2.source.spec}")
        assert seen.errors == []


def test_the_page_serves_every_module_main_js_imports():
    from embedlens.serve.app import PAGE_MODULES, STATIC_FILES, static_dir
    from embedlens.serve.bundle import evaluation_order

    reached = {m.name for m in evaluation_order(static_dir(), "main.js")}
    assert reached == set(PAGE_MODULES) and reached <= set(STATIC_FILES)
    assert {p.name for p in static_dir().glob("*.js")} == {*PAGE_MODULES, "boot.js"}  # no module left unserved


def _modules(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_bundle_runs_modules_in_the_browsers_order_with_their_own_scopes(tmp_path):
    from embedlens.serve.bundle import bundle_modules, evaluation_order

    folder = _modules(tmp_path, {
        "main.js": ('import { b } from "./b.js";\nimport { a, log } from "./a.js";\nconst n = 1;\n'
                    'log.push("main " + a() + b + n);\nglobalThis.result = log.join();\n'),
        "a.js": 'import { b } from "./b.js";\nexport const log = [];\nconst n = 2;\nexport function a() { return "a" + b + n; }\n',
        "b.js": 'export const b = "b";\nconst n = 3;\n'})
    # depth first along the imports, each module after what it imports (as a browser evaluates modules)
    assert [m.name for m in evaluation_order(folder, "main.js")] == ["b.js", "a.js", "main.js"]
    script = bundle_modules(folder)
    assert "import " not in script and "export " not in script and script.count("const n = ") == 3
    assert script.index('const b = "b"') < script.index("const log = []") < script.index("const n = 1;")
    node = shutil.which("node")
    if node:  # run it: each module sees its own n and the others' exports
        out = subprocess.run([node, "-e", script + "\nprocess.stdout.write(globalThis.result);"], capture_output=True,
                             text=True, timeout=30)
        assert out.stdout == "main ab2b1", out.stderr


@pytest.mark.parametrize("files, message", [
    ({"main.js": 'import * as a from "./a.js";\n', "a.js": ""}, "does not read"),
    ({"main.js": 'import { a as b } from "./a.js";\n', "a.js": "export const a = 1;\n"}, "only plain names"),
    ({"main.js": 'import { c } from "./a.js";\n', "a.js": "export const a = 1;\n"}, "does not export it"),
    ({"main.js": 'import { a } from "./a.js";\nexport const a = 2;\n', "a.js": "export const a = 1;\n"}, "exported by both"),
    ({"main.js": "export default 1;\n"}, "does not read"),
    ({"main.js": 'import { a } from "./gone.js";\n'}, "missing"),
])
def test_bundle_refuses_what_it_cannot_translate(tmp_path, files, message):
    from embedlens.errors import EmbedlensError
    from embedlens.serve.bundle import bundle_modules

    with pytest.raises(EmbedlensError, match=message):
        bundle_modules(_modules(tmp_path, files))
