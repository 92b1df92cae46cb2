"""Embedding graphs: edges equal a brute-force top-k, seeded layout and draws, exports round-trip, CLI, browser."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.graph import (
    build_graph,
    layout_graph,
    seeds_from_random,
    token_graph,
    whole_word_rows,
    write_graph,
)
from embedlens.graph.seeds import seeds_from_words
from embedlens.lens import SpaceLens
from embedlens.neighbors.knn import build_knn
from embedlens.spaces.space import EmbeddingSpace


@pytest.fixture(scope="module")
def rand_lens() -> SpaceLens:
    x = np.random.default_rng(5).normal(size=(800, 16)).astype(np.float32)
    return SpaceLens(EmbeddingSpace.from_arrays(x, [f"w{i}" for i in range(800)], name="rand"))


def cosine(x: np.ndarray) -> np.ndarray:
    v = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    return v @ v.T


def brute_topk(lens, vector: np.ndarray, exclude: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(lens.space.vectors, dtype=np.float64)
    s = (x @ vector) / (np.linalg.norm(x, axis=1) * np.linalg.norm(vector))
    s[exclude] = -np.inf
    idx = np.argsort(-s)[:k]
    return idx, s[idx]


def edge_map(g) -> dict[frozenset, float]:
    return {frozenset((e.source, e.target)): e.score for e in g.edges}


def test_edges_equal_brute_force_topk(rand_lens, cache_dir):
    k = 7
    g = build_graph(rand_lens, ["w1", "w2", "w3 w4"], k=k)
    edges = edge_map(g)
    seeds = [n for n in g.nodes if n.is_seed]
    assert [n.token for n in seeds] == ["w1", "w2", "w3 w4"]
    word = seeds[2]
    assert word.kind == "word" and word.id < 0 and word.token_ids == (3, 4) and g.notes  # mean of two rows, said so
    x = rand_lens.space.vectors
    for node, vec, excl in ((seeds[0], x[1], [1]), (seeds[1], x[2], [2]), (word, x[[3, 4]].mean(0), [3, 4])):
        idx, sc = brute_topk(rand_lens, vec, excl, k)
        got = {(t if s == node.id else s): score for pair, score in edges.items() if node.id in pair
               for s, t in [tuple(pair)]}
        assert set(got) >= set(idx.tolist())
        for i, s in zip(idx, sc, strict=True):
            assert got[int(i)] == pytest.approx(s, abs=1e-5)
    # every edge touches a seed (no --mutual), and there are exactly the union of the top-k lists
    seed_ids = {n.id for n in seeds}
    assert all(e.source in seed_ids or e.target in seed_ids for e in g.edges)
    assert g.stats.nodes == len(g.nodes) and g.stats.edges == len(g.edges) == len(edges)
    assert g.stats.degree["max"] >= k and sum(g.stats.degree["histogram"].values()) == len(g.nodes)


def test_min_score_and_mutual(rand_lens, cache_dir):
    k = 6
    full = build_graph(rand_lens, ["w10", "w11", "w12", "w13"], k=k, mutual=True)
    sims = cosine(rand_lens.space.vectors)
    np.fill_diagonal(sims, -np.inf)
    topk = np.argsort(-sims, axis=1)[:, :k]
    ids = np.array([n.id for n in full.nodes])
    in_top = {(a, b) for a in ids for b in topk[a] if b in set(ids)}
    want_mutual = {frozenset((a, b)) for a, b in in_top if (b, a) in in_top}
    got = {frozenset((e.source, e.target)) for e in full.edges}
    assert want_mutual <= got  # every mutual pair among the nodes is joined
    for e in full.edges:
        if e.kind == "mutual":
            assert frozenset((e.source, e.target)) in want_mutual
    plain = build_graph(rand_lens, ["w10", "w11", "w12", "w13"], k=k)
    assert len(full.edges) >= len(plain.edges)
    scores = sorted({e.score for e in plain.edges})
    cut = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # between two scores: no rounding edge
    strong = build_graph(rand_lens, ["w10", "w11", "w12", "w13"], k=k, min_score=cut)
    assert strong.edges and all(e.score >= cut for e in strong.edges)
    assert {frozenset((e.source, e.target)) for e in strong.edges} == {
        frozenset((e.source, e.target)) for e in plain.edges if e.score >= cut}
    assert {n.id for n in strong.nodes} <= {n.id for n in plain.nodes}


def test_cached_knn_gives_the_same_graph(rand_lens, cache_dir):
    computed = build_graph(rand_lens, ["w1", "w7"], k=5, mutual=True)
    build_knn(rand_lens.input, 8)
    cached = build_graph(rand_lens, ["w1", "w7"], k=5, mutual=True)
    assert computed.knn_source == "computed" and cached.knn_source.startswith("cached exact")
    assert edge_map(cached).keys() == edge_map(computed).keys()
    for key, s in edge_map(cached).items():
        assert s == pytest.approx(edge_map(computed)[key], abs=1e-5)


def test_same_seed_same_layout_and_words(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    a = token_graph(lens, random=3, k=5, seed=4)
    b = token_graph(lens, random=3, k=5, seed=4)
    assert [n.id for n in a.nodes] == [n.id for n in b.nodes]
    assert np.array_equal(a.positions, b.positions)
    assert np.abs(a.positions).max() <= 1.0 + 1e-9
    draws = {tuple(s.rows) for seed in range(8) for s in seeds_from_random(lens, 3, seed=seed)[0]}
    assert len(draws) > 3  # other seeds draw other words
    c = layout_graph(token_graph(lens, random=3, k=5, seed=4, layout=False), seed=5)
    assert not np.allclose(c.positions, a.positions)


def test_random_words_are_whole_words(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    rows = whole_word_rows(lens)
    shown = [lens.space.display[r] for r in rows]
    assert shown and all(s.startswith("␣") and s[1:].isalpha() and len(s) >= 4 for s in shown)
    seeds, info = seeds_from_random(lens, len(rows), seed=0)
    assert sorted(s.rows[0] for s in seeds) == sorted(rows.tolist()) and info["candidates_in_vocabulary"] == len(rows)
    with pytest.raises(EmbedlensError, match="more than the"):
        seeds_from_random(lens, len(rows) + 1)


def test_random_words_from_a_corpus(tiny_gpt2_dir, cache_dir, tmp_path):
    lens = embedlens.load(str(tiny_gpt2_dir))
    corpus = tmp_path / "c.txt"
    corpus.write_text("a list of tokens and a list of lists " * 20)
    seeds, info = seeds_from_random(lens, 3, seed=1, corpus=str(corpus))
    got = {lens.space.display[s.rows[0]] for s in seeds}
    assert got <= {"␣list", "␣tokens", "␣and", "␣the", "␣token"} and "␣the" not in got
    assert info["candidates_in_corpus"] == 3


def test_text_seeds_skip_special_tokens(tiny_bert_dir, cache_dir):
    lens = embedlens.load(str(tiny_bert_dir))
    g = token_graph(lens, text="the list of lists", k=3)
    seeds = [n for n in g.nodes if n.is_seed]
    sp = lens.space
    want = [i for i in lens.encode("the list of lists", add_special_tokens=False) if not sp.special[i]]
    assert [n.id for n in seeds] == list(dict.fromkeys(want))
    assert not any(sp.special[n.id] for n in seeds)


def test_exports_round_trip_through_networkx(tiny_gpt2_dir, cache_dir, tmp_path):
    import networkx as nx

    lens = embedlens.load(str(tiny_gpt2_dir))
    g = token_graph(lens, words="list,tok:<script>,tok:[/b],zebra", k=4, mutual=True)
    paths = write_graph(g, tmp_path / "out", manifest={"model": lens.manifest()})
    data = json.loads(paths["graph.json"].read_text(encoding="utf-8"))
    from_json = nx.node_link_graph(data, edges="edges")
    from_graphml = nx.read_graphml(paths["graph.graphml"], node_type=int)
    for h in (from_json, from_graphml):
        assert set(h.nodes) == {n.id for n in g.nodes}
        assert {frozenset(e) for e in h.edges} == {frozenset((e.source, e.target)) for e in g.edges}
        for n in g.nodes:
            assert h.nodes[n.id]["token"] == n.token and h.nodes[n.id]["display"] == n.display
            assert bool(h.nodes[n.id]["is_seed"]) == n.is_seed
        for e in g.edges:
            assert h.edges[e.source, e.target]["score"] == pytest.approx(e.score)
    assert any(n["token"] == "<script>" for n in data["nodes"])
    assert any(n["kind"] == "word" and n["token"] == "zebra" for n in data["nodes"])
    manifest = json.loads(paths["manifest.json"].read_text())
    assert manifest["stats"]["nodes"] == len(g.nodes) and manifest["parameters"]["k"] == 4
    assert manifest["layout"]["seed"] == 0 and manifest["seeds_from"]["mode"] == "words"
    assert not list((tmp_path / "out").glob(".*tmp"))  # nothing half-written left


def test_cli_graph_json_and_files(tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    out = tmp_path / "g"
    res = run_cli("graph", "--words", "list,zebra", "-m", tiny_gpt2_dir, "--k", "5", "--out", out, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert json.loads((out / "graph.json").read_text()) == data
    assert sorted(p.name for p in out.iterdir()) == ["graph.graphml", "graph.html", "graph.json", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["content_hash"] and manifest["versions"]["numpy"] and manifest["seed"] == 0
    res = run_cli("graph", "--variants", "list", "-m", tiny_gpt2_dir, "--k", "3", "--out", out)
    assert res.code == 0 and "seeds" in res.out and "graph.html" in res.out


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of"),
    (["--words", "list", "--text", "a list"], "exactly one of"),
    (["--words", " , ,"], "word list is empty"),
    (["--words", "tok:nosuchtoken"], "not in the vocabulary"),
    (["--random", "999"], "more than the"),
    (["--random", "0"], "positive number"),
    (["--words", "list", "--k", "0"], "--k must be"),
    (["--words", "list", "--k", "100000"], "--k must be"),
    (["--words", "list", "--min-score", "3"], "min-score"),
    (["--words", "list", "--corpus", "lee"], "--corpus only applies"),
    (["--text", "  "], "text is empty"),
    (["--words", "list", "--out", "{file}"], "is a file"),
    (["--words", "list", "--out", "{file}/sub"], "not writable"),
])
def test_bad_input_one_line_exit_2(args, message, tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    args = [a.replace("{file}", str(afile)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "g")]
    res = run_cli("graph", "-m", tiny_gpt2_dir, *args)
    assert res.code == 2, res
    errors = [line for line in res.err.splitlines() if not line.startswith("embedlens: note:")]
    assert len(errors) == 1 and errors[0].startswith("embedlens: error:") and message in errors[0], res.err


def test_word_with_no_tokens(tiny_bert_dir, cache_dir):
    lens = embedlens.load(str(tiny_bert_dir))
    with pytest.raises(EmbedlensError, match="no tokens"):
        seeds_from_words(lens, "list,\x01")


@pytest.mark.real_model
def test_real_smollm2_variants_graph(smollm2, use_shared_cache, run_cli, tmp_path):
    res = run_cli("graph", "--variants", "list", "--k", "10", "--out", tmp_path / "g", "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    seeds = {n["display"] for n in data["nodes"] if n["is_seed"]}
    assert {"list", "␣list", "␣List", "␣lists"} <= seeds
    sp = smollm2.space
    for n in data["nodes"]:
        assert n["token"] == sp.labels[n["id"]] and n["display"] == sp.display[n["id"]]
    # the edges of ␣list are its 10 nearest tokens over the whole vocabulary
    row = sp.row_of_label["Ġlist"]
    nb = smollm2.nearest("tok:Ġlist", 10)
    linked = {e["target"] if e["source"] == row else e["source"] for e in data["edges"] if row in (e["source"], e["target"])}
    assert {x.id for x in nb.neighbors} <= linked


@pytest.mark.browser
@pytest.mark.slow
def test_html_renders_markup_tokens_as_text(tiny_gpt2_dir, cache_dir, tmp_path, offline_page):
    lens = embedlens.load(str(tiny_gpt2_dir))
    g = token_graph(lens, words="tok:<script>,tok:</div>,tok:<br>,tok:[/b],list", k=4)
    paths = write_graph(g, tmp_path / "out")
    page, seen = offline_page(paths["graph.html"].resolve())
    page.wait_for_selector(".scatterlayer .trace", timeout=20_000)
    labels = page.eval_on_selector_all(".scatterlayer .textpoint text", "els => els.map(e => e.textContent)")
    injected = page.evaluate("""() => document.querySelectorAll(
        '.main-svg script, .main-svg div, .main-svg br, .main-svg img, .main-svg iframe').length""")
    n_points = page.eval_on_selector_all(".scatterlayer .point", "els => els.length")
    assert not seen.errors and not seen.dialogs, seen
    assert all(u.startswith("file://") for u in seen.requests), seen.requests
    for token in ("<script>", "</div>", "<br>", "[/b]"):
        assert token in labels, (token, labels)
    assert injected == 0
    assert n_points >= len(g.nodes)
