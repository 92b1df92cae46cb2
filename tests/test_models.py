"""Model specs, the architecture table, and extraction on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError
from embedlens.models import load_model, model_parts, resolve


def test_tiny_models_load_and_extract(tiny_model_dir, cache_dir):
    lens = embedlens.load(str(tiny_model_dir))
    model, tok = load_model(str(tiny_model_dir))
    parts = model_parts(model)
    weight = parts.embed.weight.detach().numpy()
    assert lens.space.vectors.shape == (len(tok), weight.shape[1])
    np.testing.assert_array_equal(np.asarray(lens.space.vectors), weight[: len(tok)])
    assert lens.meta["n_layers"] == parts.n_layers
    assert list(lens.space.labels) == tok.convert_ids_to_tokens(list(range(len(tok))))


def test_token_ids_equal_the_model_tokenizer(tiny_model_dir, cache_dir):
    lens = embedlens.load(str(tiny_model_dir))
    _, tok = load_model(str(tiny_model_dir))
    for text in ["The capital of France is", "lists of <script> tokens", "  spaced\tout\nlines"]:
        assert lens.tokens(text).rows and [r.id for r in lens.tokens(text).rows] == tok(text)["input_ids"]


def test_untied_llama_keeps_its_output_matrix(tiny_llama_dir, cache_dir):
    lens = embedlens.load(str(tiny_llama_dir))
    model, _ = load_model(str(tiny_llama_dir))
    assert not lens.meta["tied"]
    np.testing.assert_array_equal(np.asarray(lens.output_space.vectors), model.lm_head.weight.detach().numpy())


def test_tied_gpt2_output_is_input(tiny_gpt2_dir, cache_dir):
    lens = embedlens.load(str(tiny_gpt2_dir))
    assert lens.meta["tied"] and lens.output_space is lens.space


def test_bert_has_no_output_space(tiny_bert_dir, cache_dir):
    lens = embedlens.load(str(tiny_bert_dir))
    assert lens.meta["family"] == "bert" and not lens.meta["causal"]
    with pytest.raises(EmbedlensError, match="no LM head"):
        _ = lens.output_space


@pytest.mark.parametrize(
    "spec, message",
    [("no-such-alias-xyz", "unknown model"), ("./missing/folder", "no such model"), ("", "empty model spec")],
)
def test_bad_specs(spec, message, cache_dir):
    with pytest.raises(EmbedlensError, match=message):
        resolve(spec)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(EmbedlensError, match="not a model"):
        resolve(str(tmp_path))


def test_file_that_is_not_gguf_is_refused(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(EmbedlensError, match="not a .gguf"):
        resolve(str(f))


def test_unsupported_architecture_is_named(tmp_path, cache_dir):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    GPTNeoXForCausalLM(cfg).save_pretrained(str(tmp_path))
    from tests.conftest import _train_tokenizer

    _train_tokenizer(tmp_path)
    with pytest.raises(EmbedlensError, match="architecture 'gpt_neox' is not supported"):
        embedlens.load(str(tmp_path))


def test_hub_cache_name_resolves_offline(tiny_gpt2_dir, tmp_path, monkeypatch):
    import shutil

    snap = tmp_path / "hub" / "models--someone--tiny" / "snapshots" / "abc123"
    shutil.copytree(tiny_gpt2_dir, snap)
    (tmp_path / "hub" / "models--someone--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    src = resolve("someone/tiny")
    assert src.kind == "folder" and src.path == snap


def test_copy_weights_refuses_a_missing_or_unknown_name(tiny_llama_dir):
    """A GGUF copy whose names do not all match must not run with random weights (it used strict=False)."""
    import torch
    from transformers import AutoModelForCausalLM

    from embedlens.errors import EmbedlensError
    from embedlens.models.weights import copy_weights

    source = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    full = source.state_dict()
    target = AutoModelForCausalLM.from_config(source.config)
    copy_weights(target, full, "tiny")  # every name matches: loads
    for name, p in target.state_dict().items():
        assert torch.equal(p, full[name]), name
    dropped = {k: v for k, v in full.items() if k != "model.layers.0.mlp.up_proj.weight"}
    with pytest.raises(EmbedlensError, match=r"missing from the file: model\.layers\.0\.mlp\.up_proj\.weight"):
        copy_weights(AutoModelForCausalLM.from_config(source.config), dropped, "tiny")
    renamed = {("model.layers.0.mlp.up.weight" if k == "model.layers.0.mlp.up_proj.weight" else k): v
               for k, v in full.items()}
    with pytest.raises(EmbedlensError, match=r"not in the architecture: model\.layers\.0\.mlp\.up\.weight"):
        copy_weights(AutoModelForCausalLM.from_config(source.config), renamed, "tiny")


def test_a_failed_dequantized_save_says_so(tiny_llama_dir, tmp_path, monkeypatch):
    """The GGUF copy's save used to swallow OSError: the next load then failed far from the cause."""
    import contextlib
    from types import SimpleNamespace

    import transformers

    from embedlens.errors import EmbedlensError
    from embedlens.models import weights

    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    config = transformers.AutoConfig.from_pretrained(str(tiny_llama_dir))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: model)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda *a, **k: config)

    @contextlib.contextmanager
    def full_disk(target):
        raise OSError(28, "No space left on device")
        yield

    monkeypatch.setattr(weights, "atomic_dir", full_disk)
    fake = SimpleNamespace(folder=tiny_llama_dir, path=tiny_llama_dir / "model.gguf", spec="tiny.gguf")
    with pytest.raises(EmbedlensError, match="could not write the dequantized copy of tiny.gguf .*No space left"):
        weights._dequantize_gguf(fake, tmp_path / "dequantized")


def test_a_gguf_is_dequantized_once_when_two_loads_race(tmp_path, cache_dir, monkeypatch):
    """The second of two simultaneous loads waits for the first's dequantized copy instead of making its own."""
    import threading
    import time

    from embedlens.models import weights
    from embedlens.models.specs import ModelSource

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF not read: the dequantizer is replaced")
    source = ModelSource(spec=str(gguf), name="m", kind="gguf", path=gguf, files=(gguf,))
    calls = []

    def dequantize(src, saved):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to find the copy missing
        saved.mkdir(parents=True)
        (saved / "config.json").write_text("{}")
        (saved / "model.safetensors").write_bytes(b"")

    monkeypatch.setattr(weights, "_dequantize_gguf", dequantize)
    found = []
    threads = [threading.Thread(target=lambda: found.append(weights.weights_folder(source))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert found == [weights.model_entry_dir(source) / "dequantized"] * 2


def _initialised_meta_model(config, dtype):
    """The meta model the way it was built before: transformers' weight initialisation run on meta tensors."""
    from accelerate import init_empty_weights

    from embedlens.models.weights import _model_class

    with init_empty_weights(include_buffers=False):
        return _model_class(config).from_config(config, dtype=dtype)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma3"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_meta_model_without_initialisation_equals_the_initialised_one(kind, dtype, request):
    """Skipping the initialisation changes nothing the loader keeps: every parameter on meta with the same name,
    shape, dtype and sharing, and every buffer (rotary frequencies, Gemma's embedding scale) bit for bit."""
    import torch
    from transformers import Gemma3TextConfig

    from embedlens.models.partial import meta_model
    from embedlens.models.weights import folder_config

    if kind == "gemma3":
        config = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=4,
                                  layer_types=["sliding_attention", "full_attention"],
                                  architectures=["Gemma3ForCausalLM"])
    else:
        config = folder_config(request.getfixturevalue(f"tiny_{kind}_dir"))
    torch_dtype = getattr(torch, dtype)
    new, old = meta_model(config, torch_dtype), _initialised_meta_model(config, torch_dtype)

    def params(model):
        ids = {}
        return [(name, tuple(p.shape), p.dtype, p.is_meta, ids.setdefault(id(p), len(ids)))
                for name, p in model.named_parameters(remove_duplicate=False)]

    assert params(new) == params(old)
    assert all(p.is_meta for p in new.parameters())
    old_buffers, new_buffers = dict(old.named_buffers()), dict(new.named_buffers())
    assert new_buffers.keys() == old_buffers.keys()
    assert kind == "gpt2" or new_buffers  # rotary models have buffers to compare
    for name, buf in new_buffers.items():
        assert buf.dtype == old_buffers[name].dtype and torch.equal(buf, old_buffers[name]), name
