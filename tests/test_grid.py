"""The token grid map: forward semantics vs the model's own forward, methods, outputs, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedlens.errors import EmbedlensError
from embedlens.grid import EmbeddingGridVisualizer, GridMap, create_embedding_grid_map
from embedlens.grid import methods as M
from embedlens.grid.predict import check_memory
from embedlens.models import load_model
from embedlens.models.forward import BlockRunner

ATOL = 1e-4


def _probs(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=-1).numpy()


@pytest.fixture(scope="module")
def tiny_models(tiny_gpt2_dir, tiny_llama_dir):
    return {kind: load_model(str(path)) for kind, path in (("gpt2", tiny_gpt2_dir), ("llama", tiny_llama_dir))}


@pytest.fixture(params=["gpt2", "llama"])
def tiny(request, tiny_models):
    return tiny_models[request.param]


def _check_top5(viz, vectors: torch.Tensor, layer: int, expected: np.ndarray) -> None:
    ids, probs = viz.predict_tokens_for_grid(vectors, batch_size=7, layer_idx=layer)
    order = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, order[:, 0])
    np.testing.assert_allclose(viz.top5_probs_, np.take_along_axis(expected, order, 1), atol=ATOL)
    np.testing.assert_allclose(probs, expected.max(axis=1), atol=ATOL)


# -- forward semantics -------------------------------------------------------------------------------------


def test_last_layer_is_softmax_of_head_of_final_norm(tiny):
    model, tok = tiny
    viz = EmbeddingGridVisualizer(model, tok)
    n = viz.n_layers
    v = torch.randn(23, viz.hidden_size, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        direct = model.get_output_embeddings()(model.base_model.__getattr__(
            "ln_f" if model.config.model_type == "gpt2" else "norm")(v))
    _check_top5(viz, v, n, _probs(direct))


def test_layer0_real_token_matches_the_model(tiny):
    model, tok = tiny
    viz = EmbeddingGridVisualizer(model, tok, 0)
    ids = torch.arange(0, 40)
    with torch.no_grad():
        expected = _probs(model(input_ids=ids[:, None]).logits[:, 0, :])
    _check_top5(viz, viz.runner.token_input(ids), 0, expected)


def test_gpt2_block0_input_includes_position0(tiny_models):
    model, _ = tiny_models["gpt2"]
    runner = BlockRunner(model)
    got = runner.token_input([5])[0]
    expected = model.transformer.wte.weight[5] + model.transformer.wpe.weight[0]
    torch.testing.assert_close(got, expected.detach())


def test_intermediate_layers_match_hidden_states(tiny):
    model, tok = tiny
    viz = EmbeddingGridVisualizer(model, tok)
    ids = torch.arange(3, 30)
    with torch.no_grad():
        out = model(input_ids=ids[:, None], output_hidden_states=True)
    expected = _probs(out.logits[:, 0, :])
    for layer in range(1, viz.n_layers):  # hidden_states[n] is already normed, so L = n is tested above
        _check_top5(viz, out.hidden_states[layer][:, 0, :], layer, expected)


@pytest.fixture(scope="module")
def tiny_gemma3(tiny_models):
    """A tiny Gemma 3 (sliding + global layers, sqrt(d) input scale, logit soft-capping), built in memory."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    _, tok = tiny_models["gpt2"]
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                           sliding_window=4, final_logit_softcapping=30.0,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg).eval()
    assert sum(p.numel() for p in model.parameters()) < 100_000
    return model, tok


def test_gemma3_all_layers_match_the_model(tiny_gemma3):
    model, tok = tiny_gemma3
    viz = EmbeddingGridVisualizer(model, tok, 0)
    ids = torch.arange(1, 30)  # id 0 is the padding row (all zeros): every logit ties
    with torch.no_grad():
        out = model(input_ids=ids[:, None], output_hidden_states=True)
    expected = _probs(out.logits[:, 0, :])
    token_input = viz.runner.token_input(ids)
    torch.testing.assert_close(token_input, model.model.embed_tokens.weight[ids].detach() * 32**0.5)
    _check_top5(viz, token_input, 0, expected)
    for layer in range(1, viz.n_layers):
        _check_top5(viz, out.hidden_states[layer][:, 0, :], layer, expected)
    # the tokens plane at (0, 0) is token A scaled by sqrt(d), as the model scales it
    plane = viz.grid_embedding("tokens", ["id:5", "id:6", "id:7"])
    np.testing.assert_allclose(plane.origin, token_input[4].numpy(), rtol=1e-6)


def test_encoder_is_refused(tiny_bert_dir, cache_dir):
    model, tok = load_model(str(tiny_bert_dir))
    with pytest.raises(EmbedlensError, match="encoder-only"):
        EmbeddingGridVisualizer(model, tok)
    with pytest.raises(EmbedlensError, match="encoder-only"):
        EmbeddingGridVisualizer(str(tiny_bert_dir))


@pytest.mark.parametrize("layer", [-99, 4, 99])
def test_layer_out_of_range(tiny_models, layer):
    model, tok = tiny_models["gpt2"]  # 2 blocks: 0..2 and -2..-1 are valid
    with pytest.raises(EmbedlensError, match="out of range"):
        EmbeddingGridVisualizer(model, tok, layer)


def test_negative_layer_counts_from_the_end(tiny_models):
    model, tok = tiny_models["llama"]
    assert EmbeddingGridVisualizer(model, tok, -1).layer_idx == 2
    assert EmbeddingGridVisualizer(model, tok).layer_idx == 2
    assert EmbeddingGridVisualizer(model, tok, 3).layer_idx == 3


# -- grid and methods ----------------------------------------------------------------------------------------


def test_grid_layout():
    x, y = M.create_2d_grid(4, 0.5, center=(1.0, -2.0))
    assert x.shape == y.shape == (4, 4)
    np.testing.assert_allclose(x[0], [0.25, 0.75, 1.25, 1.75])
    np.testing.assert_allclose(y[:, 0], [-2.75, -2.25, -1.75, -1.25])
    assert np.all(x[1] == x[0]) and np.all(y[:, 1] == y[:, 0])


@pytest.mark.parametrize("size, spacing, message", [(0, 0.5, "grid size"), (3, 0.0, "spacing"), (3, -1, "spacing")])
def test_bad_grid(size, spacing, message):
    with pytest.raises(EmbedlensError, match=message):
        M.create_2d_grid(size, spacing)


def test_a_grid_past_float32_is_refused_and_counts_its_cells(tiny_models):
    model, tok = tiny_models["gpt2"]
    viz = EmbeddingGridVisualizer(model, tok)
    # 3 x 3 cells 1e300 apart: every cell but the centre leaves float32 (x or y = +-1e300 -> inf)
    with pytest.raises(EmbedlensError, match=r"^8 of 9 grid points overflowed"):
        viz.compute_map(grid_size=3, spacing=1e300, embedding_method="direct")


def test_direct_and_replicated_vectors(tiny_models):
    model, tok = tiny_models["gpt2"]
    viz = EmbeddingGridVisualizer(model, tok)
    d = viz.hidden_size
    x, y = viz.create_2d_grid(3, 1.5)
    v = viz.embed_2d_coordinates(x, y, "direct").numpy()
    assert v.shape == (3, 3, d)
    np.testing.assert_array_equal(v[..., 0], x)
    np.testing.assert_array_equal(v[..., 1], y)
    assert not v[..., 2:].any()
    r = viz.embed_2d_coordinates(x, y, "replicated").numpy()
    np.testing.assert_array_equal(r[..., 0::2], np.repeat(x[..., None], (d + 1) // 2, axis=-1))
    np.testing.assert_array_equal(r[..., 1::2], np.repeat(y[..., None], d // 2, axis=-1))
    with pytest.raises(EmbedlensError, match="unknown embedding method"):
        viz.embed_2d_coordinates(x, y, "spiral")


def test_random_projection_seeded_and_unit_axes(tiny_models):
    model, tok = tiny_models["llama"]
    a = EmbeddingGridVisualizer(model, tok, seed=7).grid_embedding("random_projection")
    b = EmbeddingGridVisualizer(model, tok, seed=7).grid_embedding("random_projection")
    c = EmbeddingGridVisualizer(model, tok, seed=8).grid_embedding("random_projection")
    np.testing.assert_array_equal(a.axis_x, b.axis_x)
    np.testing.assert_array_equal(a.axis_y, b.axis_y)
    assert not np.allclose(a.axis_x, c.axis_x)
    np.testing.assert_allclose([np.linalg.norm(a.axis_x), np.linalg.norm(a.axis_y)], [1, 1], rtol=1e-6)
    # seed 42 reproduces the original module: torch.manual_seed(42); normalize(randn(2, d), dim=1)
    torch.manual_seed(42)
    ref = torch.nn.functional.normalize(torch.randn(2, a.d_model), dim=1).numpy()
    m = EmbeddingGridVisualizer(model, tok).grid_embedding("random_projection")
    np.testing.assert_array_equal(np.stack([m.axis_x, m.axis_y]), ref)


def test_pca_basis_matches_numpy(tiny_models):
    model, tok = tiny_models["gpt2"]
    viz = EmbeddingGridVisualizer(model, tok)
    emb = viz.source.embedding_matrix().astype(np.float64)
    real = emb[~viz.source.special]
    mean = real.mean(0)
    evals, evecs = np.linalg.eigh(np.cov(real, rowvar=False))
    g = M.pca(viz.source.embedding_matrix(), viz.source.special)
    np.testing.assert_allclose(g.origin, mean, atol=1e-5)
    for axis, k in ((g.axis_x, -1), (g.axis_y, -2)):
        assert np.linalg.norm(axis) == pytest.approx(np.sqrt(evals[k]), rel=1e-4)
        assert abs(abs(axis @ evecs[:, k]) / np.linalg.norm(axis) - 1) < 1e-4
    # fed to GPT-2, pca points get wpe[0] added, as a token embedding does
    fed = viz.grid_embedding("pca")
    np.testing.assert_allclose(fed.origin, g.origin + model.transformer.wpe.weight[0].detach().numpy(), atol=1e-6)


def test_token_plane_origin_is_token_a_at_layer0(tiny):
    model, tok = tiny
    viz = EmbeddingGridVisualizer(model, tok, 0)
    a, b, c = ("id:40", "id:41", "id:42")
    x, y = viz.create_2d_grid(3, 1.0)  # contains (0,0) = A, (1,0) = B, (0,1) = C
    v = viz.embed_2d_coordinates(x, y, "tokens", plane_tokens=[a, b, c])
    ids, _ = viz.predict_tokens_for_grid(v)
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([[40], [41], [42]])).logits[:, 0, :]
    got = viz.top5_ids_[[1, 1, 2], [1, 2, 1], 0]
    np.testing.assert_array_equal(got, expected.argmax(-1).numpy())
    torch.testing.assert_close(v[1, 1], viz.runner.token_input([40])[0])


def test_plane_tokens_must_be_three_single_tokens(tiny_models):
    model, tok = tiny_models["gpt2"]
    viz = EmbeddingGridVisualizer(model, tok)
    x, y = viz.create_2d_grid(2, 1.0)
    with pytest.raises(EmbedlensError, match="exactly three"):
        viz.embed_2d_coordinates(x, y, "tokens", plane_tokens=["id:1", "id:2"])
    with pytest.raises(EmbedlensError, match="not exactly one"):
        viz.embed_2d_coordinates(x, y, "tokens", plane_tokens=["id:1", "id:2", "antidisestablishmentarianism"])
    with pytest.raises(EmbedlensError, match="not in the vocabulary"):
        viz.embed_2d_coordinates(x, y, "tokens", plane_tokens=["id:1", "id:2", "tok:nonexistent-raw"])


def test_memory_guard_refuses_with_a_batch_that_fits():
    per_cell = 1 << 20
    with pytest.raises(EmbedlensError, match=r"`batch_size=(\d+)` would fit") as err:
        check_memory(1000, 10_000, per_cell, available=600 << 20)
    fits = int(err.value.args[0].split("`batch_size=")[1].split("`")[0])
    assert 0 < fits < 1000
    check_memory(fits, 10_000, per_cell, available=600 << 20)  # the advice is taken


def test_memory_guard_says_the_grid_is_too_large():
    # 1000x1000 cells: the map's own results need ~4 GB, more than 1 GiB free allows whatever the batch
    with pytest.raises(EmbedlensError, match=r"use `grid_size=(\d+)` or less") as err:
        check_memory(1, 1_000_000, 1 << 10, available=1 << 30)
    side = int(err.value.args[0].split("`grid_size=")[1].split("`")[0])
    assert 100 < side < 1000
    check_memory(1, side * side, 1 << 10, available=1 << 30)  # the advice is taken


def test_memory_guard_in_the_pipeline(tiny_models, monkeypatch, tmp_path):

    monkeypatch.setattr("embedlens.hardware.available_memory", lambda: 1 << 20)
    model, tok = tiny_models["llama"]
    with pytest.raises(EmbedlensError, match="exceeds"):
        create_embedding_grid_map(model=model, tokenizer=tok, grid_size=8, output_dir=tmp_path, png=False, html=False)


# -- outputs ---------------------------------------------------------------------------------------------------


def test_outputs_files_and_json(tiny_models, tmp_path):
    model, tok = tiny_models["llama"]
    out = create_embedding_grid_map(model=model, tokenizer=tok, layer_idx=[0, -1], grid_size=6, spacing=0.7,
                                    embedding_method="random_projection", output_dir=tmp_path, batch_size=10, seed=3)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        "embedding_grid_layer_0_size_6_method_random_projection.png",
        "embedding_grid_layer_0_size_6_method_random_projection.html",
        "embedding_grid_layer_2_size_6_method_random_projection.png",
        "embedding_grid_layer_2_size_6_method_random_projection.html",
        "embedding_grid_results_layer_0.json", "embedding_grid_results_layer_2.json",
        "embedding_grid_layers_0-2_size_6_method_random_projection.png",
        "embedding_grid_layers_0-2_size_6_method_random_projection.html",
        "manifest.json",
    ])
    assert out["visualization_path"].endswith("embedding_grid_layer_0_size_6_method_random_projection.png")
    data = json.loads((tmp_path / "embedding_grid_results_layer_2.json").read_text())
    assert set(data) == {"config", "x", "y", "token_ids", "tokens", "display", "probs", "top5"}
    cfg = data["config"]
    for key in ("model", "content_hash", "grid_size", "spacing", "center", "embedding_method", "layer_idx",
                "batch_size", "seed", "dtype", "versions", "plane_tokens"):
        assert key in cfg
    assert cfg["seed"] == 3 and cfg["layer_idx"] == 2 and cfg["versions"]["torch"]
    assert all(len(data[k]) == 36 for k in ("x", "y", "token_ids", "tokens", "display", "probs"))
    assert len(data["top5"]["ids"]) == 36 and len(data["top5"]["probs"][0]) == 5
    # row-major: x varies fastest
    assert data["x"][:2] == pytest.approx([-1.75, -1.05]) and data["y"][:7] == pytest.approx([-1.75] * 6 + [-1.05])
    # the JSON is the computed map, and recomputing the vectors by hand gives the same tokens
    gm = GridMap.load(tmp_path / "embedding_grid_results_layer_2.json")
    np.testing.assert_array_equal(gm.token_ids, out.maps[1].token_ids)
    viz = EmbeddingGridVisualizer(model, tok, 2, seed=3)
    x, y = viz.create_2d_grid(6, 0.7)
    ids, probs = viz.predict_tokens_for_grid(viz.embed_2d_coordinates(x, y, "random_projection"))
    np.testing.assert_array_equal(ids.ravel(), data["token_ids"])
    np.testing.assert_allclose(probs.ravel(), data["probs"], rtol=1e-6)
    assert data["tokens"] == [tok.convert_ids_to_tokens(int(i)) for i in data["token_ids"]]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["layers"] == [0, 2] and "timings" in manifest and "versions" in manifest
    # the timings are a format users read: these names, in seconds rounded to 3 (4 per layer) places
    timings = manifest["timings"]
    assert list(timings) == ["load_s", "render_s", "per_layer", "total_s"] and list(timings["per_layer"]) == ["0", "2"]
    assert all(timings[key] == round(timings[key], 3) >= 0 for key in ("load_s", "render_s", "total_s"))
    assert timings["total_s"] >= timings["load_s"] + timings["render_s"] - 0.002
    for layer in timings["per_layer"].values():
        assert list(layer) == ["prepare_s", "predict_s", "cells_per_s"]
        assert layer["prepare_s"] == round(layer["prepare_s"], 4) and layer["predict_s"] == round(layer["predict_s"], 4)
        assert timings["total_s"] >= layer["predict_s"] - 0.001


def test_html_escapes_tokens_and_has_top5_hover(tiny_models):
    from embedlens.render.grid import grid_figure

    model, tok = tiny_models["gpt2"]
    viz = EmbeddingGridVisualizer(model, tok)
    gm = viz.compute_map(4, 1.0, "direct")
    gm.top5_display[0, 0] = "<script>"  # a markup-like token must show literally
    fig = grid_figure(gm).to_dict()
    trace = fig["data"][0]
    assert np.asarray(trace["z"]).shape == (4, 4)
    assert trace["customdata"][0][0][0] == "&lt;script&gt;"
    assert "customdata[4]" in trace["hovertemplate"] and "customdata[9]" in trace["hovertemplate"]
    assert "<script>" not in json.dumps(trace["text"])


def test_png_label_plan_shrinks_then_strides():
    from embedlens.render.grid import label_plan

    stride50, font50 = label_plan(50, 50, 15.0)
    assert stride50 == 1 and 4 <= font50 <= 9
    stride200, font200 = label_plan(200, 50, 15.0)
    assert stride200 == 4 and font200 >= 4
    assert label_plan(400, 400, 5.0)[1] == 0  # too small: dropped, not a blot


def test_cli_writes_outputs(tiny_llama_dir, cache_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    r = run_cli("grid", "--model", str(tiny_llama_dir), "--grid-size", "5", "--layer-idx", "-1", "--embedding-method",
                "pca", "--center", "0.5,-0.5", "--output-dir", str(out), "--no-html", "--json")
    assert r.code == 0, r
    summary = json.loads(r.out)
    assert summary["layers"] == [2]
    data = json.loads((out / "embedding_grid_results_layer_2.json").read_text())
    assert data["config"]["center"] == [0.5, -0.5] and data["config"]["embedding_method"] == "pca"
    assert (out / "embedding_grid_layer_2_size_5_method_pca.png").stat().st_size > 1000


def test_cli_no_png_writes_the_rest(tiny_llama_dir, cache_dir, tmp_path, run_cli):
    out = tmp_path / "out"
    r = run_cli("grid", "--model", str(tiny_llama_dir), "--grid-size", "4", "--output-dir", str(out), "--no-png")
    assert r.code == 0, r
    assert sorted(p.name for p in out.iterdir()) == [
        "embedding_grid_layer_2_size_4_method_random_projection.html", "embedding_grid_results_layer_2.json",
        "manifest.json"]
    assert json.loads((out / "manifest.json").read_text())["files"] == [
        "embedding_grid_layer_2_size_4_method_random_projection.html", "embedding_grid_results_layer_2.json"]


@pytest.mark.parametrize("args, message", [
    (["--grid-size", "0"], "grid size"),
    (["--spacing", "0"], "spacing"),
    (["--spacing", "-1"], "spacing"),
    (["--layer-idx", "7"], "out of range"),
    (["--layer-idx", "x"], "integers"),
    (["--embedding-method", "spiral"], "spiral"),
    (["--embedding-method", "tokens"], "three"),
    (["--embedding-method", "tokens", "--plane-tokens", "id:1,id:2"], "three"),
    (["--embedding-method", "tokens", "--plane-tokens", "id:1,id:2,antidisestablishmentarianism"], "not exactly one"),
    (["--center", "1"], "center"),
])
def test_cli_errors_exit_2(tiny_gpt2_dir, cache_dir, tmp_path, run_cli, args, message):
    r = run_cli("grid", "--model", str(tiny_gpt2_dir), "--grid-size", "3", "--output-dir", str(tmp_path / "o"), *args)
    assert r.code == 2, r
    errors = [line for line in r.err.splitlines() if line.startswith("embedlens: error:")]
    assert len(errors) == 1 and message in errors[0] and r.err.splitlines()[-1] == errors[0]
    assert "Traceback" not in r.err


def test_cli_refuses_encoder(tiny_bert_dir, cache_dir, tmp_path, run_cli):
    r = run_cli("grid", "--model", str(tiny_bert_dir), "--output-dir", str(tmp_path / "o"))
    assert r.code == 2 and "encoder-only" in r.err


# -- the real model ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol_viz(smollm2):
    return EmbeddingGridVisualizer(smollm2, layer_idx=0)


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_layer0_and_last_layer(smollm2, smol_viz):
    viz = smol_viz
    model = viz.model
    ids = torch.tensor(smollm2.encode(" Paris is the capital of France", add_special_tokens=False))
    with torch.no_grad():
        expected = _probs(model(input_ids=ids[:, None]).logits[:, 0, :])
        out = model(input_ids=ids[:, None], output_hidden_states=True)
    _check_top5(viz, viz.runner.token_input(ids), 0, expected)
    _check_top5(viz, out.hidden_states[15][:, 0, :], 15, expected)
    v = torch.randn(6, viz.hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct = _probs(model.lm_head(model.model.norm(v)))
    _check_top5(viz, v, viz.n_layers, direct)


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_decode_blocks_equal_one_batch_at_a_time(smol_viz):
    """SmolLM2's 400-cell map in one decode (8 batches of 50) is bit for bit the batch-by-batch one."""
    from embedlens.grid import predict

    viz = smol_viz
    emb = viz.grid_embedding("random_projection")
    x, y = M.create_2d_grid(20, 0.5, (0.0, 0.0))
    vectors = torch.as_tensor(emb.vectors(x.ravel(), y.ravel()))
    assert predict.decode_rows(50, viz.runner.n_vocab) >= 400
    for layer in (viz.n_layers - 1, viz.n_layers):
        ids, probs, _ = predict.predict_top_k(viz.runner, lambda s, e: vectors[s:e], 400, layer, batch_size=50)
        old_ids, old_probs = _one_batch_at_a_time(viz.runner, vectors, layer, 50)
        np.testing.assert_array_equal(ids, old_ids)
        assert probs.tobytes() == old_probs.tobytes()


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_tokens_plane_at_layer0(smollm2, smol_viz, tmp_path):
    out = create_embedding_grid_map(smollm2, layer_idx=0, grid_size=3, spacing=1.0, embedding_method="tokens",
                                    plane_tokens="id:7042,id:3458,id:1345", output_dir=tmp_path, html=False)
    gm = out.maps[0]
    model = smol_viz.model  # the same float32 weights the map used
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([[7042], [3458], [1345]])).logits[:, 0, :].argmax(-1).numpy()
    np.testing.assert_array_equal(gm.token_ids[[4, 5, 7]], expected)  # (0,0)=A, (1,0)=B, (0,1)=C
    assert gm.config["content_hash"] == smollm2.meta["content_hash"]


# -- browser -------------------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_grid_html_offline_in_chromium_shows_markup_tokens_literally(tiny_models, tmp_path, offline_page):
    from embedlens.render.grid import write_grid_html

    model, tok = tiny_models["gpt2"]
    gm = EmbeddingGridVisualizer(model, tok).compute_map(3, 1.0, "replicated")
    gm.top5_display[4] = ["<script>alert(1)</script>", "</div>", "<br>", "[/b]", "&amp;"]  # the centre cell
    write_grid_html(gm, tmp_path / "g.html")
    page, seen = offline_page(tmp_path / "g.html")
    page.wait_for_function("() => { const g = document.querySelector('.js-plotly-plot');"
                           " return g && g._fullData && g.querySelector('.main-svg'); }", timeout=30_000)
    assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData[0].type") == "heatmap"
    pos = page.evaluate(
        """() => { const g = document.querySelector('.js-plotly-plot'), L = g._fullLayout;
        const r = g.getBoundingClientRect();
        return [r.left + L._size.l + L.xaxis.l2p(0), r.top + L._size.t + L.yaxis.l2p(0)]; }""")
    page.mouse.move(pos[0] + 40, pos[1] + 40)
    page.mouse.move(pos[0], pos[1])
    page.wait_for_function("() => document.querySelector('.hoverlayer').textContent.length > 0")
    shown = page.evaluate("() => document.querySelector('.hoverlayer').textContent")
    for token in ("<script>alert(1)</script>", "</div>", "<br>", "[/b]", "&amp;"):
        assert token in shown, (token, shown)
    tags = page.evaluate("() => Array.from(document.querySelectorAll('.hoverlayer *'), e => e.tagName)")
    assert set(tags) <= {"g", "path", "text", "tspan", "rect"}, tags
    cell_text = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot text'),"
                              " e => e.textContent).join('|')")
    assert "<scri…" in cell_text  # the cell label (shortened) shows the markup literally
    assert seen.dialogs == [] and seen.errors == []
    assert seen.requests and all(u.startswith("file://") for u in seen.requests), seen.requests


# -- the decode of several batches at once ---------------------------------------------------------------------


def _one_batch_at_a_time(runner, vectors: torch.Tensor, layer: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous route: blocks, final norm, head and top-5 for each batch on its own."""
    out = [runner.topk(vectors[s:s + batch_size], layer, 5) for s in range(0, len(vectors), batch_size)]
    return torch.cat([o[0] for o in out]).numpy(), torch.cat([o[1] for o in out]).numpy()


def test_decode_rows_are_whole_batches_within_the_budget():
    from embedlens.grid.predict import DECODE_BYTES, MERGE_MIN, decode_extra_bytes, decode_rows, decode_spans

    assert decode_rows(100, 49_152) == 100 * (DECODE_BYTES // (4 * 49_152 * 100)) > 100  # SmolLM2: several batches
    assert decode_rows(100, 262_144, budget=128 << 20) == 100  # Gemma 3: one batch is already 105 MB
    assert decode_rows(16, 10, budget=4 * 10 * 16 * 3 + 5) == 48
    assert decode_rows(MERGE_MIN - 1, 10) == MERGE_MIN - 1  # small batches alone
    assert decode_rows(100, 10, device="cuda") == 100  # only the CPU merges
    row = 10 * 4 + 3 * 10 * 4  # one decoded row of float32 logits and their softmax temporaries
    assert decode_extra_bytes(16, 1000, 10, 4) == (992 - 16) * row  # the 62 whole batches of 16 merge
    assert decode_extra_bytes(16, 10**9, 10, 4) == (decode_rows(16, 10) - 16) * row
    assert decode_extra_bytes(100, 50, 49_152, 4) == 0  # one partial batch: nothing merges
    assert decode_extra_bytes(100, 400, 49_152, 4) == 300 * (49_152 * 16)  # all 400 cells in one decode, not 600
    assert decode_spans(53, 16, 32) == [(0, 32), (32, 48), (48, 53)]  # the partial batch alone
    assert decode_spans(48, 16, 48) == [(0, 48)]
    assert decode_spans(5, 16, 32) == [(0, 5)]


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma3"])
def test_decoding_several_batches_at_once_equals_one_batch_at_a_time(kind, tiny_models, tiny_gemma3, monkeypatch):
    from embedlens.grid import predict

    model, tok = tiny_gemma3 if kind == "gemma3" else tiny_models[kind]
    runner = EmbeddingGridVisualizer(model, tok, 0).runner
    vectors = torch.randn(53, runner.d_model, generator=torch.Generator().manual_seed(3)) * 2
    monkeypatch.setattr(predict, "DECODE_BYTES", 4 * runner.n_vocab * 16 * 2)  # 2 batches of 16 per decode
    assert predict.decode_rows(16, runner.n_vocab) == 32
    for layer in (0, runner.n_layers - 1, runner.n_layers):
        ids, probs, _ = predict.predict_top_k(runner, lambda s, e: vectors[s:e], 53, layer, batch_size=16)
        old_ids, old_probs = _one_batch_at_a_time(runner, vectors, layer, 16)
        np.testing.assert_array_equal(ids, old_ids)
        assert probs.tobytes() == old_probs.tobytes()  # bit for bit


def test_memory_guard_counts_the_decode_block_and_its_advice_is_taken():
    from embedlens.grid.predict import decode_extra_bytes, logits_bytes_per_row

    per_cell = 1 << 20
    check_memory(100, 1000, per_cell, available=200 << 20)
    with pytest.raises(EmbedlensError, match="exceeds"):
        check_memory(100, 1000, per_cell, available=200 << 20, extra=lambda b: 128 << 20)
    # A 262,144-token vocabulary: the decode block's extra grows as the batch shrinks (and vanishes under
    # MERGE_MIN), so the advice comes from a search, and the batch it names fits.
    n_vocab, cells = 262_144, 2500
    per_cell = 20_000 * 4 + logits_bytes_per_row(n_vocab, 4)
    extra = lambda b: decode_extra_bytes(b, cells, n_vocab, 4)  # noqa: E731
    free = int((100 * per_cell + cells * 4096 + (64 << 20) + extra(100)) / 0.85) - 1
    with pytest.raises(EmbedlensError, match=r"`batch_size=(\d+)` would fit") as err:
        check_memory(100, cells, per_cell, available=free, extra=extra)
    fits = int(err.value.args[0].split("`batch_size=")[1].split("`")[0])
    assert fits == max(b for b in range(1, 100) if b * per_cell + cells * 4096 + (64 << 20) + extra(b) <= int(free * 0.85))
    check_memory(fits, cells, per_cell, available=free, extra=extra)  # the advice is taken
    with pytest.raises(EmbedlensError, match="batch size must be an integer"):
        check_memory("100", cells, per_cell, available=free, extra=extra)  # checked before the extra is asked
