"""Tuned lens: identity = logit lens, the loss = a plain KL, least squares recovers a planted map, training
beats the logit lens on held-out text of a tiny model with a planted late change, both file formats, the
evaluation table vs a direct computation, the CLI and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedlens.errors import EmbedlensError
from embedlens.logitlens import logit_lens
from embedlens.reduce.options import ReduceOptions

TEXT = 'The capital <script>alert(1)</script> of "quoted" it\'s &amp; a&b <br> is'


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    from tests.conftest import CORPUS

    path = tmp_path_factory.mktemp("tuned-corpus") / "corpus.txt"
    path.write_text("\n".join(CORPUS * 12) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory, tiny_gpt2_dir):
    """A tiny GPT-2 whose last block adds a large, nearly affine map of its input (an MLP in GELU's linear
    range), with a peaked head: the logit lens misreads every earlier layer; an affine translator can fix it."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("planted-gpt2")
    model = GPT2LMHeadModel.from_pretrained(str(tiny_gpt2_dir)).eval()
    g = torch.Generator().manual_seed(1)
    d = model.config.n_embd
    with torch.no_grad():
        model.transformer.wte.weight.mul_(20.0)             # peaked next-token distributions
        mlp = model.transformer.h[-1].mlp
        mlp.c_fc.weight.zero_()
        mlp.c_fc.weight[:, :d] = 0.5 * torch.eye(d)
        mlp.c_fc.bias.fill_(-10.0)
        mlp.c_fc.bias[:d] = 10.0                             # GELU(z) ~ z here, ~ 0 for the other units
        mlp.c_proj.weight.zero_()
        mlp.c_proj.weight[:d] = 3.0 * torch.randn(d, d, generator=g) / d ** 0.5
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_gpt2_dir)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def lenses(module_cache, tiny_gpt2_dir, tiny_llama_dir, planted_dir):
    import embedlens

    return {kind: embedlens.load(str(path)) for kind, path in
            (("gpt2", tiny_gpt2_dir), ("llama", tiny_llama_dir), ("planted", planted_dir))}


@pytest.fixture(scope="module")
def trained(lenses, corpus_file, tmp_path_factory):
    """A tuned lens of the planted model (least squares + 2 KL steps), saved in ``out``."""
    from embedlens.tunedlens import train_tuned_lens

    out = tmp_path_factory.mktemp("trained") / "lens"
    tuned = train_tuned_lens(lenses["planted"], str(corpus_file), tokens=1024, heldout_tokens=256, seq_len=32,
                            batch_tokens=256, steps=2, lr=1e-3, seed=3, dtype="float32", out=out)
    return tuned, out


def random_lens(n_layers: int, d: int, seed: int = 0):
    from embedlens.tunedlens import TunedLens

    rng = np.random.default_rng(seed)
    return TunedLens(rng.normal(0, 0.2, (n_layers, d, d)).astype(np.float32),
                     rng.normal(0, 0.2, (n_layers, d)).astype(np.float32))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_zero_translators_are_the_logit_lens_exactly(lenses, kind):
    from embedlens.tunedlens import TunedLens

    lens = lenses[kind]
    zero = TunedLens.zeros(lens.meta["n_layers"], lens.meta["d_model"])
    a = logit_lens(lens, TEXT, dtype="float32", keep_states=True)
    b = logit_lens(lens, TEXT, dtype="float32", keep_states=True, decoder=zero)
    np.testing.assert_array_equal(a.top_ids, b.top_ids)
    np.testing.assert_array_equal(a.top_probs, b.top_probs)
    np.testing.assert_array_equal(a.target_rank, b.target_rank)
    np.testing.assert_array_equal(a.states, b.states)
    assert b.settings["decoder"]["kind"] == "tuned" and a.settings["decoder"] == {"kind": "logit"}


def test_translate_is_h_plus_wh_plus_b_and_keeps_the_last_layer():
    tuned = random_lens(3, 4)
    h = torch.randn(4, 5, 4)
    got = tuned.translate(h, [0, 1, 2, 3])
    for i in range(3):
        expected = h[i].numpy() + h[i].numpy() @ tuned.weight[i].T + tuned.bias[i]
        np.testing.assert_allclose(got[i].numpy(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[3], h[3])  # layer n_layers: the model's own output, never translated
    one = h[1].numpy() @ tuned.weight[2].T + tuned.bias[2] + h[1].numpy()   # any state through any layer's translator
    np.testing.assert_allclose(tuned.translate(h[[1]], [2])[0].numpy(), one, rtol=1e-5, atol=1e-5)


def test_loss_equals_a_plainly_written_kl(lenses):
    from embedlens.logitlens import residual_states
    from embedlens.models.forward import runner_for
    from embedlens.tunedlens.training import kl_loss

    lens = lenses["llama"]
    net = lens.model
    runner = runner_for(lens, net)
    n, d = runner.n_layers, runner.d_model
    ids = np.asarray(lens.encode(TEXT))
    hs = residual_states(net, [ids], list(range(n + 1)))[:, 0].clone()
    tl = random_lens(n, d, seed=2)
    with torch.no_grad():
        final_logp = runner.decode(hs[n]).float().log_softmax(-1)
        got = kl_loss(runner, hs[:n], final_logp, torch.from_numpy(tl.weight), torch.from_numpy(tl.bias),
                      list(range(n))).double().numpy()
        norm, head = net.model.norm, net.lm_head
        p = torch.softmax(head(norm(hs[n])).double(), -1).numpy()
        for layer in range(n):
            moved = hs[layer] + hs[layer] @ torch.from_numpy(tl.weight[layer]).T + torch.from_numpy(tl.bias[layer])
            q = torch.softmax(head(norm(moved)).double(), -1).numpy()
            plain = np.mean([sum(pi * np.log(pi / qi) for pi, qi in zip(pr, qr, strict=True))
                             for pr, qr in zip(p, q, strict=True)])
            assert got[layer] == pytest.approx(plain, rel=1e-4, abs=1e-7)


def test_least_squares_recovers_a_planted_affine_map():
    from embedlens.tunedlens.training import least_squares_translators

    rng = np.random.default_rng(0)
    n_layers, d, n = 2, 6, 200
    a = rng.normal(size=(n_layers, d, d))
    b = rng.normal(size=(n_layers, d))
    x = rng.normal(size=(n_layers, n, d))
    y = np.einsum("lnd,lde->lne", x, a) + b[:, None, :]   # h_final = h_l @ A_l + b_l, exactly
    xa = np.concatenate([x, np.ones((n_layers, n, 1))], axis=-1)
    gram = torch.from_numpy(np.einsum("lni,lnj->lij", xa, xa))
    cross = torch.from_numpy(np.einsum("lni,lnj->lij", xa, y))
    w, bias = least_squares_translators(gram, cross, 0.0)
    np.testing.assert_allclose(w, a.transpose(0, 2, 1) - np.eye(d), atol=1e-4)
    np.testing.assert_allclose(bias, b, atol=1e-4)


def test_training_beats_the_logit_lens_at_every_layer_on_held_out_text(trained, lenses):
    tuned, out = trained
    m = tuned.manifest
    tuned, logit = np.asarray(m["heldout_kl_bits"]), np.asarray(m["heldout_kl_bits_logit_lens"])
    n = lenses["planted"].meta["n_layers"]
    assert len(tuned) == n + 1 and tuned[-1] == 0.0 and logit[-1] == 0.0
    assert logit[:-1].min() > 0.5                     # the planted change: the logit lens misreads every layer
    assert (tuned[:-1] < 0.5 * logit[:-1]).all(), (tuned, logit)
    assert m["steps"] == 2 and m["tokens"] == 1024 and m["seed"] == 3 and m["optimiser"]["name"] == "Adam"
    assert m["model"]["content_hash"] == lenses["planted"].meta["content_hash"] and len(m["corpus"]["hash"]) == 64
    assert (out / "tuned_lens.safetensors").exists() and not (out / ".checkpoint").exists()


def test_the_seed_fixes_the_result_and_a_run_resumes(trained, lenses, corpus_file, tmp_path):
    from embedlens.tunedlens import train_tuned_lens
    from embedlens.tunedlens.training import _Checkpoint

    tuned, _ = trained
    kw = dict(tokens=1024, heldout_tokens=256, seq_len=32, batch_tokens=256, steps=2, lr=1e-3, seed=3,
              dtype="float32", cache=False)
    # interrupted after the first KL step: the checkpoint holds the translators and Adam's state
    saved: list = []
    real_save = _Checkpoint.save

    def stop_after_one_step(self, state, tensors, *, every):
        real_save(self, state, tensors, every=0.0)
        saved.append(state)
        if state == {"phase": "kl", "done": 1}:
            raise KeyboardInterrupt

    out = tmp_path / "resumable"
    import unittest.mock

    with unittest.mock.patch.object(_Checkpoint, "save", stop_after_one_step), pytest.raises(KeyboardInterrupt):
        train_tuned_lens(lenses["planted"], str(corpus_file), out=out, **kw)
    assert (out / ".checkpoint" / "state.json").exists()
    resumed = train_tuned_lens(lenses["planted"], str(corpus_file), out=out, **kw)
    # the same seed and settings give the same translators, resumed or not
    np.testing.assert_array_equal(resumed.weight, tuned.weight)
    np.testing.assert_array_equal(resumed.bias, tuned.bias)


def test_save_and_reload_both_formats_decode_identically(trained, lenses, tmp_path):
    from embedlens.tunedlens import read_tuned_lens, write_tuned_lens_package

    tuned, out = trained
    planted = lenses["planted"]
    ours = read_tuned_lens(out)
    np.testing.assert_array_equal(ours.weight, tuned.weight)
    np.testing.assert_array_equal(ours.bias, tuned.bias)
    package = write_tuned_lens_package(tuned, tmp_path / "pkg")
    config = json.loads((package / "config.json").read_text())
    assert config["lens_type"] == "linear_tuned_lens" and config["num_hidden_layers"] == tuned.n_layers
    # the tuned-lens package's reading: a ModuleList of Linear(d, d) loaded from params.pt, h + translator(h)
    state = torch.load(package / "params.pt", weights_only=True)
    mods = torch.nn.ModuleList([torch.nn.Linear(tuned.d_model, tuned.d_model) for _ in range(tuned.n_layers)])
    mods.load_state_dict(state)
    h = torch.randn(3, tuned.d_model)
    with torch.no_grad():
        np.testing.assert_allclose((h + mods[1](h)).numpy(), tuned.translate(h[None], [1])[0].numpy(),
                                   rtol=1e-5, atol=1e-5)
    theirs = read_tuned_lens(package)
    np.testing.assert_array_equal(theirs.weight, tuned.weight)
    results = [logit_lens(planted, TEXT, dtype="float32", decoder=dec) for dec in (tuned, str(out), str(package))]
    for r in results[1:]:
        np.testing.assert_array_equal(r.top_ids, results[0].top_ids)
        np.testing.assert_array_equal(r.top_probs, results[0].top_probs)
    cached = logit_lens(planted, TEXT, dtype="float32", decoder="tuned")   # kept in the model's cache entry
    np.testing.assert_array_equal(cached.top_ids, results[0].top_ids)
    logit = logit_lens(planted, TEXT, dtype="float32")
    assert not np.array_equal(logit.top_probs, results[0].top_probs)


def test_eval_table_equals_a_direct_computation(trained, lenses, corpus_file, monkeypatch):
    from embedlens.corpus import open_corpus
    from embedlens.tunedlens import evaluate_decoders, metrics
    from embedlens.tunedlens.data import corpus_tokens, sequences

    tuned, out = trained
    planted = lenses["planted"]
    ev = evaluate_decoders(planted, str(corpus_file), decoders=["logit", str(out)], tokens=64, seq_len=32,
                           dtype="float32", product="float32")
    monkeypatch.setattr(metrics, "DECODE_ROWS", 24)    # blocks of 24 + 8 rows, one layer per product
    monkeypatch.setattr(metrics, "VOCAB_CHUNK", 50)     # the log-normaliser accumulated over 7 head chunks
    assert planted.meta["n_vocab"] % 50 and planted.meta["n_vocab"] > 6 * 50
    blocked = evaluate_decoders(planted, str(corpus_file), decoders=["logit", str(out)], tokens=64, seq_len=32,
                                dtype="float32", product="float32", batch_tokens=32)
    for key in ("kl_bits", "top1_agreement", "ce_bits"):
        np.testing.assert_allclose(getattr(blocked, key), getattr(ev, key), rtol=1e-5, atol=1e-7)
    assert ev.skip == 1024                          # the tuned lens trained on the first 1024 tokens
    seqs = sequences(corpus_tokens(planted, open_corpus(str(corpus_file)), 64, skip=1024), 32)
    net = planted.model
    n = planted.meta["n_layers"]
    with torch.no_grad():
        out_ = net(input_ids=torch.from_numpy(seqs), output_hidden_states=True)
        hs = list(out_.hidden_states)
        p = torch.log_softmax(out_.logits.double(), -1)
        for di, dec in enumerate((None, tuned)):
            for layer in range(n + 1):
                h = hs[layer]
                if layer == n:
                    logq = p
                else:
                    if dec is not None:
                        h = h + h @ torch.from_numpy(dec.weight[layer]).T + torch.from_numpy(dec.bias[layer])
                    logq = torch.log_softmax(net.lm_head(net.transformer.ln_f(h)).double(), -1)
                kl = (p.exp() * (p - logq)).sum(-1).mean() / np.log(2)
                agree = (logq.argmax(-1) == p.argmax(-1)).double().mean()
                ce = -logq[:, :-1].gather(-1, torch.from_numpy(seqs[:, 1:, None])).mean() / np.log(2)
                assert ev.kl_bits[di, layer] == pytest.approx(float(kl), rel=1e-4, abs=1e-6)
                assert ev.top1_agreement[di, layer] == pytest.approx(float(agree))
                assert ev.ce_bits[di, layer] == pytest.approx(float(ce), rel=1e-4)
    assert (ev.kl_bits[:, -1] == 0).all()
    assert [r["lens"] for r in ev.rows()][:: n + 1] == ["logit", str(out)]


def test_cli_train_eval_and_lens_tuned(lenses, planted_dir, corpus_file, tmp_path, run_cli):
    res = run_cli("lens", "train", "-m", str(planted_dir), "--corpus", str(corpus_file), "--tokens", "1024",
                  "--heldout-tokens", "256", "--seq-len", "32", "--batch-tokens", "256", "--dtype", "float32",
                  "--out", str(tmp_path / "t"), "--tuned-lens-format", str(tmp_path / "pkg"), "--json")
    assert res.code == 0, res
    m = json.loads(res.out)
    assert m["tokens"] == 1024 and len(m["heldout_kl_bits"]) == lenses["planted"].meta["n_layers"] + 1
    assert (tmp_path / "pkg" / "params.pt").exists()
    res = run_cli("lens", "eval", "-m", str(planted_dir), "--corpus", str(corpus_file), "--tokens", "64",
                  "--seq-len", "32", "--lens", f"logit,tuned,{tmp_path / 'pkg'}", "--dtype", "float32",
                  "--out", str(tmp_path / "e"))
    assert res.code == 0, res
    files = {f.name for f in (tmp_path / "e").iterdir()}
    assert {"lens_eval.csv", "lens_eval.json", "lens_eval.png", "lens_eval.html", "manifest.json"} <= files
    data = json.loads((tmp_path / "e" / "lens_eval.json").read_text())
    assert data["kl_bits"][1] == data["kl_bits"][2]   # the cached lens and its tuned-lens-format copy
    res = run_cli("logit-lens", TEXT, "-m", str(planted_dir), "--lens", "tuned", "--dtype", "float32", "--json",
                  "--out", str(tmp_path / "l"))
    assert res.code == 0, res
    html = (tmp_path / "l" / "logit_lens.html").read_text()
    assert "tuned lens" in html


@pytest.mark.parametrize("args, message", [
    (("--tokens", "100000"), "has "),
    (("--tokens", "100"), "--tokens 100 is less than one batch (--batch-tokens 256)"),
])
def test_cli_bad_training_input_is_one_line_exit_2(lenses, planted_dir, corpus_file, tmp_path, run_cli, args, message,
                                                   monkeypatch):
    import embedlens.models.loading as loading

    monkeypatch.setattr(loading, "load_weights", lambda *a, **k: pytest.fail("weights loaded before the check"))
    res = run_cli("lens", "train", "-m", str(planted_dir), "--corpus", str(corpus_file), "--seq-len", "32",
                  "--batch-tokens", "256", *args, "--out", str(tmp_path / "o"))
    assert res.code == 2 and message in res.err and len(res.err.strip().splitlines()) == 1, res
    if args[1] == "100000":
        assert "tokens for" in res.err and "needs 101,024" in res.err


def test_a_lens_for_another_model_or_an_encoder_is_refused(trained, lenses, tiny_bert_dir, tmp_path, run_cli):
    import embedlens
    from embedlens.tunedlens import TunedLens, save_tuned_lens

    tuned, out = trained
    res = run_cli("logit-lens", TEXT, "-m", str(lenses["llama"].source.path), "--lens", str(out), "--out",
                  str(tmp_path / "o"))
    assert res.code == 2 and "trained for another model" in res.err and len(res.err.strip().splitlines()) == 1, res
    # same shapes, another model's recorded hash
    other = TunedLens(tuned.weight, tuned.bias, {"model": {"content_hash": "0" * 16}})
    save_tuned_lens(other, tmp_path / "other")
    with pytest.raises(EmbedlensError, match="content hash 0000000000000000"):
        logit_lens(lenses["planted"], TEXT, decoder=str(tmp_path / "other"))
    with pytest.raises(EmbedlensError, match="no tuned lens yet"):
        logit_lens(lenses["llama"], TEXT, decoder="tuned")
    bert = embedlens.load(str(tiny_bert_dir))
    with pytest.raises(EmbedlensError, match="encoder-only"):
        from embedlens.tunedlens import train_tuned_lens

        train_tuned_lens(bert, "lee", tokens=1024)


@pytest.mark.browser
def test_eval_page_shows_lens_names_exactly_and_stays_offline(trained, lenses, corpus_file, tmp_path, offline_page):
    from embedlens.tunedlens import evaluate_decoders, save_tuned_lens
    from embedlens.tunedlens.output import write_decoder_eval

    tuned, _ = trained
    hostile = tmp_path / 'lens <script>alert(1)</script> &amp; "q" it\'s'
    save_tuned_lens(tuned, hostile)
    ev = evaluate_decoders(lenses["planted"], str(corpus_file), decoders=["logit", str(hostile)], tokens=64, seq_len=32,
                           skip=1024, dtype="float32")
    write_decoder_eval(ev, tmp_path / "e")
    page, seen = offline_page(tmp_path / "e" / "lens_eval.html")
    page.wait_for_selector(".legendtext")
    names = page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
    assert names == ["logit", hostile.name]
    box = page.locator(".scatterlayer .trace:nth-child(2) .point:nth-child(2)").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".hoverlayer .hovertext")
    hover = page.text_content(".hoverlayer")
    assert str(hostile) in hover and "layer 1" in hover, hover
    page.screenshot(path=str(tmp_path / "e" / "shot.png"))
    assert not seen.dialogs and not seen.errors
    assert all(u.startswith(("file://", "data:", "about:")) for u in seen.requests), seen.requests


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_site_mid_reads_between_attention_and_mlp(lenses, kind):
    from embedlens.logitlens import residual_states

    lens = lenses[kind]
    net = lens.model
    n = lens.meta["n_layers"]
    ids = np.asarray(lens.encode(TEXT))
    mid = residual_states(net, [ids], list(range(n)), site="mid")[:, 0]
    resid = residual_states(net, [ids], list(range(n + 1)))[:, 0]
    blocks = net.transformer.h if kind == "gpt2" else net.model.layers
    with torch.no_grad():
        for layer, block in enumerate(blocks):
            norm = block.ln_2 if kind == "gpt2" else block.post_attention_layernorm
            # the MLP's residual update on the mid state gives the block's output; attention made the mid state
            torch.testing.assert_close(mid[layer] + block.mlp(norm(mid[layer])), resid[layer + 1], rtol=1e-4, atol=1e-5)
            assert not torch.allclose(mid[layer], resid[layer])
    r = logit_lens(lens, TEXT, site="mid", dtype="float32", top_k=3)
    assert r.layers == list(range(n)) and r.settings["site"] == "mid"
    with torch.no_grad():
        logits = net.get_output_embeddings()((net.transformer.ln_f if kind == "gpt2" else net.model.norm)(mid))
    np.testing.assert_array_equal(r.top_ids[..., 0], logits.argmax(-1).numpy())
    with pytest.raises(EmbedlensError, match="site='resid'"):
        logit_lens(lens, TEXT, site="mid", decoder="tuned")


def test_eval_at_site_mid_reads_the_logit_lens_inside_blocks(lenses, corpus_file):
    from embedlens.corpus import open_corpus
    from embedlens.logitlens import residual_states
    from embedlens.tunedlens import evaluate_decoders
    from embedlens.tunedlens.data import corpus_tokens

    lens = lenses["llama"]
    ev = evaluate_decoders(lens, str(corpus_file), decoders=["logit"], tokens=32, seq_len=32, site="mid", dtype="float32",
                           product="float32")
    net, n = lens.model, lens.meta["n_layers"]
    assert ev.settings["site"] == "mid" and ev.kl_bits[0, -1] == 0.0
    seq = corpus_tokens(lens, open_corpus(str(corpus_file)), 32)
    with torch.no_grad():
        mid = residual_states(net, [seq], list(range(n)), site="mid")[:, 0]
        p = torch.log_softmax(net(input_ids=torch.from_numpy(seq)[None]).logits[0].double(), -1)
        q = torch.log_softmax(net.lm_head(net.model.norm(mid)).double(), -1)
        kl = ((p.exp() * (p - q)).sum(-1).mean(-1) / np.log(2)).numpy()
    np.testing.assert_allclose(ev.kl_bits[0, :-1], kl, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_bfloat16_product_stays_within_its_stated_tolerance(lenses, corpus_file, kind, monkeypatch):
    from embedlens import hardware
    from embedlens.tunedlens import evaluate_decoders, metrics

    lens = lenses[kind]
    kw = dict(decoders=["logit", random_lens(lens.meta["n_layers"], lens.meta["d_model"], seed=2)], tokens=64,
              seq_len=32, dtype="float32")
    exact = evaluate_decoders(lens, str(corpus_file), product="float32", **kw)
    if hardware.fast_bfloat16():
        fast = evaluate_decoders(lens, str(corpus_file), product="bfloat16", **kw)
        assert fast.settings["product"] == "bfloat16"
        assert evaluate_decoders(lens, str(corpus_file), product="auto", **kw).settings["product"] == "bfloat16"
        absolute, relative = metrics.BF16_KL_TOLERANCE
        np.testing.assert_allclose(fast.kl_bits, exact.kl_bits, rtol=relative, atol=absolute)
        assert (fast.kl_bits[:, -1] == 0).all() and not np.array_equal(fast.kl_bits, exact.kl_bits)
    monkeypatch.setattr(hardware, "fast_bfloat16", lambda: False)
    assert evaluate_decoders(lens, str(corpus_file), product="auto", **kw).settings["product"] == "float32"
    with pytest.raises(EmbedlensError, match="fast bfloat16 units"):
        evaluate_decoders(lens, str(corpus_file), product="bfloat16", **kw)
    # Refused before the weights are read, in evaluation and in training alike.
    from embedlens.logitlens import runtime as rt
    from embedlens.tunedlens import train_tuned_lens

    monkeypatch.setattr(rt, "weights", lambda *a, **k: pytest.fail("weights read before the product was checked"))
    with pytest.raises(EmbedlensError, match="fast bfloat16 units"):
        evaluate_decoders(lens, str(corpus_file), product="bfloat16", **kw)
    with pytest.raises(EmbedlensError, match="fast bfloat16 units"):
        train_tuned_lens(lens, str(corpus_file), tokens=64, heldout_tokens=32, seq_len=32, batch_tokens=32, steps=0,
                         dtype="float32", product="bfloat16", cache=False)


def test_context_hovers_decode_with_the_chosen_lens(lenses, tmp_path):
    """The context map's hover top-3 per layer: the logit lens decodes the state, the tuned lens its translation."""
    from embedlens.contextual.mapping import context_map
    from embedlens.render.context import decoded_lines

    lens = lenses["llama"]
    net, n = lens.model, lens.meta["n_layers"]
    tuned = random_lens(n, lens.meta["d_model"], seed=5)
    texts = [TEXT]
    maps = {name: context_map(lens, texts, layers="all", decoder=dec, reduce=ReduceOptions("pca"), progress=False)
            for name, dec in (("logit", "logit"), ("tuned", tuned))}
    tables = {name: m.panels[0].table for name, m in maps.items()}
    states = maps["logit"].panels[0].source.stacked()
    layer = np.asarray(tables["logit"]["layer"])
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(states, dtype=np.float32))
        w, b = torch.from_numpy(tuned.weight), torch.from_numpy(tuned.bias)
        top = {}
        for name in ("logit", "tuned"):
            moved = x.clone()
            if name == "tuned":
                inner = layer < n
                li = torch.from_numpy(layer[inner])
                moved[inner] = x[inner] + torch.einsum("rd,red->re", x[inner], w[li]) + b[li]
            normed = torch.where(torch.from_numpy(layer == n)[:, None], moved, net.model.norm(moved))
            top[name] = net.lm_head(normed).topk(3, -1).indices.numpy()
    for name in ("logit", "tuned"):
        np.testing.assert_array_equal(tables[name]["decoded_ids"], top[name])
    differ = (top["logit"][:, 0] != top["tuned"][:, 0])
    assert differ[layer < n].any() and not differ[layer == n].any()
    assert decoded_lines(tables["tuned"], np.arange(2))[0].startswith("<br>tuned lens: ")
    assert decoded_lines(tables["logit"], np.arange(2))[0].startswith("<br>logit lens: ")


@pytest.mark.parametrize("spec, message", [("nowhere/lens", "no such tuned lens"), ("tuned", "has no tuned lens yet")])
def test_context_bad_lens_is_one_line_exit_2_before_weights(lenses, tiny_llama_dir, tmp_path, run_cli, monkeypatch,
                                                            spec, message):
    import embedlens.models.loading as loading

    monkeypatch.setenv("EMBEDLENS_CACHE", str(lenses["llama"].entry.folder.parents[1]))
    monkeypatch.setattr(loading, "load_weights", lambda *a, **k: pytest.fail("weights were read"))
    res = run_cli("context", "some text here", "-m", str(tiny_llama_dir), "--lens", str(tmp_path / spec) if "/" in spec
                  else spec, "--out", str(tmp_path / "o"))
    assert res.code == 2 and res.err.startswith("embedlens: error: ") and message in res.err, res
    assert res.err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_context_tuned_lens_hover_in_chromium(lenses, tmp_path, offline_page):
    """The hover names the tuned lens and shows its tokens exactly as their readable form, offline."""
    from embedlens.contextual import context_map
    from embedlens.render.offline import write_plotly_html
    from embedlens.tunedlens import TunedLens

    lens = lenses["llama"]
    tuned = TunedLens.zeros(lens.meta["n_layers"], lens.meta["d_model"])
    cmap = context_map(lens, [TEXT], layers="0,1", decoder=tuned, reduce=ReduceOptions("pca"), progress=False)
    hostile = np.asarray(["<script>alert(1)</script>", '"quoted"', "&amp;"], dtype=object)
    cmap.panels[0].table["decoded_display"][:] = hostile
    fig = cmap.figure()
    hovered = [i for i, tr in enumerate(fig.data) if tr.hovertext is not None and tr.visible is not False][0]
    write_plotly_html(fig, tmp_path / "tuned.html")
    page, seen = offline_page(tmp_path / "tuned.html")
    shown = page.evaluate("""async (c) => {
        const wait = (ok) => new Promise((done) => { const t = setInterval(() => { if (ok()) { clearInterval(t);
            done(); } }, 50); });
        await wait(() => document.querySelector('.js-plotly-plot') && document.querySelector('.js-plotly-plot')._fullData);
        const plot = document.querySelector('.js-plotly-plot');
        Plotly.Fx.hover(plot, [{curveNumber: c, pointNumber: 0}]);
        await wait(() => document.querySelector('.hoverlayer').textContent.includes('lens:'));
        return document.querySelector('.hoverlayer').textContent; }""", hovered)
    assert "tuned lens: <script>alert(1)</script> " in shown and '"quoted" ' in shown and "&amp; " in shown, shown
    assert "logit lens" not in shown and seen.dialogs == [] and seen.errors == []
    assert all(u.startswith(("file://", "data:", "about:")) for u in seen.requests), seen.requests


def test_eval_of_a_soft_capped_head_equals_a_direct_computation(lenses, corpus_file, monkeypatch):
    """A soft-capped head (Gemma) is not linear in the state: the KL's cross term is read from the logits."""
    from embedlens.corpus import open_corpus
    from embedlens.models.forward import runner_for
    from embedlens.tunedlens import evaluate_decoders
    from embedlens.tunedlens.data import corpus_tokens

    lens = lenses["llama"]
    net, n, cap = lens.model, lens.meta["n_layers"], 0.5
    monkeypatch.setattr(runner_for(lens, net), "softcap", cap)
    tuned = random_lens(n, lens.meta["d_model"], seed=4)
    ev = evaluate_decoders(lens, str(corpus_file), decoders=["logit", tuned], tokens=32, seq_len=32, dtype="float32",
                           product="float32")
    seq = torch.from_numpy(corpus_tokens(lens, open_corpus(str(corpus_file)), 32))[None]
    with torch.no_grad():
        out = net(input_ids=seq, output_hidden_states=True)
        capped = lambda z: torch.log_softmax((torch.tanh(z / cap) * cap).double(), -1)  # noqa: E731
        p = capped(out.logits[0])
        for di, dec in enumerate((None, tuned)):
            for layer in range(n):
                h = out.hidden_states[layer][0]
                if dec is not None:
                    h = h + h @ torch.from_numpy(dec.weight[layer]).T + torch.from_numpy(dec.bias[layer])
                q = capped(net.lm_head(net.model.norm(h)))
                kl = float((p.exp() * (p - q)).sum(-1).mean() / np.log(2))
                assert ev.kl_bits[di, layer] == pytest.approx(kl, rel=1e-4, abs=1e-6)
                assert ev.top1_agreement[di, layer] == pytest.approx(float((q.argmax(-1) == p.argmax(-1)).double().mean()))
