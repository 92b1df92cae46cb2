"""``embedlens serve``: every API endpoint and every bad input, through Starlette's test client."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def gpt2(module_cache, tiny_gpt2_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def client(gpt2):
    from embedlens.serve import create_app

    with TestClient(create_app([gpt2]), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def wait_ready(client, path: str, params: dict, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["job"]["state"] in ("ready", "error") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_info_describes_the_panel_and_limits(client, gpt2):
    info = client.get("/api/info").json()
    (panel,) = info["panels"]
    assert panel["n"] == len(gpt2.space) and panel["dim"] == gpt2.space.dim
    assert panel["causal"] is True and panel["n_layers"] == gpt2.meta["n_layers"]
    assert info["methods"] == ["pca", "tsne", "umap"] and info["limits"]["k_max"] == 200


def test_points_are_the_space_rows(client, gpt2):
    from embedlens.graph.seeds import whole_word_rows

    pts = client.get("/api/points").json()
    sp = gpt2.space
    assert pts["display"] == list(sp.display) and pts["ids"] == sp.ids.tolist()
    assert pts["special"] == sp.special.astype(int).tolist()
    assert np.flatnonzero(pts["whole_word"]).tolist() == sorted(whole_word_rows(gpt2).tolist())
    row = sp.row_of_label["<script>"]
    assert pts["display"][row] == "<script>" and pts["length"][row] == len("<script>")


def test_projection_runs_in_background_is_cached_on_disk_and_reused(client, gpt2, module_cache):
    from embedlens.reduce import make_reducer
    from embedlens.serve import create_app

    r = client.get("/api/projection/data", params={"method": "pca", "dims": 3})
    assert r.status_code == 409 and "not ready" in r.json()["error"]
    body = wait_ready(client, "/api/projection", {"method": "pca", "dims": 3})
    assert body["job"]["state"] == "ready" and body["result"]["can_transform"] is True
    data = client.get("/api/projection/data", params={"method": "pca", "dims": 3})
    assert data.headers["x-shape"] == f"{len(gpt2.space)},3"
    coords = np.frombuffer(data.content, dtype="<f4").reshape(-1, 3)
    expected = make_reducer("pca", n_components=3, metric="cosine", seed=0).fit_transform(gpt2.space.vectors)
    np.testing.assert_allclose(coords, expected, rtol=0, atol=1e-6)
    path = module_cache / "projections" / f"{gpt2.meta['content_hash']}-pca-3-0.npz"
    with np.load(path, allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["coords"], coords)
    assert [j["state"] for j in client.get("/api/jobs").json()["jobs"] if j["key"].endswith("pca-3-0")] == ["ready"]
    # A new server finds the file: ready at once, no job runs.
    with TestClient(create_app([gpt2]), base_url=BASE) as fresh:
        again = fresh.get("/api/projection", params={"method": "pca", "dims": 3}).json()
        assert again["job"]["state"] == "ready" and again["job"]["elapsed_s"] == 0.0
        assert fresh.get("/api/projection/data", params={"method": "pca", "dims": 3}).content == data.content


@pytest.mark.parametrize("query", ["list", "id:5", "tok:<script>", "the capital"])
def test_neighbors_are_lens_nearest(client, gpt2, query):
    body = client.get("/api/neighbors", params={"q": query, "k": 7}).json()
    expected = gpt2.nearest(query, 7).to_dict()
    assert [n["id"] for n in body["neighbors"]] == [n["id"] for n in expected["neighbors"]]
    # the page's k-NN graph (built when it opens) may answer: its products round in another order
    np.testing.assert_allclose([n["score"] for n in body["neighbors"]], [n["score"] for n in expected["neighbors"]],
                               rtol=0, atol=1e-6)
    assert body["rows"] == [gpt2.space.row_of_id[n["id"]] for n in expected["neighbors"]]
    assert body["query_ids"] == expected["query_ids"] and body.get("note") == expected.get("note")


def test_neighbors_use_a_cached_exact_knn_graph(gpt2, module_cache):
    from embedlens.neighbors.knn import build_knn
    from embedlens.serve import create_app

    build_knn(gpt2.input, 12, method="exact")
    app = create_app([gpt2])
    with TestClient(app, base_url=BASE) as c:
        for query in ("list", "id:40"):
            body = c.get("/api/neighbors", params={"q": query, "k": 10}).json()
            expected = gpt2.nearest(query, 10)
            assert [n["id"] for n in body["neighbors"]] == [n.id for n in expected.neighbors]
            np.testing.assert_allclose([n["score"] for n in body["neighbors"]], [n.score for n in expected.neighbors],
                                       atol=1e-5)
        graph = app.state.explorer.panels[0].knn_index()  # the widest exact graph on disk (12, or the page's 100)
        assert graph.method == "exact" and graph.k >= 12
        # single-token queries are answered by the graph alone, without a scan
        app.state.explorer.panels[0]._cache.clear()
        real = gpt2.nearest
        try:
            gpt2.nearest = None  # type: ignore[assignment]
            body = c.get("/api/neighbors", params={"q": "id:41", "k": 12}).json()
        finally:
            del gpt2.nearest
        assert gpt2.nearest == real
        assert [n["id"] for n in body["neighbors"]] == [n.id for n in gpt2.nearest("id:41", 12).neighbors]
        # more neighbours than the graph holds: the exact scan answers
        body = c.get("/api/neighbors", params={"q": "list", "k": 30}).json()
        assert [n["id"] for n in body["neighbors"]] == [n.id for n in gpt2.nearest("list", 30).neighbors]
    for f in module_cache.rglob("knn-input-k12-exact.*"):
        f.unlink()


def test_variants_are_lens_variants(client, gpt2):
    body = client.get("/api/variants", params={"q": "list"}).json()
    expected = gpt2.variants("list")
    assert [n["id"] for n in body["neighbors"]] == [n.id for n in expected.neighbors]
    assert body["rows"] == [gpt2.space.row_of_id[n.id] for n in expected.neighbors] and len(body["rows"]) >= 2


def test_search_text_and_regex(client, gpt2):
    display = list(gpt2.space.display)
    body = client.get("/api/search", params={"q": "LIST"}).json()
    assert body["rows"] == [i for i, s in enumerate(display) if "list" in s.lower()]
    assert body["total"] == len(body["rows"]) > 0
    import regex

    for pattern in (r"^␣?li", r"s$", r"[\s\S]{4}", r"(?<=l)is", r"\Ath", r"x*"):
        body = client.get("/api/search", params={"q": pattern, "mode": "regex"}).json()
        compiled = regex.compile(pattern, regex.IGNORECASE)
        assert body["rows"] == [i for i, s in enumerate(display) if compiled.search(s)], pattern
    capped = client.get("/api/search", params={"q": "e", "limit": 3}).json()
    assert len(capped["rows"]) == 3 and capped["truncated"] is True


def test_catastrophic_regex_is_stopped_and_the_server_keeps_serving():
    from embedlens.lens import SpaceLens
    from embedlens.serve import create_app
    from embedlens.spaces.space import EmbeddingSpace

    labels = ["x" * 5000, "alpha", "beta", "gamma", "delta"]
    vectors = np.random.default_rng(0).standard_normal((len(labels), 8)).astype(np.float32)
    lens = SpaceLens(EmbeddingSpace.from_arrays(vectors, labels, name="words"))
    with TestClient(create_app([lens], regex_seconds=0.3), base_url=BASE) as c:
        for pattern in (r"(x+x+)+y", r"^(x|xx)+$y"):
            started = time.monotonic()
            r = c.get("/api/search", params={"q": pattern, "mode": "regex"})
            assert r.status_code == 422 and "longer than" in r.json()["error"]
            assert time.monotonic() - started < 3.0
        assert c.get("/api/search", params={"q": "^(a|b)", "mode": "regex"}).json()["rows"] == [1, 2]
        nb = c.get("/api/neighbors", params={"q": "alpha", "k": 2}).json()
        assert [n["id"] for n in nb["neighbors"]] == [n.id for n in lens.nearest("alpha", 2).neighbors]
        r = c.get("/api/tokens", params={"text": "hello"})
        assert r.status_code == 400 and "no tokenizer" in r.json()["error"]


def test_tokens_are_lens_tokens(client, gpt2):
    text = "The list of <script> and </div>"
    body = client.get("/api/tokens", params={"text": text}).json()
    table = gpt2.tokens(text)
    assert [t["id"] for t in body["tokens"]] == [r.id for r in table.rows]
    assert [t["display"] for t in body["tokens"]] == [r.display for r in table.rows]
    assert "<script>" in [t["display"] for t in body["tokens"]]
    assert body["rows"] == [gpt2.space.row_of_id[r.id] for r in table.rows]


def test_trajectory_is_hidden_states_through_the_map_pca(client, gpt2):
    from embedlens.contextual import hidden_states
    from embedlens.reduce import make_reducer

    params = {"text": "The capital of France", "position": 2, "method": "pca", "dims": 2}
    wait_ready(client, "/api/projection", {"method": "pca", "dims": 2})
    body = client.get("/api/trajectory", params=params).json()
    hs = hidden_states(gpt2, params["text"], layers="all")
    states = hs.texts[0].states[:, 2, :]
    reducer = make_reducer("pca", n_components=2, metric="cosine", seed=0)
    reducer.fit(gpt2.space.vectors)
    np.testing.assert_allclose(body["coords"], reducer.transform(states), atol=1e-5)
    assert body["layers"] == list(range(gpt2.meta["n_layers"] + 1)) and body["id"] == int(hs.texts[0].ids[2])
    r = client.get("/api/trajectory", params={**params, "position": 99})
    assert r.status_code == 400 and "position" in r.json()["error"]
    r = client.get("/api/trajectory", params={**params, "method": "umap"})
    assert r.status_code == 409 and "not ready" in r.json()["error"]


def test_grid_job_matches_the_grid_api(client, gpt2):
    from embedlens.grid import EmbeddingGridVisualizer

    body = wait_ready(client, "/api/grid", {"layer": 1, "plane": "pca", "size": 4})
    assert body["job"]["state"] == "ready", body
    grid = body["result"]
    gm = EmbeddingGridVisualizer(gpt2).compute_map(4, 0.5, "pca", layer_idx=1, progress=False)
    assert grid["top5"]["ids"] == gm.top5_ids.tolist() and grid["config"]["grid_size"] == 4
    assert grid["top5"]["display"] == np.asarray(gm.top5_display).tolist()
    np.testing.assert_allclose(grid["probs"], gm.probs, atol=1e-5)
    # the same JSON as the library's result (its file on disk), timings aside
    expected = json.loads(json.dumps(gm.to_dict()))
    for d in (grid, expected):
        d["config"].pop("timings")
    assert grid == expected


@pytest.mark.parametrize("plane, extra", [("random_projection", {}), ("direct", {}), ("replicated", {}),
                                          ("tokens", {"plane_tokens": "id:40,tok:<script>,id:41"})])
def test_grid_job_every_plane_matches_the_grid_api(client, gpt2, plane, extra):
    from embedlens.grid import EmbeddingGridVisualizer

    body = wait_ready(client, "/api/grid", {"layer": 0, "plane": plane, "size": 4, "spacing": 0.7, **extra}, timeout=120)
    assert body["job"]["state"] == "ready", body
    tokens = extra["plane_tokens"].split(",") if extra else None
    gm = EmbeddingGridVisualizer(gpt2).compute_map(4, 0.7, plane, layer_idx=0, plane_tokens=tokens, progress=False)
    assert body["result"]["config"]["embedding_method"] == plane and body["result"]["top5"]["ids"] == gm.top5_ids.tolist()
    np.testing.assert_allclose(body["result"]["probs"], gm.probs, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_tsne_and_umap_projection_jobs_run_to_completion(client, gpt2, method):
    from embedlens.reduce import make_reducer

    body = wait_ready(client, "/api/projection", {"method": method, "dims": 2}, timeout=240)
    assert body["job"]["state"] == "ready", body
    data = client.get("/api/projection/data", params={"method": method, "dims": 2})
    coords = np.frombuffer(data.content, dtype="<f4").reshape(-1, 2)
    expected = make_reducer(method, n_components=2, metric="cosine", seed=0).fit_transform(gpt2.space.vectors)
    assert coords.shape == (len(gpt2.space), 2) and np.isfinite(coords).all()
    np.testing.assert_allclose(coords, expected, rtol=0, atol=1e-4)  # the same seeded fit as the library's


def test_knn_build_option_queues_a_graph_that_answers_neighbours(gpt2, module_cache):
    from embedlens.neighbors.knn import knn_path
    from embedlens.serve import create_app
    from embedlens.serve.setup import build_knn_indexes

    app = create_app([gpt2], knn=True)
    build_knn_indexes(app.state.explorer, k=12)
    with TestClient(app, base_url=BASE) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            jobs = [j for j in c.get("/api/jobs").json()["jobs"] if j["key"].startswith("knn:")]
            if jobs and jobs[0]["state"] in ("ready", "error"):
                break
            time.sleep(0.05)
        assert jobs[0]["state"] == "ready", jobs
        graph = app.state.explorer.ready_graph(app.state.explorer.panels[0])  # k=12, or the page's wider one
        assert graph.method == "exact" and graph.k >= 12 and knn_path(gpt2.input, graph.k, "exact").is_file()
        for q in ("list", "id:7", "the capital"):
            body = c.get("/api/neighbors", params={"q": q, "k": 10}).json()
            assert [n["id"] for n in body["neighbors"]] == [n.id for n in gpt2.nearest(q, 10).neighbors], q


def test_frequency_counts_the_corpus(client, gpt2):
    from embedlens.corpus.frequencies import token_frequencies

    body = wait_ready(client, "/api/frequency", {})
    assert body["job"]["state"] == "ready"
    assert body["counts"] == token_frequencies(gpt2, "lee", progress=False).counts.tolist()


BAD = [
    ("/api/neighbors", {"q": "list", "k": "0"}, 400, "between 1"),
    ("/api/neighbors", {"q": "list", "k": "abc"}, 400, "integer"),
    ("/api/neighbors", {"q": "list", "k": "100000"}, 400, "between 1"),
    ("/api/neighbors", {"q": "list", "k": "1e9"}, 400, "integer"),
    ("/api/neighbors", {"q": "list", "k": "²"}, 400, "integer"),
    ("/api/neighbors", {"q": "list", "k": "--5"}, 400, "integer"),
    ("/api/neighbors", {}, 400, "required"),
    ("/api/neighbors", {"q": "x" * 201}, 413, "limit"),
    ("/api/neighbors", {"q": "id:999999"}, 400, "not in"),
    ("/api/neighbors", {"q": "tok:nope-not-a-token"}, 400, "not in the vocabulary"),
    ("/api/neighbors", {"q": "a\x00b"}, 400, "NUL"),
    ("/api/neighbors", {"q": "list", "space": "1"}, 404, "unknown space"),
    ("/api/neighbors", {"q": "list", "space": "../etc"}, 404, "unknown space"),
    ("/api/variants", {"q": "zzzqqq"}, 400, "no variants"),
    ("/api/search", {"q": "(", "mode": "regex"}, 400, "not a valid regular expression"),
    ("/api/search", {"q": "a" * 201, "mode": "regex"}, 413, "limit"),
    ("/api/search", {"q": "a", "mode": "glob"}, 400, "one of"),
    ("/api/search", {"q": "a", "limit": "0"}, 400, "between"),
    ("/api/projection", {"method": "lda"}, 400, "one of"),
    ("/api/projection", {"dims": "4"}, 400, "between 2 and 3"),
    ("/api/projection/data", {"dims": "-1"}, 400, "between 2 and 3"),
    ("/api/tokens", {"text": "   "}, 400, "empty"),
    ("/api/tokens", {"text": "a" * 2001}, 413, "limit"),
    ("/api/trajectory", {"text": "hi", "position": "-1"}, 400, "between"),
    ("/api/grid", {"size": "3"}, 400, "between 4 and 64"),
    ("/api/grid", {"size": "65"}, 400, "between 4 and 64"),
    ("/api/grid", {"layer": "99"}, 400, "between 0 and"),
    ("/api/grid", {"plane": "spiral"}, 400, "one of"),
    ("/api/grid", {"plane": "tokens", "plane_tokens": "a,b"}, 400, "three tokens"),
    ("/api/grid", {"spacing": "nan"}, 400, "number between"),
    ("/api/nothing-here", {}, 404, "not found"),
]


@pytest.mark.parametrize(("path", "params", "status", "message"), BAD, ids=[f"{p}-{i}" for i, (p, *_) in enumerate(BAD)])
def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(client, path, params, status, message):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert message.lower() in r.json()["error"].lower()
    assert client.get("/api/info").status_code == 200


def test_wrong_method_and_foreign_host_are_refused(client):
    assert client.post("/api/neighbors", params={"q": "list"}).status_code == 405
    assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("path", [
    "/static/../pyproject.toml", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/..%2F..%2Fcache.py",
    "/static/app.py", "/static/panels.py", "/static/__init__.py", "/static/", "/static/%2fetc%2fpasswd",
    "/static/index.html/../../app.py", "/..%2f..%2fetc/passwd", "/static/app.js%00.py",
])
def test_static_routes_refuse_path_traversal(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "def " not in r.text and "root:" not in r.text


def test_page_and_assets_are_served_locally(client):
    import re

    page = client.get("/")
    assert page.status_code == 200 and "http" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    from embedlens.serve.app import PAGE_MODULES

    scripts = re.findall(r'<script (?:type="module" )?src="([^"]+)"', page.text)
    assert {"/static/pointcloud.js", "/static/main.js"} <= set(scripts)
    scripts += [f"/static/{name}" for name in PAGE_MODULES]  # what main.js imports
    for src in scripts:  # every script the page names is this server's, and none writes markup
        js = client.get(src)
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript"), src
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in js.text, (src, sink)
    assert "textContent" in client.get("/static/dom.js").text
    assert "/static/plotly.min.js" in client.get("/static/views.js").text  # loaded when a heatmap view opens
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/app.css").status_code == 200


def test_two_panels_side_by_side(tiny_llama_dir, module_cache):
    import embedlens
    from embedlens.serve import create_app

    lens = embedlens.load(str(tiny_llama_dir))
    assert not lens.meta["tied"]
    with TestClient(create_app([lens.input, lens.output]), base_url=BASE) as c:
        titles = [p["title"] for p in c.get("/api/info").json()["panels"]]
        assert titles == [f"{lens.name}:input", f"{lens.name}:output"]
        for space, which in (("0", "input"), ("1", "output")):
            body = c.get("/api/neighbors", params={"q": "list", "k": 5, "space": space}).json()
            assert [n["id"] for n in body["neighbors"]] == [n.id for n in lens.nearest("list", 5, space=which).neighbors]
        r = c.get("/api/trajectory", params={"space": "1", "text": "hi"})
        assert r.status_code == 400 and "input space" in r.json()["error"]


def test_encoder_has_no_grid_or_trajectory(tiny_bert_dir, module_cache):
    import embedlens
    from embedlens.serve import create_app

    lens = embedlens.load(str(tiny_bert_dir))
    with TestClient(create_app([lens]), base_url=BASE) as c:
        assert c.get("/api/info").json()["panels"][0]["causal"] is False
        for path in ("/api/grid", "/api/trajectory"):
            r = c.get(path, params={"text": "the list", "layer": "1"})
            assert r.status_code == 400 and "causal" in r.json()["error"]


def test_open_panels_rules(gpt2, tiny_gpt2_dir):
    from embedlens.errors import EmbedlensError
    from embedlens.serve.setup import open_panels

    pairs = open_panels([str(tiny_gpt2_dir)], ["input", "output"], default_model="unused")
    assert [v.which for v in pairs] == ["input", "output"]
    with pytest.raises(EmbedlensError, match="at most two"):
        open_panels([str(tiny_gpt2_dir), str(tiny_gpt2_dir)], ["input", "output"], default_model="unused")


def test_cli_help_and_bad_port(run_cli):
    r = run_cli("serve", "--help")
    assert r.code == 0 and "--port" in r.out and "--no-open" in r.out
    r = run_cli("serve", "--port", "70000", "--model", "nonexistent-model-xyz")
    assert r.code == 2 and "error" in r.err


@pytest.mark.slow
def test_cli_serve_prints_its_url_and_answers(tiny_gpt2_dir, module_cache):
    import os
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen([sys.executable, "-c", "from embedlens.cli import entry; entry()", "serve", "--model", str(tiny_gpt2_dir),
                             "--port", "0", "--no-open"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EMBEDLENS_CACHE": str(module_cache)})
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), (url, proc.stderr.read() if proc.poll() else "")
        info = httpx.get(url + "api/info", timeout=10).json()
        assert info["panels"][0]["kind"] == "model"
        assert httpx.get(url + "api/neighbors", params={"q": "k" * 300}, timeout=10).status_code == 413
        assert httpx.get(url + "api/info", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_queries_do_not_wait_for_background_jobs(gpt2, module_cache, tmp_path, monkeypatch):
    import threading

    from embedlens.serve import create_app

    monkeypatch.setenv("EMBEDLENS_CACHE", str(tmp_path))  # no cached projection: the job must run
    app = create_app([gpt2])
    release = threading.Event()
    with TestClient(app, base_url=BASE) as c:
        app.state.explorer.jobs.submit("blocker", "test", "a long job", lambda: release.wait(20))
        try:
            queued = c.get("/api/projection", params={"method": "pca", "dims": 2}).json()["job"]
            assert queued["state"] == "queued"
            started = time.monotonic()
            nb = c.get("/api/neighbors", params={"q": "list", "k": 5})
            assert nb.status_code == 200 and time.monotonic() - started < 2.0
            states = {j["key"]: j["state"] for j in c.get("/api/jobs").json()["jobs"]}
            assert states["blocker"] == "running" and states[queued["key"]] == "queued"
        finally:
            release.set()
        assert wait_ready(c, "/api/projection", {"method": "pca", "dims": 2})["job"]["state"] == "ready"


ODD = ["id:", "id:-1", "id:1e3", "tok:", "tok:Ġ", " ", "\n", "\t\t", "🙂🙂", "'\"<>&", "%00", "a" * 200, "[[", "\\",
       "(?P<x>", "\u202e", "id:99999999999999999999"]


@pytest.mark.parametrize("path", ["/api/neighbors", "/api/variants", "/api/search", "/api/tokens", "/api/trajectory"])
def test_odd_inputs_never_cause_a_server_error(client, path):
    for value in ODD:
        for mode in ("text", "regex"):
            r = client.get(path, params={"q": value, "text": value, "mode": mode, "position": "0"})
            assert r.status_code < 500, (path, value, r.status_code, r.text)
            if r.status_code >= 400:
                assert isinstance(r.json()["error"], str)


def test_concurrent_scans_are_batched_and_agree_with_lens_nearest(gpt2, monkeypatch):
    """Requests that arrive while a scan runs are answered together by the next scan (one index query)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import embedlens.serve.panels as panels
    from embedlens.serve import create_app

    batches: list[int] = []
    real = panels._run_scans

    def slow_scans(index, batch):  # a scan that takes long enough for the other requests to queue up
        batches.append(len(batch))
        time.sleep(0.2)
        real(index, batch)

    monkeypatch.setattr(panels, "_run_scans", slow_scans)
    app = create_app([gpt2], knn=False)
    queries = [f"id:{i}" for i in range(0, 300, 7)] + ["list", "the capital"]
    with TestClient(app, base_url=BASE) as c, ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(lambda q: c.get("/api/neighbors", params={"q": q, "k": 9}).json(), queries))
    assert sum(batches) == len(queries)  # every request was scanned exactly once
    assert max(batches) > 1 and len(batches) < len(queries) / 2, batches  # ... and most of them together
    for q, body in zip(queries, bodies, strict=True):
        expected = gpt2.nearest(q, 9)
        assert [n["id"] for n in body["neighbors"]] == [n.id for n in expected.neighbors], q
        np.testing.assert_allclose([n["score"] for n in body["neighbors"]], [n.score for n in expected.neighbors],
                                   atol=1e-5)


def test_projection_reports_the_maps_faithfulness(client, gpt2):
    """The explorer's map says how faithful it is, with the same figures as `embedlens map`."""
    from embedlens.reduce import make_reducer
    from embedlens.reduce.quality import projection_quality

    body = wait_ready(client, "/api/projection", {"method": "pca", "dims": 2})
    assert body["job"]["state"] == "ready", body
    body = body["result"]
    expected = projection_quality(gpt2.space.vectors,
                                  make_reducer("pca", n_components=2, metric="cosine", seed=0).fit_transform(
                                      gpt2.space.vectors), seed=0)
    assert body["notes"][0] == expected.summary() and "recall@10" in body["notes"][0]
    assert body["params"]["quality"]["neighbor_recall"] == pytest.approx(expected.neighbor_recall)
