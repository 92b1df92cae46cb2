"""``embedlens compare``: figures against plain formulas, controls, correspondence, files, errors and the page."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from embedlens.comparison import Comparison, compare, write_comparison
from embedlens.comparison.correspondence import match_strings
from embedlens.display import display_tokens
from embedlens.lens import SpaceLens
from embedlens.spaces.space import EmbeddingSpace

from .conftest import MARKUP_TOKENS

N, D = 240, 12


def view(vectors, words, name="s"):
    return SpaceLens(EmbeddingSpace.from_arrays(np.asarray(vectors, dtype=np.float32), words, name=name)).input


def unit_centred(x):
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x - x.mean(axis=0)


def brute_knn(x, k):
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def spaces(module_cache):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    words = [f"w{i}" for i in range(N)]
    q, _ = np.linalg.qr(rng.normal(size=(D + 4, D + 4)))
    return SimpleNamespace(x=x, words=words, rng=rng, a=view(x, words, "a"),
                           # B: A rotated into 4 more dimensions (an isometry), so the spaces differ in width
                           rotated=view(np.hstack([x, np.zeros((N, 4), np.float32)]) @ q.astype(np.float32), words, "b"))


@pytest.fixture(scope="module")
def partial(spaces):
    """A and B share 160 words (B's rows shuffled and partly unrelated): a string match with some changed tokens."""
    rng = np.random.default_rng(1)
    words_b = spaces.words[80:] + [f"other{i}" for i in range(40)]
    yb = np.vstack([spaces.x[80:] + 0.6 * rng.normal(size=(N - 80, D)), rng.normal(size=(40, D))])
    yb = (yb @ rng.normal(size=(D, 9))).astype(np.float32)  # into 9 dimensions: a narrower B
    order = rng.permutation(len(words_b))
    b = view(yb[order], [words_b[i] for i in order], "b2")
    return compare(spaces.a, b, k=5, maps=False, control_runs=3), b


def test_rotation_of_itself_gives_cka_1_residual_0_overlap_1_accuracy_1(spaces):
    r = compare(spaces.a, spaces.rotated, k=5, maps=False, control_runs=2)
    assert r.match == "identity" and r.n_shared == N and not r.same_space
    assert r.figures["cka"] == pytest.approx(1.0, abs=1e-5)
    assert r.figures["procrustes_residual"] == pytest.approx(0.0, abs=1e-5)
    assert r.figures["knn_overlap"] == 1.0 and r.figures["acc1"] == 1.0 and r.figures["acc10"] == 1.0
    assert np.all(r.displacement < 1e-2) and (r.gained < 0).all() and (r.lost < 0).all()
    # ... far from what shuffled pairs give
    assert r.control["cka"]["mean"] < 0.5 and r.control["knn_overlap"]["mean"] < 0.2
    assert any("zero-padded to 16" in n for n in r.notes)


def test_cka_equals_the_plain_formula(partial, spaces):
    r, b = partial
    x = unit_centred(spaces.x[r.rows_a])
    y = unit_centred(b.space.vectors[r.rows_b])
    plain = np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    assert r.figures["cka"] == pytest.approx(plain, rel=1e-5)
    assert 0.05 < plain < 0.95  # a case where the figure is neither trivial value


def test_procrustes_equals_scipy(partial, spaces):
    from scipy.linalg import orthogonal_procrustes

    r, b = partial
    x = unit_centred(spaces.x[r.rows_a])
    y = unit_centred(b.space.vectors[r.rows_b])
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    dim = max(x.shape[1], y.shape[1])
    xp, yp = np.zeros((len(x), dim)), np.zeros((len(y), dim))
    xp[:, : x.shape[1]], yp[:, : y.shape[1]] = x, y
    rot, _ = orthogonal_procrustes(xp, yp)
    per_token = np.linalg.norm(xp @ rot - yp, axis=1)
    assert r.figures["procrustes_residual"] == pytest.approx(float((per_token ** 2).sum()), rel=1e-4)
    np.testing.assert_allclose(r.displacement, per_token * np.sqrt(len(x)), rtol=1e-3, atol=1e-4)
    # accuracy@1/@10: the counterpart among the rows of B nearest (cosine) to the aligned row
    aligned = (xp @ rot)[:, : y.shape[1]]
    sims = (aligned / np.linalg.norm(aligned, axis=1, keepdims=True)) @ (y / np.linalg.norm(y, axis=1, keepdims=True)).T
    rank = (sims > sims[np.arange(len(y)), np.arange(len(y))][:, None]).sum(axis=1)
    assert r.figures["acc1"] == pytest.approx(float((rank < 1).mean()))
    assert r.figures["acc10"] == pytest.approx(float((rank < 10).mean()))
    # above acc_rows shared tokens, accuracy is measured on a seeded sample of them (and said)
    sampled = compare(spaces.a, b, k=5, maps=False, control_runs=2, acc_rows=60, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(len(y), size=60, replace=False))
    assert sampled.figures["acc10"] == pytest.approx(float((rank[rows] < 10).mean()))
    assert sampled.params["acc_rows"] == 60 and any("sample of 60 of the 160" in n for n in sampled.notes)
    assert sampled.figures["cka"] == r.figures["cka"]


def test_overlap_gained_and_lost_equal_brute_force(partial, spaces):
    r, b = partial
    assert (r.match, r.n_shared, r.only_a, r.only_b) == ("string", N - 80, 80, 40)
    assert [spaces.words[i] for i in r.rows_a] == [b.space.labels[j] for j in r.rows_b]
    nb_a, nb_b = brute_knn(spaces.x[r.rows_a], 5), brute_knn(b.space.vectors[r.rows_b], 5)
    for i in range(r.n_shared):
        sa, sb = set(nb_a[i].tolist()), set(nb_b[i].tolist())
        assert r.overlap[i] == pytest.approx(len(sa & sb) / len(sa | sb))
        assert set(r.gained[i][r.gained[i] >= 0].tolist()) == sb - sa
        assert set(r.lost[i][r.lost[i] >= 0].tolist()) == sa - sb
    assert r.figures["knn_overlap"] == pytest.approx(float(r.overlap.mean()), abs=1e-6)
    changed, stable = r.most_changed(5), r.most_stable(5)
    assert r.overlap[changed].max() <= r.overlap[stable].min()


def test_shuffled_copy_falls_to_the_control(spaces):
    rng = np.random.default_rng(5)
    shuffled = view(spaces.x[rng.permutation(N)], spaces.words, "shuffled")  # same words, vectors of others
    r = compare(spaces.a, shuffled, k=5, maps=False, control_runs=8, control_sample=N)
    assert r.match == "identity"
    for name, value in r.figures.items():
        c = r.control[name]
        assert abs(value - c["mean"]) <= 4 * c["std"] + 0.02, (name, value, c)


def test_a_space_against_itself_is_allowed_and_said(spaces, run_cli, tmp_path):
    r = compare(spaces.a, spaces.a, k=5, maps=False, control_runs=2)
    assert r.same_space and any("same space" in n for n in r.notes)
    assert r.figures["cka"] == pytest.approx(1.0, abs=1e-6) and r.figures["procrustes_residual"] < 1e-6
    assert r.figures["knn_overlap"] == r.figures["acc1"] == r.figures["acc10"] == 1.0


def _scheme_view(raws, scheme, name):
    vectors = np.random.default_rng(len(raws)).normal(size=(len(raws), 4)).astype(np.float32)
    space = EmbeddingSpace.from_arrays(vectors, raws, display=display_tokens(raws, scheme), name=name)
    return SimpleNamespace(space=space, token_scheme=scheme)


def test_string_match_reads_G_and_sentencepiece_marks_as_one_leading_space():
    hostile = ["<script>", "&amp;", '"quoted"', "it's", "a&b", "</div>"]
    byte_level = _scheme_view(["Ġthe", "the", "Ġcat", "ĠParis", "Ġ<", "dog", *hostile], "byte_level", "bl")
    spiece = _scheme_view(["▁the", "the", "▁Paris", "cat", "<0x41>", "▁<", *hostile[::-1]], "sentencepiece", "sp")
    pairs = match_strings(byte_level, spiece)
    got = {(byte_level.space.labels[a], spiece.space.labels[b]) for a, b in zip(pairs.rows_a, pairs.rows_b, strict=True)}
    assert got == {("Ġthe", "▁the"), ("the", "the"), ("ĠParis", "▁Paris"), ("Ġ<", "▁<"), *((h, h) for h in hostile)}
    assert (pairs.only_a, pairs.only_b) == (len(byte_level.space) - len(got), len(spiece.space) - len(got))
    # a word space has no word-start marks: its words meet the word-start form first, else the bare form
    words = _scheme_view(["the", "cat", "dog", "paris"], "plain", "words")
    pairs = match_strings(words, byte_level)
    got = {(words.space.labels[a], byte_level.space.labels[b]) for a, b in zip(pairs.rows_a, pairs.rows_b, strict=True)}
    assert got == {("the", "Ġthe"), ("cat", "Ġcat"), ("dog", "dog")}


def test_files_round_trip_and_json_shape(partial, spaces, tmp_path, run_cli):
    import pyarrow.parquet as pq

    r, b = partial
    r.save(tmp_path / "out", html=False)
    table = pq.read_table(tmp_path / "out" / "tokens.parquet")
    assert {"id_a", "id_b", "display", "overlap", "displacement", "gained", "lost"} <= set(table.column_names)
    assert table.column("gained").to_pylist()[3] == [r.display_a[j] for j in r.gained[3] if j >= 0]
    back = Comparison.load(tmp_path / "out")
    for name in ("rows_a", "rows_b", "ids_a", "overlap", "displacement", "gained", "lost"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    assert back.summary() == r.summary() and back.display_a == r.display_a
    again = Comparison.from_dict(json.loads(json.dumps(r.to_dict())))
    np.testing.assert_array_equal(again.gained, r.gained)
    assert again.summary() == r.summary()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["match"], manifest["n_shared"], manifest["only_a"], manifest["only_b"]) == ("string", 160, 80, 40)
    assert set(r.summary()) == {"n_shared", "only_a", "only_b", "k", "cka", "knn_overlap", "procrustes_residual",
                                "acc1", "acc10", "control"}
    assert all(set(v) == {"mean", "std"} for v in r.summary()["control"].values())


@pytest.fixture(scope="module")
def matrix_files(tmp_path_factory, spaces):
    folder = tmp_path_factory.mktemp("matrices")
    np.save(folder / "a.npy", spaces.x)
    np.save(folder / "b.npy", np.asarray(spaces.rotated.space.vectors))
    (folder / "words.txt").write_text("\n".join(spaces.words) + "\n", encoding="utf-8")
    return folder


def test_cli_compares_matrix_files_and_prints_the_issue_json(run_cli, matrix_files, tmp_path):
    f = matrix_files
    res = run_cli("compare", f / "a.npy", f / "b.npy", "--labels-a", f / "words.txt", "--labels-b", f / "words.txt",
                  "--k", "5", "--json", "--control-runs", "2")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert data["n_shared"] == N and data["k"] == 5 and data["cka"] == pytest.approx(1.0, abs=1e-5)
    assert set(data["control"]) == {"cka", "knn_overlap", "procrustes_residual", "acc1", "acc10"}


@pytest.mark.parametrize("args, says", [
    (["--k", "0"], "--k must be an integer from 1 to 1000"),
    (["--k", "200"], "needs at least 2k+2 = 402"),
    (["--min-count", "3"], "give a --corpus too"),
    (["--pairs", "PAIRS_MISSING"], "not in a"),
    (["--pairs", "PAIRS_TWICE"], "more than once"),
    (["--pairs", "PAIRS_FIELDS"], "tab-separated fields"),
])
def test_bad_input_is_one_line_exit_2(run_cli, matrix_files, tmp_path, args, says):
    pairs = {"PAIRS_MISSING": "w1\tw1\nnot-a-word\tw2\n", "PAIRS_TWICE": "w1\tw1\nw1\tw2\n", "PAIRS_FIELDS": "w1 w1\n"}
    args = list(args)
    if args[-1] in pairs:
        (tmp_path / "pairs.tsv").write_text(pairs[args[-1]], encoding="utf-8")
        args[-1] = str(tmp_path / "pairs.tsv")
    f = matrix_files
    res = run_cli("compare", f / "a.npy", f / "b.npy", "--labels-a", f / "words.txt", "--labels-b", f / "words.txt",
                  "--json", *args)
    assert res.code == 2, res
    assert res.err.count("\n") == 1 and res.err.startswith("embedlens: error: ") and says in res.err, res.err
    assert res.out == ""


def test_bad_options_are_refused_before_any_space_is_opened(run_cli, tmp_path):
    res = run_cli("compare", tmp_path / "no-such-model", "glove-50d", "--k", "0")
    assert res.code == 2 and "--k must be" in res.err
    res = run_cli("compare", tmp_path / "no-such-model", "glove-50d", "--labels-a", tmp_path / "w.txt")
    assert res.code == 2 and res.err.count("\n") == 1 and "--labels-a" in res.err, res.err


def test_model_output_spec_and_corpus_filter(tiny_llama_dir, module_cache, tmp_path, run_cli):
    """``MODEL:output`` opens the unembedding; ``min_count`` keeps rare tokens out of the rankings."""
    from embedlens.handles import open_view

    out = open_view(f"{tiny_llama_dir}:output")
    assert out.which == "output" and open_view(str(tiny_llama_dir)).which == "input"
    corpus = tmp_path / "c.txt"
    corpus.write_text("The capital of France is Paris.\nThe list of lists.\n" * 3, encoding="utf-8")
    r = compare(str(tiny_llama_dir), f"{tiny_llama_dir}:output", k=5, corpus=str(corpus), min_count=3, maps=False,
                control_runs=2)
    assert r.match == "identity" and r.n_shared == len(out.space) and r.a["which"] == "input" and r.b["which"] == "output"
    assert r.counts is not None and (r.counts >= 3).sum() == r.eligible().size > 0
    assert (r.counts[r.most_changed(50)] >= 3).all() and (r.counts[r.most_stable(50)] >= 3).all()
    # random weights: input and unembedding are unrelated, so the figures sit at the control's
    for name in ("cka", "knn_overlap"):
        assert abs(r.figures[name] - r.control[name]["mean"]) <= 5 * r.control[name]["std"] + 0.03, name


# the token on B's map: "labelled" once its overlay label is drawn, "outside" when the point lies outside the view
RINGED_B = """([row, token]) => {
  const m = embedlensCompare.maps[1], p = m.project(row), c = m.canvas;
  const labels = Array.from(document.querySelectorAll("#map-b .em-label[data-level='overlay']"), (e) => e.textContent);
  if (labels.includes(token)) return "labelled";
  return p[0] >= 0 && p[1] >= 0 && p[0] <= c.clientWidth && p[1] <= c.clientHeight ? false : "outside";
}"""


@pytest.mark.browser
def test_compare_page_hovers_hostile_tokens_on_both_maps_offline(tiny_gpt2_dir, tiny_llama_dir, module_cache, tmp_path,
                                                                 offline_page):
    r = write_comparison(str(tiny_gpt2_dir), str(tiny_llama_dir), tmp_path / "page", k=5, control_runs=2)
    assert r.match == "identity" and r.coords_a is not None
    html = (tmp_path / "page" / "compare.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2 and "<script>alert" not in html
    page, seen = offline_page(tmp_path / "page" / "compare.html")
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    page.evaluate("() => embedlensCompare.maps.forEach((m) => m.draw(false))")
    labelled = 0
    for token in [*MARKUP_TOKENS, "<|endoftext|>"]:
        display = next(d for d in r.display_a if d.strip("⟪⟫") == token)
        i = r.display_a.index(display)
        box = page.locator("#map-a canvas.em-gl").bounding_box()
        x, y, _ = page.evaluate("(i) => { const m = embedlensCompare.maps[0]; const p = m.project(i);"
                                " m.zoomBy(40, p[0], p[1]); m.draw(false); return m.project(i); }", i)
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_function("(i) => embedlensCompare.maps[0].stats().hovered === i", arg=i, timeout=10_000)
        tip = page.eval_on_selector("#map-a .em-tip-main", "e => e.textContent")
        assert tip == display
        # the same token is ringed and labelled on B's map, and shown in the detail box
        labelled += page.wait_for_function(RINGED_B, arg=[i, display], timeout=10_000).json_value() == "labelled"
        assert page.eval_on_selector("#detail .tok", "e => e.textContent") == display
        page.evaluate("() => embedlensCompare.maps[0].frame()")
    assert labelled >= len(MARKUP_TOKENS) - 1  # only a point outside B's view goes unlabelled
    # the table: filter by a hostile token, click its row, read it back
    page.fill("#filter", "&amp;")
    cells = page.eval_on_selector_all("#tokens tbody tr td:first-child", "els => els.map(e => e.textContent)")
    assert cells and all("&amp;" in c for c in cells)
    page.click("#tokens tbody tr")
    assert page.evaluate("() => embedlensCompare.picked") == r.display_a.index(cells[0])
    page.click("#tokens thead th:nth-child(4)")  # sort by overlap: the order of the numbers shown
    assert page.evaluate("() => document.querySelectorAll('script').length") == 2
    assert page.evaluate("() => document.querySelectorAll('#tokens td script, #detail script').length") == 0
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith(("file://", "data:")) for u in seen.requests), seen.requests


def test_a_tied_model_against_its_own_output_is_said_to_be_one_space(tiny_gpt2_dir, module_cache, run_cli):
    res = run_cli("compare", tiny_gpt2_dir, f"{tiny_gpt2_dir}:output", "--k", "5", "--control-runs", "2", "--json")
    assert res.code == 0, res
    assert "same space" in res.err and json.loads(res.out)["knn_overlap"] == 1.0
