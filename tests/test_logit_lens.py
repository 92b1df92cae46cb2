"""The logit lens: every layer and position vs an independent computation, ranks vs brute force, outputs, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedlens.errors import EmbedlensError
from embedlens.logitlens import logit_lens
from embedlens.reduce.options import ReduceOptions

HOSTILE = 'The capital <script>alert(1)</script> of "quoted" it\'s &amp; a&b <br> is'
K = 5


@pytest.fixture(scope="module")
def tiny_gemma3_dir(tmp_path_factory, tiny_gpt2_dir):
    """A tiny Gemma 3 (sliding + global layers, sqrt(d) input scale, final logit soft-capping) saved as a folder."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    folder = tmp_path_factory.mktemp("tiny-gemma3")
    tok = AutoTokenizer.from_pretrained(str(tiny_gpt2_dir))
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                           sliding_window=4, final_logit_softcapping=3.0, bos_token_id=0, eos_token_id=0,
                           pad_token_id=0, layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # random init is too flat for top-k orders to mean anything; spread the logits
        model.model.embed_tokens.weight.normal_(0, 0.25)
    assert sum(p.numel() for p in model.parameters()) < 100_000
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def lenses(module_cache, tiny_gpt2_dir, tiny_llama_dir, tiny_gemma3_dir):
    import embedlens

    return {kind: embedlens.load(str(path)) for kind, path in
            (("gpt2", tiny_gpt2_dir), ("llama", tiny_llama_dir), ("gemma3", tiny_gemma3_dir))}


def independent_logits(model, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Plainly: transformers' hidden states, the final norm, the head (and Gemma's soft-cap) per layer.

    Returns (logits of shape (n_layers + 1, n, vocab), the model's own logits (n, vocab)). The last hidden
    state transformers returns is already normed, so layer n_layers is the head alone."""
    base = model.base_model
    norm = base.ln_f if hasattr(base, "ln_f") else base.norm
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)
    with torch.no_grad():
        out = model(input_ids=torch.as_tensor(ids)[None], output_hidden_states=True)
        n = len(out.hidden_states) - 1
        rows = []
        for layer, h in enumerate(out.hidden_states):
            logits = head(h[0] if layer == n else norm(h[0]))
            if cap:
                logits = torch.tanh(logits / cap) * cap
            rows.append(logits)
    return torch.stack(rows).float(), out.logits[0].float()


def assert_same_top_k(ids: np.ndarray, probs: np.ndarray, logits: torch.Tensor) -> None:
    """Our top-k ids are the reference's top-k (exactly, except where two logits tie within 1e-6)."""
    ref = torch.softmax(logits.double(), dim=-1)
    top = torch.topk(logits, ids.shape[-1] + 1, dim=-1)
    ties = (top.values[..., :-1] - top.values[..., 1:]).abs().min(dim=-1).values < 1e-6
    clear = ~ties.numpy()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(ids[clear], top.indices[..., :-1].numpy()[clear])
    np.testing.assert_allclose(probs, np.take_along_axis(ref.numpy(), ids, axis=-1), atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma3"])
def test_every_layer_and_position_matches_an_independent_computation(lenses, kind):
    lens = lenses[kind]
    r = logit_lens(lens, HOSTILE, top_k=K, dtype="float32")
    n = lens.meta["n_layers"]
    assert r.layers == list(range(n + 1)) and r.n_layers == n
    assert r.top_ids.shape == (n + 1, len(r.token_ids), K)
    logits, own = independent_logits(lens.model, r.token_ids)
    assert_same_top_k(r.top_ids, r.top_probs, logits)
    # the last layer IS the model's own next-token distribution
    torch.testing.assert_close(logits[-1], own, rtol=1e-5, atol=1e-5)
    assert_same_top_k(r.top_ids[-1], r.top_probs[-1], own)
    # the rank of the text's next token, by brute force (1 + logits strictly above it)
    nxt = torch.as_tensor(r.token_ids[1:])
    target = logits[:, :-1].gather(2, nxt[None, :, None].expand(n + 1, -1, 1))
    brute = (logits[:, :-1] > target).sum(-1) + 1
    np.testing.assert_array_equal(r.target_rank[:, :-1], brute.numpy())
    assert (r.target_rank[:, -1] == 0).all()
    order = torch.argsort(logits[2, 3], descending=True)  # the same rank read off a full sort
    assert int((order == int(r.token_ids[4])).nonzero()[0, 0]) + 1 == r.target_rank[2, 3]
    # the displayed strings are the vocabulary's readable forms
    assert r.top_display[1, 2, 0] == lens.space.display[int(r.top_ids[1, 2, 0])]
    assert "<script>" in r.display and '"quoted"' in r.display and "&amp;" in r.display


def test_gemma3_scales_inputs_and_soft_caps(lenses):
    from embedlens.logitlens import residual_states

    lens = lenses["gemma3"]
    model = lens.model
    ids = np.asarray(lens.encode("The capital of France is"))
    states = residual_states(model, [ids], [0, 3])
    expected0 = model.model.embed_tokens.weight[torch.as_tensor(ids)].detach()
    torch.testing.assert_close(states[0, 0], expected0 * torch.tensor(32 ** 0.5, dtype=expected0.dtype))
    r = logit_lens(lens, "The capital of France is", dtype="float32")
    # the model's own logits are soft-capped (|logit| < 3); the decode caps them the same way
    _, own = independent_logits(model, ids)
    with torch.no_grad():
        uncapped = model.get_output_embeddings()(model.model.norm(states[1, 0]))
    assert float(own.abs().max()) < 3.0 and float(uncapped.abs().max()) > float(own.abs().max()) + 0.05
    assert_same_top_k(r.top_ids[-1], r.top_probs[-1], own)


def test_subsets_of_layers_and_positions(lenses):
    lens = lenses["llama"]
    full = logit_lens(lens, HOSTILE, dtype="float32")
    part = logit_lens(lens, HOSTILE, layers="0,-1", positions="0,-1", top_k=2, dtype="float32")
    assert part.layers == [0, 3]
    np.testing.assert_array_equal(part.positions, [0, len(full.token_ids) - 1])
    np.testing.assert_array_equal(part.top_ids, full.top_ids[[0, 3]][:, [0, -1], :2])
    np.testing.assert_array_equal(part.target_rank, full.target_rank[[0, 3]][:, [0, -1]])
    last = logit_lens(lens, HOSTILE, positions="last", layers=-1, dtype="float32")
    assert last.top_ids.shape == (1, 1, K)
    assert last.schema()["positions"] == [len(full.token_ids) - 1]
    assert "positions" not in full.schema()


def test_schema_and_round_trip(lenses):
    from embedlens.logitlens import LogitLensResult

    r = logit_lens(lenses["gpt2"], HOSTILE, top_k=3, dtype="float32")
    s = r.schema()
    assert list(s) == ["tokens", "display", "layers", "top_ids", "top_probs", "target_rank"]
    assert s["target_rank"][0][-1] is None and all(isinstance(v, int) for v in s["target_rank"][0][:-1])
    back = LogitLensResult.from_dict(json.loads(json.dumps(r.to_dict())))
    np.testing.assert_array_equal(back.top_ids, r.top_ids)
    np.testing.assert_array_equal(back.target_rank, r.target_rank)
    np.testing.assert_allclose(back.top_probs, r.top_probs, rtol=1e-7)
    assert back.top_display.tolist() == r.top_display.tolist() and back.display == r.display


def test_one_decode_serves_the_grid_and_the_lens(lenses, monkeypatch):
    """The grid's layer_idx = n_layers and the logit lens go through BlockRunner.decode, and agree."""
    from embedlens.grid import EmbeddingGridVisualizer
    from embedlens.logitlens import residual_states
    from embedlens.models.forward import BlockRunner

    lens = lenses["llama"]
    calls = []
    real = BlockRunner.decode
    monkeypatch.setattr(BlockRunner, "decode", lambda self, h, **kw: calls.append(h.shape) or real(self, h, **kw))
    r = logit_lens(lens, HOSTILE, dtype="float32")
    assert calls, "the logit lens did not use BlockRunner.decode"
    n = r.n_layers
    pre = residual_states(lens.model, [r.token_ids], [n])[0, 0]  # the last block's output, before the norm
    calls.clear()
    viz = EmbeddingGridVisualizer(lens)
    ids, probs = viz.predict_tokens_for_grid(pre, layer_idx=n)
    assert calls, "the grid did not use BlockRunner.decode"
    np.testing.assert_array_equal(viz.top5_ids_, r.top_ids[-1])
    np.testing.assert_allclose(viz.top5_probs_, r.top_probs[-1], rtol=1e-5)


def test_bad_inputs(lenses):
    from embedlens.logitlens import logit_lens, parse_positions

    lens = lenses["llama"]
    for kwargs, message in [({"layers": "9"}, "out of range"), ({"top_k": 0}, "top-k"),
                            ({"positions": "40"}, "out of range"), ({"max_tokens": 0}, "positive"),
                            ({"device": "tpu"}, "unknown device"), ({"dtype": "int8"}, "unknown dtype")]:
        with pytest.raises(EmbedlensError, match=message):
            logit_lens(lens, "a b c", **kwargs)
    with pytest.raises(EmbedlensError, match="empty"):
        logit_lens(lens, "   ")
    with pytest.raises(EmbedlensError, match="reads at most 64"):
        logit_lens(lens, "word " * 80)
    r = logit_lens(lens, "word " * 80, max_tokens=10, dtype="float32")
    assert len(r.token_ids) == 10 and "kept the first 10" in r.notes[0]
    assert parse_positions("last", 4).tolist() == [3] and parse_positions("-2,0", 4).tolist() == [2, 0]


def test_rank_curve_equals_the_mean_of_single_runs(lenses, tmp_path):
    from embedlens.logitlens import rank_curve, write_rank_curves

    lens = lenses["gpt2"]
    texts = ["The capital of France is Paris.", "a list of lists", "x", HOSTILE, "The quick brown fox jumps"]
    curve = rank_curve(lens, texts, batch_size=2, dtype="float32")
    singles = [logit_lens(lens, t, dtype="float32").target_rank[:, :-1] for t in texts]
    ranks = np.concatenate(singles, axis=1).astype(np.float64)
    np.testing.assert_allclose(curve.mean_rank, ranks.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(curve.median_rank, np.median(ranks, axis=1), rtol=1e-6)
    np.testing.assert_allclose(curve.top1, (ranks == 1).mean(axis=1), rtol=1e-6)
    assert curve.n_positions == ranks.shape[1] and curve.n_prompts == 5
    np.testing.assert_allclose(curve.prompt_mean_rank[0], singles[0].mean(axis=1), rtol=1e-6)
    manifest = write_rank_curves([curve], tmp_path)
    lines = (tmp_path / "logit_lens_ranks.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["model", "layer", "depth"] and len(lines) == 1 + len(curve.layers)
    assert (tmp_path / "logit_lens_ranks.png").stat().st_size > 1000
    assert manifest["models"][0]["n_prompts"] == 5 and "versions" in manifest


def test_outputs_and_compare_by_depth(lenses, tmp_path):
    from embedlens.logitlens import compare, write_logit_lens

    results = compare([lenses["gpt2"], lenses["llama"]], HOSTILE, dtype="float32")
    assert [r.n_layers for r in results] == [2, 3]
    fig = results[0].figure()
    assert fig.to_dict()["data"][0]["type"] == "heatmap"
    from embedlens.render.logit_lens import logit_lens_figure

    both = logit_lens_figure(results, color="rank").to_dict()
    assert [tr["y"] for tr in both["data"]] == [[0.0, 0.5, 1.0], [0.0, 0.333333, 0.666667, 1.0]]
    manifest = write_logit_lens(results, tmp_path, color="rank")
    assert set(manifest["files"]) == {"logit_lens.html", "logit_lens.png", "logit_lens.json", "manifest.json"}
    data = json.loads((tmp_path / "logit_lens.json").read_text())
    assert [m["model"]["name"] for m in data["models"]] == [r.name for r in results]
    assert manifest["settings"]["color"] == "rank" and manifest["models"][1]["n_layers"] == 3


# -- CLI -------------------------------------------------------------------------------------------------------------

def test_cli_json_schema_and_files(lenses, tiny_llama_dir, tmp_path, run_cli):
    res = run_cli("logit-lens", HOSTILE, "-m", str(tiny_llama_dir), "--dtype", "float32", "--top-k", "3",
                  "--json", "--out", str(tmp_path / "o"))
    assert res.code == 0, res
    data = json.loads(res.out)
    assert list(data) == ["tokens", "display", "layers", "top_ids", "top_probs", "target_rank"]
    r = logit_lens(lenses["llama"], HOSTILE, top_k=3, dtype="float32")
    assert data["top_ids"] == r.top_ids.tolist() and data["tokens"] == r.token_ids.tolist()
    assert data["target_rank"][1][-1] is None
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["logit_lens.html", "logit_lens.json",
                                                                  "logit_lens.png", "manifest.json"]
    res = run_cli("logit-lens", "a b [/b]", "-m", str(tiny_llama_dir), "--dtype", "float32", "--out", str(tmp_path / "t"))
    assert res.code == 0 and "([/b])" in res.out, res  # rich prints token strings literally, never as markup


def test_cli_text_file(lenses, tiny_gpt2_dir, tiny_llama_dir, tmp_path, run_cli):
    f = tmp_path / "prompts.txt"
    f.write_text("The capital of France is Paris.\n\n a list of lists\n" + HOSTILE + "\n", encoding="utf-8")
    res = run_cli("logit-lens", "--text-file", str(f), "-m", str(tiny_gpt2_dir), "-m", str(tiny_llama_dir),
                  "--dtype", "float32", "--json", "--out", str(tmp_path / "c"))
    assert res.code == 0, res
    data = json.loads(res.out)
    assert [m["n_prompts"] for m in data["models"]] == [3, 3]
    rows = (tmp_path / "c" / "logit_lens_ranks.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 + 4


@pytest.mark.parametrize("args, message", [
    (["   "], "the text is empty"),
    (["a b", "--layers", "7"], "layer 7 is out of range"),
    (["a b", "--layers", "x"], "not a layer list"),
    (["a b", "--positions", "9"], "position 9 is out of range"),
    (["a b", "--top-k", "0"], "top-k must be"),
    (["word " * 80], "reads at most 64"),
    (["a b", "--max-tokens", "100"], "above the context length"),
    (["a b", "--device", "tpu"], "unknown device"),
    ([], "give a TEXT argument"),
    (["a", "--text-file", "nope.txt"], "not both"),
])
def test_cli_bad_input_exits_2_before_weights_load(lenses, tiny_llama_dir, tmp_path, run_cli, monkeypatch, args,
                                                   message):
    import embedlens.models.loading as loading

    monkeypatch.setenv("EMBEDLENS_CACHE", str(lenses["llama"].entry.folder.parents[1]))
    monkeypatch.setattr(loading, "load_weights", lambda *a, **k: pytest.fail("weights were read"))
    res = run_cli("logit-lens", *args, "-m", str(tiny_llama_dir), "--out", str(tmp_path / "o"))
    assert res.code == 2, res
    assert res.err.startswith("embedlens: error: ") and message in res.err and res.err.count("\n") == 1, res.err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_an_encoder_before_weights_load(module_cache, tiny_bert_dir, tmp_path, run_cli, monkeypatch):
    import embedlens
    import embedlens.models.loading as loading

    embedlens.load(str(tiny_bert_dir))  # the cache entry (its extraction reads the weights once)
    monkeypatch.setattr(loading, "load_weights", lambda *a, **k: pytest.fail("weights were read"))
    res = run_cli("logit-lens", "hello world", "-m", str(tiny_bert_dir), "--out", str(tmp_path / "o"))
    assert res.code == 2 and "encoder-only model without an LM head" in res.err, res


# -- the real model -------------------------------------------------------------------------------------------------

@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_every_layer_and_position(smollm2):
    r = logit_lens(smollm2, "The capital of France is", dtype="float32")
    assert r.layers == list(range(31)) and r.top_ids.shape[:2] == (31, len(r.token_ids))
    assert r.top_display[-1, -1, 0] == "␣Paris"
    logits, own = independent_logits(smollm2.model, r.token_ids)
    assert_same_top_k(r.top_ids, r.top_probs, logits)
    torch.testing.assert_close(logits[-1], own, rtol=1e-4, atol=1e-4)
    nxt = torch.as_tensor(r.token_ids[1:])
    target = logits[:, :-1].gather(2, nxt[None, :, None].expand(31, -1, 1))
    np.testing.assert_array_equal(r.target_rank[:, :-1], ((logits[:, :-1] > target).sum(-1) + 1).numpy())
    assert r.target_rank[-1, :-1].min() >= 1 and r.target_rank[-1, 3] <= 20  # " France" follows " capital of"


# -- browser ----------------------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_html_shows_hostile_tokens_literally_in_chromium(lenses, tmp_path, offline_page):
    from embedlens.logitlens import write_logit_lens

    r = logit_lens(lenses["gpt2"], HOSTILE, top_k=K, dtype="float32")
    hostile = ["<script>alert(1)</script>", '"quoted"', "it's", "&amp;", "<br>"]
    j = r.display.index("<script>")
    r.top_display[1, j] = hostile  # layer 1 at the <script> position: every hostile string in the hover
    write_logit_lens([r], tmp_path, png=False)
    page, seen = offline_page(tmp_path / "logit_lens.html")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return g && g._fullData && g.querySelector('.main-svg'); }", timeout=30_000)
    pos = page.evaluate(
        f"""() => {{ const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
        const r = g.getBoundingClientRect();
        return [r.left + L._size.l + L.xaxis.l2p({j}), r.top + L._size.t + L.yaxis.l2p(1)]; }}""")
    page.mouse.move(1, 1)
    page.mouse.move(pos[0], pos[1])
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.includes('position')")
    shown = page.evaluate("() => document.querySelector('.hoverlayer').textContent")
    for token in hostile:
        assert token in shown, (token, shown)
    assert f"layer 1 · position {j}: <script>" in shown
    tags = page.evaluate("() => Array.from(document.querySelectorAll('.hoverlayer *'), e => e.tagName)")
    assert set(tags) <= {"g", "path", "text", "tspan", "rect"}, tags
    ticks = page.evaluate("() => Array.from(document.querySelectorAll('.xtick text'), e => e.textContent)")
    for token in ("<script>", '"quoted"', "it's", "&amp;", "a&b", "<br>"):
        assert token in ticks, (token, ticks)
    html = (tmp_path / "logit_lens.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "<br>alert" not in html  # the data never holds live markup
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests


# -- the context map's hovers: the same decode ------------------------------------------------------------------------

def test_context_map_hovers_carry_the_logit_lens_top3(lenses):
    from embedlens.contextual import context_map
    from embedlens.render.context import hover_texts

    lens = lenses["llama"]
    texts = [HOSTILE, "The capital of France is Paris."]
    cmap = context_map(lens, texts, layers="all", reduce=ReduceOptions("pca"), progress=False)
    (panel,) = cmap.panels
    t = panel.table
    assert t["decoded_ids"].shape == (panel.n_points, 3)
    n = panel.n_per_layer
    for i, text in enumerate(texts):  # every kept token at every layer = the logit lens of that text
        r = logit_lens(lens, text, top_k=3)
        rows = np.flatnonzero(t["text"][:n] == i)
        for slot, layer in enumerate(panel.layers):
            got = t["decoded_ids"][slot * n + rows]
            np.testing.assert_array_equal(got, r.top_ids[r.layers.index(layer)][t["position"][rows]])
    hover = hover_texts(cmap, panel, np.arange(panel.n_points))
    j = int(np.flatnonzero(t["decoded_display"][:, 0] != "")[0])
    assert "<br>logit lens: " in hover[j]
    from embedlens.render.offline import plotly_text

    assert plotly_text(t["decoded_display"][j, 0]) in hover[j]


def test_many_prompts_are_batched_within_a_token_budget():
    from embedlens.logitlens.compute import BATCH_TOKENS, _batches

    lengths = [5] * 100 + [BATCH_TOKENS // 8] * 20 + [BATCH_TOKENS * 2]
    order = np.argsort(lengths, kind="stable")
    batches = _batches(order, lengths, 64)
    assert np.array_equal(np.concatenate(batches), order)
    assert [len(b) for b in batches] == [64, 36, 8, 8, 4, 1]  # the 5-token ones, then 8 x 512, then the long one
    assert all(len(b) * max(lengths[i] for i in b) <= BATCH_TOKENS or len(b) == 1 for b in batches)


@pytest.mark.browser
@pytest.mark.slow
def test_context_map_lens_hover_in_chromium(lenses, tmp_path, offline_page):
    from embedlens.contextual import context_map
    from embedlens.render.offline import write_plotly_html

    cmap = context_map(lenses["llama"], [HOSTILE, "a list of lists"], layers="0,1", reduce=ReduceOptions("pca"),
                       progress=False)
    t = cmap.panels[0].table
    hostile = ["<script>alert(1)</script>", '"quoted"', "&amp;"]
    t["decoded_display"][:] = np.asarray(hostile, dtype=object)  # every point's top-3
    fig = cmap.figure()
    curve = next(i for i, tr in enumerate(fig.data) if tr.hovertext is not None and tr.visible is not False)
    write_plotly_html(fig, tmp_path / "context.html")
    page, seen = offline_page(tmp_path / "context.html")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData; }",
                           timeout=30_000)
    page.evaluate("(c) => Plotly.Fx.hover(document.querySelector('.js-plotly-plot'), [{curveNumber: c, pointNumber: 0}])",
                  curve)
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.includes('logit lens')")
    shown = page.evaluate("() => document.querySelector('.hoverlayer').textContent")
    assert "logit lens: <script>alert(1)</script> " in shown and '"quoted" ' in shown and "&amp; " in shown, shown
    assert seen.dialogs == [] and seen.errors == []
