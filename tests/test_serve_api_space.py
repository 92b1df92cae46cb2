"""``embedlens serve``: the default map, the space's k-NN graph and what the page asks of it (clusters,
faithfulness, true neighbours, a selection's centroid and graph), each against an independent computation,
and every bad parameter or body refused with a one-line JSON 4xx."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from .test_serve_api import wait_ready  # noqa: E402

BASE = "http://127.0.0.1"
ORIGIN = {"origin": BASE}


def wait_for(client, path: str, params: dict) -> dict:
    return wait_ready(client, path, params, timeout=240.0)  # a loaded machine takes its time


def blob_space(n: int = 240, dim: int = 12, seed: int = 0):
    """Words in 6 tight Gaussian blobs (clusters a graph finds), as a plain space."""
    from embedlens.lens import SpaceLens
    from embedlens.spaces.space import EmbeddingSpace

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, dim)) * 4
    vectors = (centres[np.arange(n) % 6] + rng.standard_normal((n, dim)) * 0.6).astype(np.float32)
    return SpaceLens(EmbeddingSpace.from_arrays(vectors, [f"w{i}" for i in range(n)], name=f"blobs{seed}"))


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)


def brute_top(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best columns of each row by score, ties by column: an independent exact top-k."""
    cols = np.arange(scores.shape[1])
    return np.stack([np.lexsort((cols, -row))[:k] for row in scores])


@pytest.fixture(scope="module")
def gpt2(module_cache, tiny_gpt2_dir):
    import embedlens

    return embedlens.load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def app(gpt2):
    from embedlens.serve import create_app

    return create_app([gpt2])


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c  # no /api/info here: it would queue a t-SNE (the default-map tests above do that)


# -- the default map ---------------------------------------------------------------------------------------


def test_default_map_is_pca_with_a_pending_tsne_that_starts_from_the_cached_exact_graph(cache_dir):
    from embedlens.atlas.projection import projection_path
    from embedlens.neighbors.knn import KnnGraph, knn_path
    from embedlens.serve import create_app

    lens = blob_space(n=150, seed=1)
    with TestClient(create_app([lens]), base_url=BASE) as c:
        info = c.get("/api/info")
        assert info.status_code == 200, info.text
        (panel,) = info.json()["panels"]
        assert panel["default_map"] == {"method": "pca", "dims": 2, "pending": "tsne"}
        assert wait_for(c, "/api/projection", {"method": "pca", "dims": 2})["job"]["state"] == "ready"
        tsne = wait_for(c, "/api/projection", {"method": "tsne", "dims": 2})
        assert tsne["job"]["state"] == "ready", tsne
        tsne = tsne["result"]
        kinds = sorted(j["kind"] for j in c.get("/api/jobs").json()["jobs"])
        assert kinds == ["clusters", "knn", "projection", "projection"]
        # the t-SNE started from the space's exact graph, now in the k-NN cache where every stage finds it
        graph = KnnGraph.load(knn_path(lens.input, 100, "exact"))
        assert graph.method == "exact" and graph.k == 100
        cos = unit(lens.space.vectors) @ unit(lens.space.vectors).T
        np.fill_diagonal(cos, -np.inf)
        np.testing.assert_array_equal(graph.indices[:, :10], brute_top(cos, 10))
        assert tsne["params"]["knn_source"] == "given" and "exact" in tsne["params"]["knn_method"]
        assert "recall@10" in tsne["notes"][0] and 0 <= tsne["params"]["quality"]["neighbor_recall"] <= 1
        assert tsne["has_local_recall"] is True  # measured with the map: faithfulness is at hand
        faith = wait_for(c, "/api/faithfulness", {"method": "tsne", "dims": 2})["result"]
        assert faith["recall"] == pytest.approx(tsne["params"]["quality"]["neighbor_recall"], abs=1e-12)
        assert faith["queries"] == len(lens.space) and np.mean(faith["local_recall"]) == pytest.approx(faith["recall"])
        assert projection_path(lens.input.content_hash, "tsne", 2, 0).is_file()
        again = c.get("/api/info").json()["panels"][0]["default_map"]
        assert again == {"method": "tsne", "dims": 2, "pending": None}
    # a new server opens on the cached t-SNE at once, and queues nothing
    with TestClient(create_app([lens]), base_url=BASE) as c:
        assert c.get("/api/info").json()["panels"][0]["default_map"] == {"method": "tsne", "dims": 2, "pending": None}
        assert [j["kind"] for j in c.get("/api/jobs").json()["jobs"]] == ["projection"]


@pytest.mark.parametrize("cached", ["umap", "tsne"])
def test_default_map_is_a_cached_projection_when_there_is_one(cache_dir, cached):
    from embedlens.atlas.projection import Projection, projection_path, save_projection
    from embedlens.serve import create_app

    lens = blob_space(seed=2)
    coords = np.random.default_rng(0).standard_normal((len(lens.space), 2)).astype(np.float32)
    save_projection(projection_path(lens.input.content_hash, cached, 2, 0),
                    Projection(coords, cached, 2, 0, {"quality": {"neighbor_recall": 0.5}}, ["recall@10 0.5"]))
    with TestClient(create_app([lens]), base_url=BASE) as c:
        assert c.get("/api/info").json()["panels"][0]["default_map"] == {"method": cached, "dims": 2, "pending": None}
        assert not [j for j in c.get("/api/jobs").json()["jobs"] if j["state"] != "ready"]
        data = c.get("/api/projection/data", params={"method": cached, "dims": 2})
        np.testing.assert_array_equal(np.frombuffer(data.content, "<f4").reshape(-1, 2), coords)


def test_tiny_spaces_stay_on_pca(cache_dir):
    from embedlens.serve import create_app

    lens = blob_space(n=30, seed=3)
    with TestClient(create_app([lens]), base_url=BASE) as c:
        assert c.get("/api/info").json()["panels"][0]["default_map"] == {"method": "pca", "dims": 2, "pending": None}


# -- clusters on the cached graph ------------------------------------------------------------------------


def test_clusters_reuse_the_spaces_graph_and_match_a_fresh_clustering(cache_dir, monkeypatch):
    import embedlens.atlas.clusters as clusters_module
    import embedlens.neighbors.knn as knn
    import embedlens.reduce.knn as reduce_knn
    from embedlens.atlas.clusters import find_clusters
    from embedlens.neighbors.knn import build_knn
    from embedlens.serve import create_app

    lens = blob_space(seed=4)
    build_knn(lens.input, 90, method="exact")  # what `embedlens map --all --method tsne` leaves in the cache
    searches: list[str] = []
    real_knn, real_map = knn.knn_graph, reduce_knn.map_graph
    monkeypatch.setattr(knn, "knn_graph", lambda *a, **kw: searches.append("knn") or real_knn(*a, **kw))
    monkeypatch.setattr(reduce_knn, "map_graph", lambda *a, **kw: searches.append("map") or real_map(*a, **kw))
    monkeypatch.setattr(clusters_module, "map_graph", reduce_knn.map_graph)  # the clusters' own name for it
    with TestClient(create_app([lens]), base_url=BASE) as c:
        answer = wait_for(c, "/api/clusters", {"n": "auto"})
        assert answer["job"]["state"] == "ready", answer
        body, assignment = answer["result"], answer["assignment"]
        assert searches == []  # no neighbour search: the cached graph was read
        monkeypatch.setattr(knn, "knn_graph", real_knn)
        monkeypatch.setattr(reduce_knn, "map_graph", real_map)
        monkeypatch.setattr(clusters_module, "map_graph", real_map)
        vectors = lens.space.vectors
        fresh = find_clusters(vectors, clusters="auto", metric="cosine", seed=0, display=list(lens.space.display),
                              sub=True)  # builds its own full-space graph
        assert assignment == fresh.assignment.tolist()
        # the result is the library's JSON (the manifest's clusters block), the per-point columns beside it;
        # how the graph was found (params) and timings aside
        expected = json.loads(json.dumps(fresh.to_dict()))
        got = json.loads(json.dumps(body))
        for d in (got, expected, got["sub"], expected["sub"]):
            d.pop("params"), d.pop("timings")
        assert got == expected
        assert [cl["label"] for cl in body["clusters"]] == [cl.label for cl in fresh.clusters]
        assert len(body["clusters"]) == 6  # the six blobs
        level, finer = answer["levels"]
        assert level["name"] == "clusters" and level["assignment"] == assignment
        assert level["labels"] == [cl["label"] for cl in body["clusters"]]
        assert level["sizes"] == np.bincount(fresh.assignment[fresh.assignment >= 0]).tolist()
        sub = np.asarray(finer["assignment"])
        assert finer["name"] == "sub-clusters" and finer["assignment"] == fresh.sub.assignment.tolist()
        assert finer["sizes"] == np.bincount(sub[sub >= 0]).tolist() and len(finer["labels"]) == len(finer["sizes"])
        parent = np.asarray(assignment)
        for s in range(len(finer["sizes"])):  # each sub-cluster lies inside one cluster
            assert np.unique(parent[sub == s]).size == 1
        assert "cached exact 90-NN graph" in body["params"]["knn_source"]
        two = wait_for(c, "/api/clusters", {"n": "2"})
        assert two["job"]["state"] == "ready" and len(two["result"]["clusters"]) == 2


def test_job_queue_runs_page_work_before_background_work():
    import threading

    from embedlens.serve.jobs import JobManager

    jobs = JobManager(1)
    release, order = threading.Event(), []
    try:
        jobs.submit("blocker", "test", "running", lambda: release.wait(10))
        jobs.submit("tsne", "test", "background", lambda: order.append("tsne"), priority=2)
        jobs.submit("clusters", "test", "page", lambda: order.append("clusters"), priority=1)
        jobs.submit("graph", "test", "graph", lambda: order.append("graph"), priority=0)
        release.set()
        deadline = time.monotonic() + 10
        while len(order) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["graph", "clusters", "tsne"]
    finally:
        release.set()
        jobs.shutdown()


def test_a_failed_job_answers_its_error_before_it_is_retried():
    from embedlens.errors import EmbedlensError
    from embedlens.serve.jobs import JobManager

    jobs, calls = JobManager(1), []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise EmbedlensError("the first try fails")
        return "done"

    def settled(job):
        deadline = time.monotonic() + 10
        while job.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.01)
        return job

    try:
        first = settled(jobs.submit("k", "test", "flaky", flaky))
        assert first.state == "error"
        polled = jobs.submit("k", "test", "flaky", flaky)  # the page polls: it must see the error, not a new try
        assert polled is first and polled.to_dict()["error"] == "the first try fails" and len(calls) == 1
        again = settled(jobs.submit("k", "test", "flaky", flaky))  # asked again after the error was shown: retried
        assert again is not first and again.state == "ready" and again.result == "done" and len(calls) == 2
    finally:
        jobs.shutdown()


def stoppable_work(started, steps):
    """100 s of 10 ms steps, each a progress checkpoint; ``started`` is set at the first, ``steps`` counts them."""
    from embedlens.progress import bar

    def work() -> str:
        with bar(10_000, "long work") as advance:
            for step in range(10_000):
                started.set()
                time.sleep(0.01)
                steps.append(step)
                advance(1)
        return "finished"

    return work


def test_shutdown_stops_the_running_job_at_its_next_checkpoint_and_drops_the_queued_ones():
    import threading

    from embedlens.serve.jobs import JobManager

    jobs, steps, started = JobManager(1), [], threading.Event()

    long_work = stoppable_work(started, steps)

    running = jobs.submit("long", "test", "long work", long_work)
    queued = jobs.submit("next", "test", "queued work", lambda: steps.append("next ran"))
    assert started.wait(10)
    t0 = time.monotonic()
    jobs.shutdown()
    assert jobs.wait(60) and time.monotonic() - t0 < 10  # a step of 10 ms, not the 100 s the job had left
    assert running.state == "error" and running.error.startswith("stopped") and running.result is None
    assert "next ran" not in steps and queued.state == "queued" and len(steps) < 1000


def test_stopping_the_server_stops_the_explorers_running_job(tmp_path, monkeypatch):
    """What `embedlens serve` does on Ctrl+C, through the app's own lifespan: the running job stops at its next
    checkpoint and nothing computes on once the server is down."""
    import threading

    import httpx

    from embedlens.serve import ServerThread, create_app

    monkeypatch.setenv("EMBEDLENS_CACHE", str(tmp_path))
    app, started, steps = create_app([blob_space()]), threading.Event(), []

    long_work = stoppable_work(started, steps)

    with ServerThread(app) as url:
        assert httpx.get(url + "api/info", timeout=30).status_code == 200
        job = app.state.explorer.index_jobs.submit("long", "test", "long work", long_work)
        assert started.wait(30)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 30 and job.state == "error" and job.error.startswith("stopped")
    done = len(steps)
    time.sleep(0.1)
    assert len(steps) == done < 10_000  # stopped, not finished, and not running on


def test_wait_follows_the_pools_turns_not_the_jobs_they_were_made_for():
    """A turn runs whichever queued job comes first: waiting must follow the turns, even when the job a turn was
    made for has since been retried under the same key."""
    import threading

    from embedlens.errors import EmbedlensError
    from embedlens.serve.jobs import JobManager

    jobs, release, ended = JobManager(1), threading.Event(), []

    def slow() -> str:  # no checkpoint: a stop cannot end it early
        time.sleep(1.0)
        ended.append(time.monotonic())
        return "slow"

    def fail() -> str:
        raise EmbedlensError("x fails")

    jobs.submit("a", "test", "blocker", lambda: release.wait(10), priority=0)
    jobs.submit("y", "test", "slow", slow, priority=5)  # its turn will run x, and x's turn will run y
    x = jobs.submit("x", "test", "failing", fail, priority=0)
    release.set()
    deadline = time.monotonic() + 10
    while x.state != "error" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert jobs.submit("x", "test", "failing", fail) is x  # the error is answered first
    jobs.submit("x", "test", "failing", fail)  # then retried: "x" now names a new job and a new turn
    while jobs.get("y").state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    jobs.shutdown()
    assert jobs.wait(30) and ended and time.monotonic() >= ended[0]


# -- per-token data -------------------------------------------------------------------------------------


def test_points_carry_each_rows_writing_system(client, gpt2):
    from embedlens.writing_systems import SCRIPTS

    pts = client.get("/api/points").json()
    display = list(gpt2.space.display)
    assert len(pts["script"]) == len(display) and set(pts["script"]) <= set(SCRIPTS)
    assert pts["script"][gpt2.space.row_of_label["<script>"]] == "Latin"
    digits = [r for r, s in enumerate(display) if s.strip("␣").isdigit()]
    assert digits and all(pts["script"][r] == "digits" for r in digits)
    punct = [r for r, s in enumerate(display) if s in (";", ",", "(", "&")]
    assert punct and all(pts["script"][r] == "punctuation" for r in punct)


def test_faithfulness_is_local_recall_against_brute_force(client, gpt2):
    X = unit(gpt2.space.vectors)
    assert wait_for(client, "/api/projection", {"method": "pca", "dims": 2})["job"]["state"] == "ready"
    body = wait_for(client, "/api/faithfulness", {"method": "pca", "dims": 2})
    assert body["job"]["state"] == "ready", body
    body = body["result"]
    coords = np.frombuffer(client.get("/api/projection/data", params={"method": "pca"}).content, "<f4").reshape(-1, 2)
    cos = X @ X.T
    np.fill_diagonal(cos, -np.inf)
    sq = ((coords[:, None, :].astype(np.float64) - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(sq, np.inf)
    truth, found = brute_top(cos, 10), brute_top(-sq, 10)
    expected = (truth[:, :, None] == found[:, None, :]).any(axis=2).mean(axis=1)
    assert body["k"] == 10 and body["queries"] == len(X)  # fewer than 2,000 rows: every row is a query
    np.testing.assert_allclose(body["local_recall"], expected, atol=1e-4)
    proj = client.get("/api/projection", params={"method": "pca", "dims": 2}).json()["result"]
    assert body["recall"] == pytest.approx(proj["params"]["quality"]["neighbor_recall"], abs=1e-12)
    assert proj["has_local_recall"] is True  # measured once, kept with the map
    assert body["recall"] == pytest.approx(expected.mean(), abs=1e-6)


def test_faithfulness_waits_for_its_map(client):
    r = client.get("/api/faithfulness", params={"method": "umap", "dims": 3})
    assert r.status_code == 409 and "no umap 3D map" in r.json()["error"]


# -- rows the page points at -------------------------------------------------------------------------------


def test_true_neighbors_are_the_exact_top_k(client, app, gpt2):
    from embedlens.serve import create_app

    X = unit(gpt2.space.vectors)
    row = gpt2.space.row_of_label["<script>"]
    cos = X @ X[row]
    cos[row] = -np.inf
    expected = brute_top(cos[None, :], 10)[0]
    app.state.explorer.space_graph(app.state.explorer.panels[0])  # the page's graph: a table look-up
    with TestClient(create_app([gpt2], knn=False), base_url=BASE) as scan:  # every answer an exact scan
        for c in (client, scan):
            body = c.get("/api/true_neighbors", params={"row": row, "k": 10}).json()
            assert body["row"] == row and body["rows"] == expected.tolist()
            np.testing.assert_allclose(body["scores"], cos[expected], atol=1e-6)
            assert body["display"] == [gpt2.space.display[r] for r in expected]
        assert scan.app.state.explorer.ready_graph(scan.app.state.explorer.panels[0]) is None


@pytest.mark.parametrize("exclude", [False, True])
def test_centroid_neighbours_are_numpy_brute_force(client, gpt2, exclude):
    X = unit(gpt2.space.vectors)
    rows = [gpt2.space.row_of_label[t] for t in ("<script>", "&amp;", "</div>", '"quoted"')] + [5, 9, 5]
    body = client.post("/api/centroid", json={"rows": rows, "k": 12, "exclude_selected": exclude}, headers=ORIGIN)
    assert body.status_code == 200, body.text
    body = body.json()
    chosen = list(dict.fromkeys(rows))
    c = X[chosen].mean(axis=0)
    scores = X @ (c / np.linalg.norm(c))
    if exclude:
        scores[chosen] = -np.inf
    expected = brute_top(scores[None, :], 12)[0]
    assert body["n_selected"] == len(chosen) == 6 and body["rows"] == expected.tolist()
    np.testing.assert_allclose([n["score"] for n in body["neighbors"]], scores[expected], atol=1e-6)
    assert [n["display"] for n in body["neighbors"]] == [gpt2.space.display[r] for r in expected]
    assert [n["selected"] for n in body["neighbors"]] == [int(r) in chosen for r in expected]
    assert any(n["selected"] for n in body["neighbors"]) != exclude


def test_selection_graph_is_embedlens_graph(client, gpt2):
    from embedlens.graph import build_graph, layout_graph
    from embedlens.graph.seeds import seeds_from_rows

    rows = [gpt2.space.row_of_label[t] for t in ("<script>", "it's", "&amp;")] + [40, 41, 42]
    r = client.post("/api/selection_graph", json={"space": 0, "rows": rows, "k": 6}, headers=ORIGIN)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = layout_graph(build_graph(gpt2, seeds_from_rows(gpt2, rows), k=6, mutual=True), seed=0).to_dict()
    assert body["nodes"] == expected["nodes"] and body["edges"] == expected["edges"]
    assert body["stats"] == expected["stats"] and body["stats"]["seeds"] == 6
    assert body["rows"] == [gpt2.space.row_of_id[nd["id"]] for nd in body["nodes"]]
    assert body["rows"][:6] == rows and {"<script>", "&amp;", "it's"} <= {nd["display"] for nd in body["nodes"]}


def test_pointcloud_component_is_served(client):
    r = client.get("/static/pointcloud.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")


# -- refusals -------------------------------------------------------------------------------------------------

BAD_GET = [
    ("/api/true_neighbors", {}, 400, "'row' is required"),
    ("/api/true_neighbors", {"row": "-1"}, 400, "between 0 and"),
    ("/api/true_neighbors", {"row": "99999"}, 400, "between 0 and"),
    ("/api/true_neighbors", {"row": "1.5"}, 400, "integer"),
    ("/api/true_neighbors", {"row": "3", "k": "0"}, 400, "between 1"),
    ("/api/true_neighbors", {"row": "3", "k": "100000"}, 400, "between 1"),
    ("/api/true_neighbors", {"row": "3", "space": "2"}, 404, "unknown space"),
    ("/api/faithfulness", {"method": "lda"}, 400, "one of"),
    ("/api/faithfulness", {"dims": "5"}, 400, "between 2 and 3"),
    ("/api/faithfulness", {"space": "x"}, 404, "unknown space"),
    ("/api/clusters", {"n": "1"}, 400, "between 2"),
    ("/api/clusters", {"n": "many"}, 400, "integer"),
    ("/api/clusters", {"n": "100000"}, 400, "between 2"),
]


@pytest.mark.parametrize(("path", "params", "status", "message"), BAD_GET, ids=[f"{p}-{i}" for i, (p, *_) in enumerate(BAD_GET)])
def test_bad_parameters_get_a_one_line_4xx(client, path, params, status, message):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message.lower() in error.lower() and "\n" not in error


BAD_POST = [
    ("/api/centroid", {"k": 5}, 400, "'rows' is required"),
    ("/api/centroid", {"rows": []}, 400, "non-empty list"),
    ("/api/centroid", {"rows": "1,2"}, 400, "non-empty list"),
    ("/api/centroid", {"rows": [1, True]}, 400, "integers only"),
    ("/api/centroid", {"rows": [1, 2.0]}, 400, "integers only"),
    ("/api/centroid", {"rows": [1, "2"]}, 400, "integers only"),
    ("/api/centroid", {"rows": [1, None]}, 400, "integers only"),
    ("/api/centroid", {"rows": [-1]}, 400, "rows are 0.."),
    ("/api/centroid", {"rows": [100000]}, 400, "rows are 0.."),
    ("/api/centroid", {"rows": [10**30]}, 400, "outside"),
    ("/api/centroid", {"rows": [1], "k": 0}, 400, "between 1"),
    ("/api/centroid", {"rows": [1], "k": 201}, 400, "between 1"),
    ("/api/centroid", {"rows": [1], "k": "5"}, 400, "integer"),
    ("/api/centroid", {"rows": [1], "k": True}, 400, "integer"),
    ("/api/centroid", {"rows": [1], "exclude_selected": 1}, 400, "true or false"),
    ("/api/centroid", {"rows": [1], "space": 1}, 404, "unknown space"),
    ("/api/centroid", {"rows": [1], "space": "0"}, 404, "unknown space"),
    ("/api/centroid", {"rows": [1], "colour": "red"}, 400, "unknown field 'colour'"),
    ("/api/selection_graph", {"rows": list(range(501))}, 413, "limit is 500"),
    ("/api/selection_graph", {"rows": [1], "k": 51}, 400, "between 1 and 50"),
    ("/api/selection_graph", {"rows": list(range(300)), "k": 20}, 413, "fewer"),
    ("/api/selection_graph", {"rows": [1], "mutual": "yes"}, 400, "true or false"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_POST, ids=[f"{p}-{i}" for i, (p, *_) in enumerate(BAD_POST)])
def test_bad_bodies_get_a_one_line_4xx(client, path, body, status, message):
    r = client.post(path, json=body, headers=ORIGIN)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message.lower() in error.lower() and "\n" not in error


RAW_POST = [
    ({"content-type": "text/plain"}, b'{"rows": [1]}', 415, "must be JSON"),
    ({}, b'{"rows": [1]}', 415, "must be JSON"),
    ({"content-type": "application/json"}, b'{"rows": [1', 400, "not valid JSON"),
    ({"content-type": "application/json"}, b'[1, 2]', 400, "JSON object"),
    ({"content-type": "application/json"}, b'{"rows": [1], "k": NaN}', 400, "not valid JSON"),
    ({"content-type": "application/json"}, b'{"rows": [1], "rows": [2]}', 400, "given twice"),
    ({"content-type": "application/json"}, b'\xff\xfe', 400, "UTF-8"),
    ({"content-type": "application/json"}, b"[" * 100_000 + b"]" * 100_000, 400, "not valid JSON"),
    ({"content-type": "application/json"}, b'{"rows": [' + b"1," * 1_100_000 + b'1]}', 413, "larger than"),
    ({"content-type": "application/json", "origin": "http://evil.example"}, b'{"rows": [1]}', 403, "refused"),
    ({"content-type": "application/json", "origin": "null"}, b'{"rows": [1]}', 403, "refused"),
    ({"content-type": "application/json", "sec-fetch-site": "cross-site"}, b'{"rows": [1]}', 403, "cross-site"),
]


@pytest.mark.parametrize(("headers", "raw", "status", "message"), RAW_POST, ids=[str(i) for i in range(len(RAW_POST))])
def test_bad_requests_to_post_endpoints(client, headers, raw, status, message):
    r = client.post("/api/centroid", content=raw, headers=headers)
    assert r.status_code == status, r.text
    assert message.lower() in r.json()["error"].lower() and "\n" not in r.json()["error"]
    assert client.get("/api/info").status_code == 200


def test_post_endpoints_refuse_get_and_get_endpoints_refuse_post(client):
    assert client.get("/api/centroid").status_code == 405
    assert client.post("/api/true_neighbors", content=json.dumps({"row": 1}),
                       headers={"content-type": "application/json"}).status_code == 405


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_get_endpoints_refuse_another_site_and_start_nothing(client, app, site):
    """A page elsewhere (an <img> or a no-cors fetch) cannot read the answer, but must not start work either."""
    explorer = app.state.explorer
    panel = explorer.panels[0]
    key = explorer.projection_key(panel, "umap", 3)
    r = client.get("/api/projection", params={"method": "umap", "dims": 3}, headers={"sec-fetch-site": site})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    assert explorer.job(key) is None
    r = client.get("/api/grid", params={"size": 4}, headers={"sec-fetch-site": site})
    assert r.status_code == 403 and not any(j["kind"] == "grid" for j in explorer.jobs.all())
    # the page itself (same-origin) and a typed address (none) are served
    assert client.get("/api/jobs", headers={"sec-fetch-site": "same-origin"}).status_code == 200
    assert client.get("/api/jobs", headers={"sec-fetch-site": "none"}).status_code == 200


def test_a_tsne_map_asked_for_before_the_page_opens_is_computed_once(cache_dir):
    """A link with #method=tsne asks /api/projection (the map queue) before /api/info queues the default
    t-SNE (the long-job queue): one job for the key, which the page's pending t-SNE is."""
    import threading

    from embedlens.serve.explorer import Explorer
    from embedlens.serve.panels import Panel

    panel = Panel(blob_space(n=150, seed=4), index=0)
    explorer = Explorer([panel])
    gate = threading.Event()
    explorer.jobs.submit("hold", "test", "holds the map queue", lambda: gate.wait(60))  # the t-SNE stays queued
    try:
        state, _ = explorer.projection(panel, "tsne", 2)
        assert state["job"]["state"] == "queued"
        opened = explorer.open_panel(panel)
        key = explorer.projection_key(panel, "tsne", 2)
        assert opened == {"method": "pca", "dims": 2, "pending": "tsne"}
        assert explorer.jobs.get(key) is not None and explorer.index_jobs.get(key) is None
    finally:
        gate.set()
        explorer.jobs.shutdown()
        explorer.index_jobs.shutdown()
