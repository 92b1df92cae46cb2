"""Contextual embeddings: hidden states vs transformers, occurrences vs a regex count, stability, the CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from embedlens.errors import EmbedlensError
from embedlens.reduce.options import ReduceOptions

TEXTS = ["The capital of France is Paris.", "A list", "Embeddings map tokens to vectors; nearby vectors mean similar tokens."]


def _reference_states(lens, text):
    """Every hidden state of ``text`` run alone (no padding, no mask) through the full model."""
    import torch

    ids = torch.tensor([lens.encode(text)])
    with torch.no_grad():
        out = lens.model(input_ids=ids, output_hidden_states=True)
    return torch.stack(out.hidden_states)[:, 0].numpy(), ids[0].numpy()


def test_hidden_states_equal_model_alone_and_batched(tiny_model_dir, cache_dir):
    import embedlens
    from embedlens.contextual import hidden_states

    lens = embedlens.load(str(tiny_model_dir))
    for batch_size in (1, 3):  # 3: one padded batch of texts of very different lengths
        hs = hidden_states(lens, TEXTS, layers="all", keep_special=True, batch_size=batch_size)
        assert hs.layers == list(range(lens.meta["n_layers"] + 1))
        for text, ts in zip(TEXTS, hs.texts, strict=True):
            ref, ids = _reference_states(lens, text)
            assert ts.states.dtype == np.float32 and ts.states.shape == ref.shape
            np.testing.assert_allclose(ts.states, ref, atol=1e-4)
            np.testing.assert_array_equal(ts.ids, ids)
    some = hidden_states(lens, TEXTS, layers="0,-1", batch_size=2)
    for text, ts in zip(TEXTS, some.texts, strict=True):
        ref, ids = _reference_states(lens, text)
        np.testing.assert_allclose(ts.states, ref[[0, -1]][:, ts.positions], atol=1e-4)
        np.testing.assert_array_equal(ts.ids, ids[ts.positions])  # positions map back to the right token ids
        assert [lens.space.labels[i] for i in ts.ids] == ts.tokens
        assert [lens.space.display[i] for i in ts.ids] == ts.display


def test_keep_special_bert_cls_sep(tiny_bert_dir, cache_dir):
    import embedlens
    from embedlens.contextual import hidden_states

    lens = embedlens.load(str(tiny_bert_dir))
    cls, sep = lens.tokenizer.cls_token_id, lens.tokenizer.sep_token_id
    full = lens.encode("A list of lists")
    assert full[0] == cls and full[-1] == sep
    dropped = hidden_states(lens, "A list of lists").texts[0]
    kept = hidden_states(lens, "A list of lists", keep_special=True).texts[0]
    assert cls not in dropped.ids.tolist() and sep not in dropped.ids.tolist()
    assert dropped.positions.tolist() == list(range(1, len(full) - 1))
    assert kept.ids.tolist() == full and kept.positions.tolist() == list(range(len(full)))
    # CLS/SEP were still fed to the model: the kept tokens' states are the same either way.
    np.testing.assert_allclose(kept.states[:, 1:-1], dropped.states, atol=1e-6)
    assert kept.display[0].startswith("⟪")


def test_layer_specs():
    from embedlens.models.running import parse_layers

    assert parse_layers(-1, 30) == [30]
    assert parse_layers("all", 2) == [0, 1, 2]
    assert parse_layers("0,6,-1,6", 12) == [0, 6, 12]
    assert parse_layers([0, -2], 4) == [0, 3]
    for bad in ("31", "-32", "x", ""):
        with pytest.raises(EmbedlensError):
            parse_layers(bad, 30)


def test_bad_texts(tiny_gpt2_dir, cache_dir):
    from embedlens.contextual import hidden_states

    with pytest.raises(EmbedlensError, match="empty"):
        hidden_states(str(tiny_gpt2_dir), ["fine", "  "])
    with pytest.raises(EmbedlensError, match="out of range"):
        hidden_states(str(tiny_gpt2_dir), ["fine"], layers=9)


# -- stability, Procrustes, seeds -------------------------------------------------------------------


def test_stability_exact_on_hand_made_maps():
    from embedlens.contextual.projection import stability_score

    a = np.array([[0, 0], [0.1, 0], [5, 0], [5.1, 0]], dtype=np.float32)  # pairs {0,1} {2,3}
    b = np.array([[0, 0], [5, 0], [0.1, 0], [5.1, 0]], dtype=np.float32)  # pairs {0,2} {1,3}
    rotated = a @ np.array([[0, -1], [1, 0]], dtype=np.float32) * 3 + 7
    assert stability_score([a, rotated], k=1)[0] == 1.0
    assert stability_score([a, b], k=1)[0] == 0.0
    score, per_point = stability_score([a, a, b], k=1)  # pairs: (a,a)=1, (a,b)=0, (a,b)=0
    assert score == pytest.approx(1 / 3) and np.allclose(per_point, 1 / 3)


def test_stability_matches_brute_force_and_is_low_for_random_maps():
    from embedlens.contextual.projection import stability_score

    rng = np.random.default_rng(0)
    maps = [rng.normal(size=(60, 2)) for _ in range(3)]
    score, per_point = stability_score(maps, k=5)

    def knn(m):
        d = ((m[:, None] - m[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(d[i])[:5].tolist()) for i in range(len(m))]

    nb = [knn(m) for m in maps]
    expect = np.mean([[len(x & y) / len(x | y) for x, y in zip(nb[i], nb[j], strict=True)]
                      for i, j in ((0, 1), (0, 2), (1, 2))], axis=0)
    np.testing.assert_allclose(per_point, expect)
    assert score < 0.2  # unrelated maps agree about as often as chance


def test_pca_runs_are_perfectly_stable_tsne_same_seed_identical():
    from embedlens.contextual import project

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(20, 16)), rng.normal(size=(20, 16)) + 4]).astype(np.float32)
    pca = project(x, ReduceOptions("pca"), runs=3)
    assert pca.stability == 1.0 and np.all(pca.point_stability == 1.0)
    t1 = project(x, ReduceOptions("tsne", seed=3))
    t2 = project(x, ReduceOptions("tsne", seed=3))
    np.testing.assert_array_equal(t1.coords, t2.coords)
    assert t1.params["perplexity"] == pytest.approx(13.0)  # min(30, (40 - 1) / 3), set automatically
    assert any("perplexity not given" in n for n in t1.notes)


def test_procrustes_recovers_rotation_scale_shift():
    from embedlens.contextual import procrustes

    rng = np.random.default_rng(2)
    y = rng.normal(size=(30, 2))
    c, s = np.cos(0.7), np.sin(0.7)
    target = y @ np.array([[c, -s], [s, c]]) * 2.5 + [3, -1]
    fit = procrustes(y, target, scale=True)
    np.testing.assert_allclose(fit.apply(y), target, atol=1e-5)
    assert fit.disparity < 1e-10 and fit.scale == pytest.approx(2.5)


# -- corpus occurrences ------------------------------------------------------------------------------


@pytest.fixture
def bank_corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("The bank of the river. Bank robbery! banks, riverbank and bank.\n" * 3)
    (folder / "b.txt").write_text("No money here. The BANK list; a bank-holiday, the (bank) and bankrupt.\n")
    (folder / "c.txt").write_text("Nothing to see.\n")
    return folder


def test_occurrences_match_regex_count_and_model(tiny_model_dir, cache_dir, bank_corpus):
    import torch

    import embedlens
    from embedlens.contextual import occurrences

    expected = sum(len(re.findall(r"\bbank\b", p.read_text(), re.IGNORECASE)) for p in sorted(bank_corpus.glob("*.txt")))
    lens = embedlens.load(str(tiny_model_dir))
    occ = occurrences(lens, bank_corpus, "bank", layers="all", window=30, batch_size=4, progress=False)
    assert len(occ) == occ.n_found == expected == 12
    assert set(occ.forms) == {"bank", "Bank", "BANK"}
    assert occ.vectors.shape == (expected, lens.meta["n_layers"] + 1, lens.meta["d_model"])
    for i, snippet in enumerate(occ.snippets):
        a, b = occ.snippet_spans[i]
        assert snippet[a:b] == occ.forms[i]
    # The vector of an occurrence is the mean state of the word's tokens in its window, run alone.
    from embedlens.contextual.occurrences import find_occurrences

    found, _ = find_occurrences(embedlens.corpus.open_corpus(str(bank_corpus)), "bank", window=30,
                                causal=bool(lens.meta["causal"]))
    for i in (0, 5, 10):
        enc = lens.fast_tokenizer.encode(found[i].model_text)
        off = np.asarray(enc.offsets)
        ws, we = found[i].word_span
        cover = np.flatnonzero((off[:, 0] < we) & (off[:, 1] > ws) & (off[:, 1] > off[:, 0]) & ~np.asarray(enc.special_tokens_mask, bool))
        with torch.no_grad():
            hs = torch.stack(lens.model(input_ids=torch.tensor([enc.ids]), output_hidden_states=True).hidden_states)
        np.testing.assert_allclose(occ.vectors[i], hs[:, 0, cover].mean(1).numpy(), atol=1e-4)
    case = occurrences(lens, bank_corpus, "bank", ignore_case=False, progress=False)
    assert case.n_found == sum(len(re.findall(r"\bbank\b", p.read_text())) for p in bank_corpus.glob("*.txt"))
    cut = occurrences(lens, bank_corpus, "bank", max_occurrences=4, window=30, layers="all", progress=False)
    assert len(cut) == 4 and cut.n_found == expected and any("kept a sample of 4" in n for n in cut.notes)
    # a seeded sample, in corpus order: the same seed keeps the same occurrences with the same states
    keys = [(d, int(a)) for d, a in zip(occ.docs, occ.spans[:, 0], strict=True)]
    picked = [keys.index((d, int(a))) for d, a in zip(cut.docs, cut.spans[:, 0], strict=True)]
    assert picked == sorted(picked)
    np.testing.assert_allclose(cut.vectors, occ.vectors[picked], atol=1e-5)
    with pytest.raises(EmbedlensError, match="never occurs"):
        occurrences(lens, bank_corpus, "vault", progress=False)


# -- CLI and outputs ---------------------------------------------------------------------------------


def _read_states(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


def test_cli_layer_all_outputs(tiny_llama_dir, cache_dir, run_cli, tmp_path):
    import pyarrow.parquet as pq

    import embedlens

    out = tmp_path / "ctx"
    texts = ["The capital of France is Paris.", "The capital of Italy is Rome."]
    res = run_cli("context", *texts, "-m", tiny_llama_dir, "--layer", "all", "--method", "pca", "--runs", "2",
                  "--focus", "capital", "--out", out)
    assert res.code == 0, res
    assert {p.name for p in out.iterdir()} == {"context.html", "context.png", "points.parquet", "states.safetensors",
                                                "manifest.json"}
    lens = embedlens.load(str(tiny_llama_dir))
    n_states = lens.meta["n_layers"] + 1
    states = _read_states(out / "states.safetensors")
    assert set(states) == {"layers", "text_0", "text_0_ids", "text_0_positions", "text_1", "text_1_ids", "text_1_positions"}
    for i, t in enumerate(texts):
        ids = lens.encode(t)
        assert states[f"text_{i}"].shape == (n_states, len(ids), lens.meta["d_model"])
        assert states[f"text_{i}_ids"].tolist() == ids
        ref, _ = _reference_states(lens, t)
        np.testing.assert_allclose(states[f"text_{i}"], ref, atol=1e-4)
    pts = pq.read_table(out / "points.parquet").to_pydict()
    n_tok = sum(len(lens.encode(t)) for t in texts)
    assert len(pts["x"]) == n_states * n_tok
    assert sorted(set(pts["layer"])) == list(range(n_states))
    assert {"text", "position", "token_id", "token", "display", "layer", "model", "x", "y", "stability"} <= set(pts)
    focus_tokens = {pts["display"][i] for i, f in enumerate(pts["focus"]) if f}
    assert focus_tokens and all(t.strip("␣") in "capital" for t in focus_tokens)
    m = json.loads((out / "manifest.json").read_text())
    model = m["models"][0]
    assert model["projection"]["stability_score"] == 1.0 and model["projection"]["runs"] == 2
    assert model["projection"]["params"]["method"] == "pca" and "content_hash" in model
    assert "stacked" in m["projection_scope"] and m["versions"]["numpy"]
    html = (out / "context.html").read_text()
    assert "Plotly.newPlot" in html and 'src="https://cdn' not in html  # self-contained, offline


def test_figure_slider_trajectories_and_escaping(tiny_gpt2_dir, cache_dir):
    from embedlens.contextual import context_map

    cmap = context_map(str(tiny_gpt2_dir), ["<script>alert(1)</script> and </div>", "a <br> list"],
                       layers="all", reduce=ReduceOptions("pca"), focus="list")
    fig = cmap.figure().to_dict()
    n_states = len(cmap.panels[0].layers)
    assert len(fig["layout"]["sliders"][0]["steps"]) == n_states
    lines = [t for t in fig["data"] if t.get("mode") == "lines"]
    assert len(lines) == 2  # one path trace per text
    texts = [s for t in fig["data"] for s in (t.get("text") or [])] + [s for t in fig["data"] for s in (t.get("hovertext") or [])]
    assert texts and not any("<script>" in s or "</div>" in s for s in texts)
    assert any("&lt;script&gt;" in s for s in texts)
    # each slot's hover names its own layer, and each point's token and position on every layer
    from embedlens.render.context import _snippet
    from embedlens.render.offline import html_text

    p = cmap.panels[0]
    t, n = p.table, p.n_per_layer
    slots = fig["layout"]["sliders"][0]["steps"]
    assert sum(1 for tr in fig["data"] if tr.get("hovertext")) == n_states * 2  # one marker trace per text and layer
    for step, layer in zip(slots, p.layers, strict=True):
        shown = [tr for tr, on in zip(fig["data"], step["args"][0]["visible"], strict=True) if on and tr.get("hovertext")]
        assert len(shown) == 2
        for h in (h for tr in shown for h in tr["hovertext"]):
            assert int(h.split(" · layer ", 1)[1].split(" · ", 1)[0]) == layer, h
            rows = [r for r in range(len(t["layer"])) if int(t["layer"][r]) == layer
                    and h.startswith(f"<b>{html_text(t['display'][r])}</b>")
                    and f"position {int(t['position'][r])} " in h and h.endswith(
                        _snippet(t["snippet"][r], int(t["snippet_start"][r]), int(t["snippet_end"][r])))]
            assert len(rows) == 1, h
    assert n == len(t["layer"]) // n_states


def test_cli_two_models_aligned_and_prefixed(tiny_gpt2_dir, tiny_bert_dir, cache_dir, run_cli, tmp_path):
    out = tmp_path / "two"
    res = run_cli("context", "The capital of France is Paris.", "The quick brown fox jumps over the lazy dog.",
                  "-m", tiny_gpt2_dir, "-m", tiny_bert_dir, "--method", "pca", "--out", out, "--no-png")
    assert res.code == 0, res
    m = json.loads((out / "manifest.json").read_text())
    a, b = m["models"]
    assert a["alignment"]["reference"] and b["alignment"]["aligned"] and b["alignment"]["n_matched"] >= 3
    keys = set(_read_states(out / "states.safetensors"))
    assert {f"{a['alias']}/text_0", f"{b['alias']}/text_1_ids", f"{b['alias']}/layers"} <= keys


@pytest.mark.slow
def test_cli_corpus_occurrences(tiny_gpt2_dir, cache_dir, run_cli, tmp_path, bank_corpus):
    import pyarrow.parquet as pq

    out = tmp_path / "occ"
    res = run_cli("context", "--corpus", bank_corpus, "--focus", "bank", "-m", tiny_gpt2_dir, "--layer", "0,-1",
                  "--method", "tsne", "--runs", "2", "--out", out, "--no-html")
    assert res.code == 0, res
    states = _read_states(out / "states.safetensors")
    assert states["occurrences"].shape[:2] == (12, 2) and states["occurrences_spans"].shape == (12, 2)
    pts = pq.read_table(out / "points.parquet").to_pydict()
    assert len(pts["x"]) == 24 and all("bank" in s.lower() for s in pts["snippet"])
    m = json.loads((out / "manifest.json").read_text())
    proj = m["models"][0]["projection"]
    assert 0.0 <= proj["stability_score"] < 1.0 and proj["params"]["perplexity"] == pytest.approx(23 / 3)
    assert any("perplexity not given" in n for n in m["notes"])


@pytest.mark.parametrize("args, message", [
    (["", "--method", "pca"], "empty"),
    (["some words here", "--layer", "99", "--method", "pca"], "out of range"),
    (["--corpus", "CORPUS", "--focus", "vault", "--method", "pca"], "never occurs"),
    (["--method", "pca"], "TEXT"),
    (["text", "--corpus", "CORPUS", "--focus", "bank"], "not both"),
])
def test_cli_bad_input_exit_2(tiny_gpt2_dir, cache_dir, run_cli, tmp_path, bank_corpus, args, message):
    args = [str(bank_corpus) if a == "CORPUS" else a for a in args]
    res = run_cli("context", *args, "-m", tiny_gpt2_dir, "--out", tmp_path / "bad")
    assert res.code == 2, res
    errors = [line for line in res.err.strip().splitlines() if not line.startswith("embedlens: note:")]
    assert len(errors) == 1 and errors[0].startswith("embedlens: error:") and message in errors[0]


def test_unalignable_models_drawn_unaligned_then_exit_2(tiny_gpt2_dir, tiny_bert_dir, cache_dir, run_cli, tmp_path):
    out = tmp_path / "un"
    # Made-up words: the tiny byte-level BPE spells them letter by letter, WordPiece makes each one [UNK].
    res = run_cli("context", "Qzxwvkj Qzxwvkj Qzxwvkj Qzxwvkj", "-m", tiny_gpt2_dir, "-m", tiny_bert_dir, "--method", "pca",
                  "--out", out, "--no-png")
    assert res.code == 2, res
    assert "cannot align" in res.err and "unaligned panels" in res.err
    m = json.loads((out / "manifest.json").read_text())
    assert m["models"][1]["alignment"]["aligned"] is False and (out / "context.html").exists()


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_hidden_states_equal_model(smollm2):
    import torch

    from embedlens.contextual import hidden_states

    texts = ["The river bank was muddy.", "She robbed the bank on Friday and fled north."]
    hs = hidden_states(smollm2, texts, layers="0,15,-1", batch_size=2)
    assert hs.layers == [0, 15, 30] and hs.d_model == 576
    for text, ts in zip(texts, hs.texts, strict=True):
        ids = torch.tensor([smollm2.encode(text)])
        with torch.no_grad():
            ref = smollm2.model(input_ids=ids, output_hidden_states=True).hidden_states
        want = torch.stack([ref[0], ref[15], ref[30]])[:, 0].numpy()
        # batched (padded) vs single-sequence float32 matmuls round differently; SmolLM2's residual
        # stream holds values near 900 at some positions, so the tolerance is relative there
        np.testing.assert_allclose(ts.states, want[:, ts.positions], rtol=1e-5, atol=1e-4)
        assert ts.ids.tolist() == ids[0, ts.positions].tolist()


@pytest.mark.browser
def test_context_html_renders_offline_in_chromium(tiny_gpt2_dir, cache_dir, run_cli, tmp_path, offline_page):
    out = tmp_path / "page"
    res = run_cli("context", "<b>bold</b> capital", "The capital of France", "-m", tiny_gpt2_dir, "--layer", "all",
                  "--method", "pca", "--focus", "capital", "--out", out, "--no-png")
    assert res.code == 0, res
    page, seen = offline_page(out / "context.html")
    page.wait_for_function("document.querySelector('.js-plotly-plot') && document.querySelector('.js-plotly-plot').data")
    n_traces = page.evaluate("document.querySelector('.js-plotly-plot').data.length")
    legend = page.evaluate("Array.from(document.querySelectorAll('.legendtext')).map(e => e.textContent)")
    assert not seen.errors and not seen.dialogs
    assert all(u.startswith(("file:", "data:", "blob:")) for u in seen.requests), seen.requests
    assert n_traces > 3
    assert any("<b>bold</b>" in t for t in legend)  # shown literally, not as markup


def test_two_models_coordinates_are_aligned_on_shared_tokens(tiny_gpt2_dir, tiny_llama_dir, cache_dir):
    """The second model's map is moved onto the first: refitting a similarity transform afterwards finds none."""
    from scipy.linalg import orthogonal_procrustes

    from embedlens.contextual import context_map

    texts = ["The capital of France is Paris.", "The quick brown fox jumps over the lazy dog."]
    cmap = context_map([str(tiny_gpt2_dir), str(tiny_llama_dir)], texts, layers="-1", reduce=ReduceOptions("pca"))
    ref, other = cmap.panels

    def keyed(p):  # a point is the same token of the same text (same character span) at the same layer slot
        t, out = p.table, {}
        for r, key in enumerate(zip(t["text"].tolist(), t["key_start"].tolist(), t["key_end"].tolist(),
                                    t["slot"].tolist(), strict=True)):
            out.setdefault(key, r)
        return out

    kr, ko = keyed(ref), keyed(other)
    shared = sorted(set(kr) & set(ko))
    assert len(shared) >= 10 and other.alignment["aligned"]
    a = ref.coords[[kr[k] for k in shared]].astype(np.float64)
    b = other.coords[[ko[k] for k in shared]].astype(np.float64)
    a0, b0 = a - a.mean(0), b - b.mean(0)
    rotation, sv = orthogonal_procrustes(b0, a0)
    scale = sv.sum() / (b0 ** 2).sum()
    np.testing.assert_allclose(rotation, np.eye(a.shape[1]), atol=1e-4)
    assert scale == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(a.mean(0), b.mean(0), atol=1e-4 * (1 + np.abs(a).max()))
    residual = np.linalg.norm(a - b) / np.linalg.norm(a0)
    assert residual < 1.0  # a similarity fit on random models is imperfect but better than no fit (1.0 = centred)
