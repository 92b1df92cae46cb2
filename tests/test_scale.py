"""Models at scale: matrices read straight from checkpoints, only the blocks a job needs, device and dtype
choice, fail-fast checks, and every bad input of issue 13."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError

from .scale_fixtures import PADDED, build_checkpoint

FAMILIES = ["gpt2", "llama", "qwen2", "gemma3", "bert"]
LAYOUTS = ["single", "sharded", "bin"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """``checkpoints(kind, layout)`` -> folder, built once per module."""
    root = tmp_path_factory.mktemp("scale-ckpt")
    made: dict = {}

    def get(kind: str, layout: str = "single"):
        if (kind, layout) not in made:
            made[kind, layout] = build_checkpoint(root / f"{kind}-{layout}", kind, layout)
        return made[kind, layout]

    return get


def _reference(folder, kind):
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    cls = AutoModel if kind == "bert" else AutoModelForCausalLM
    model = cls.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True).eval()
    return model


# -- 1. matrices without the network ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", FAMILIES)
def test_extracted_matrices_equal_the_model(checkpoints, cache_dir, kind, layout, monkeypatch):
    folder = checkpoints(kind, layout)
    import embedlens.models.loading as loading

    def no_network(*a, **k):
        raise AssertionError("extraction must not build the network")

    monkeypatch.setattr(loading, "load_weights", no_network)
    monkeypatch.setattr(loading, "load_model", no_network)
    lens = embedlens.load(str(folder))
    monkeypatch.undo()
    model = _reference(folder, kind)
    w_in = model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(np.asarray(lens.space.vectors), w_in)
    head = model.get_output_embeddings() if kind != "bert" else None
    if head is None:
        assert not lens.meta["has_output"]
    else:
        np.testing.assert_array_equal(np.asarray(lens.output_space.vectors), head.weight.detach().numpy())
        assert lens.meta["tied"] == (kind != "llama")
        assert (lens.entry.output is None) == lens.meta["tied"]
    np.testing.assert_allclose(lens.space.norms, np.linalg.norm(w_in, axis=1), rtol=1e-6)
    assert lens.meta["checkpoint_format"] == ("bin" if layout == "bin" else "safetensors")


@pytest.mark.parametrize("kind", ["qwen2", "gemma3"])
def test_padded_rows_are_kept_and_shown_as_unused(checkpoints, cache_dir, run_cli, kind):
    folder = checkpoints(kind)
    lens = embedlens.load(str(folder))
    n_tok = lens.meta["n_tokenizer"]
    assert lens.meta["padded_rows"] == PADDED and lens.meta["n_vocab"] == n_tok + PADDED
    assert lens.space.display[n_tok] == f"⟨unused {n_tok}⟩"
    assert lens.space.display[-1] == f"⟨unused {n_tok + PADDED - 1}⟩"
    last = n_tok + PADDED - 1
    r = run_cli("neighbors", f"id:{last}", "--model", str(folder), "-k", "3", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["query_ids"] == [last]
    # a neighbour list over the whole matrix shows padded rows by their label, never crashes
    r = run_cli("neighbors", "id:5", "--model", str(folder), "-k", str(n_tok + PADDED - 1), "--json")
    assert r.code == 0, r
    shown = {n["display"] for n in json.loads(r.out)["neighbors"]}
    assert f"⟨unused {last}⟩" in shown


def _gguf_token_embd(lens, arch: str, reader_class=None):
    """token_embd as transformers converts it: whole-tensor ``gguf.dequantize`` + the architecture's tensor
    processor, as ``load_gguf_checkpoint`` does. ``reader_class`` defaults to gguf's own reader."""
    from gguf import GGUFReader, dequantize
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    reader = (reader_class or GGUFReader)(str(lens.source.path))
    (t,) = [t for t in reader.tensors if t.name == "token_embd.weight"]
    proc = TENSOR_PROCESSORS.get(arch, TensorProcessor)(config={})
    weights = proc.process(weights=dequantize(t.data, t.tensor_type), name=t.name, tensor_key_mapping={},
                           parsed_parameters={"config": {}}).weights
    return weights, reader


@pytest.mark.real_model
def test_smollm2_gguf_matrix_equals_transformers_dequantization(smollm2):
    """token_embd read by the gguf reader block by block equals transformers' GGUF conversion of it."""
    ref, reader = _gguf_token_embd(smollm2, "llama")
    np.testing.assert_array_equal(np.asarray(smollm2.space.vectors), ref)
    assert smollm2.meta["source_tensors"]["input"]["name"] == "token_embd.weight"
    assert smollm2.meta["tied"] and not any(t.name == "output.weight" for t in reader.tensors)


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.xdist_group("gemma")
def test_gemma_gguf_matrix_equals_transformers_dequantization(gemma3):
    """The same for the real Gemma 3 270M (Q8_0 token_embd, 262,144 x 640). Its file is indexed by the fast
    reader, which equals gguf's own field for field and byte for byte (test_gguf_reader.py, and the SmolLM2
    test above through gguf's own reader): gguf's own takes ~30 s over Gemma's vocabulary metadata."""
    from embedlens.models.gguf_reader import reader_class

    ref, _ = _gguf_token_embd(gemma3, "gemma3", reader_class())
    np.testing.assert_array_equal(np.asarray(gemma3.space.vectors), ref)
    assert gemma3.meta["tied"] and gemma3.meta["embed_scale"] == pytest.approx(640 ** 0.5)


def test_sharded_reads_are_memory_mapped_and_blockwise(checkpoints, monkeypatch):
    from embedlens.models import checkpoint as C

    folder = checkpoints("llama", "sharded")
    ck = C.Checkpoint(folder)
    assert len({ck.info(n).file for n in ck.names()}) > 1
    monkeypatch.setattr(C, "BLOCK_BYTES", 32 * 4 * 7)  # 7 rows per block
    full = ck.float32("model.embed_tokens.weight")
    blocks = list(ck.row_blocks("model.embed_tokens.weight"))
    assert len(blocks) > 10 and blocks[0] == (0, 7)
    t = ck.torch("model.embed_tokens.weight")
    np.testing.assert_array_equal(t.numpy(), full)


def test_bf16_rows_convert_exactly():
    import torch

    from embedlens.models.checkpoint import bf16_to_float32

    x = torch.randn(50, 9).to(torch.bfloat16)
    got = bf16_to_float32(x.view(torch.int16).numpy().view(np.uint16))
    np.testing.assert_array_equal(got, x.float().numpy())


# -- bad checkpoints --------------------------------------------------------------------------------------


def _copy(folder, tmp_path):
    import shutil

    dst = tmp_path / folder.name
    shutil.copytree(folder, dst)
    return dst


def test_checkpoint_without_embedding_names_it(checkpoints, cache_dir, tmp_path, run_cli):
    from safetensors.numpy import load_file, save_file

    folder = _copy(checkpoints("llama"), tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.embed_tokens.weight"]
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    r = run_cli("neighbors", "the", "--model", str(folder))
    last = r.err.strip().splitlines()[-1]
    assert r.code == 2 and last.startswith("embedlens: error:") and "'model.embed_tokens.weight'" in last, r


def test_missing_shard_is_named(checkpoints, cache_dir, tmp_path, run_cli):
    folder = _copy(checkpoints("llama", "sharded"), tmp_path)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[-1]
    (folder / victim).unlink()
    r = run_cli("neighbors", "the", "--model", str(folder))
    assert r.code == 2 and victim in r.err and "missing" in r.err, r


def test_untied_config_without_head_is_refused(checkpoints, cache_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = _copy(checkpoints("llama"), tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["lm_head.weight"]
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(EmbedlensError, match="lm_head.weight"):
        embedlens.load(str(folder))


# -- 2. only the blocks a job needs -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gpt2", "llama", "gemma3"])
def test_partial_grid_equals_full_grid(checkpoints, cache_dir, kind):
    from embedlens.grid import EmbeddingGridVisualizer
    from embedlens.models.loading import load_model

    folder = checkpoints(kind, "sharded")
    lens = embedlens.load(str(folder))
    model, tok = load_model(str(folder))
    full = EmbeddingGridVisualizer(model, tok, dtype="float32")
    n = full.n_layers
    for layer in sorted({0, 1, n - 1, n}):
        part = EmbeddingGridVisualizer(lens, layer_idx=layer, dtype="float32", device="cpu")
        a = part.compute_map(6, 0.7, "random_projection", progress=False)
        b = full.compute_map(6, 0.7, "random_projection", layer_idx=layer, progress=False)
        np.testing.assert_array_equal(a.token_ids, b.token_ids)
        np.testing.assert_array_equal(a.probs, b.probs)
        loaded = a.config["loaded"]
        assert loaded["blocks"] == [layer, n] and a.config["device"] == "cpu" and a.config["dtype"] == "float32"
        blocks = part.runner.parts.blocks
        assert all(p.is_meta for i in range(layer) for p in blocks[i].parameters())
        assert not any(p.is_meta for i in range(layer, n) for p in blocks[i].parameters())


def test_untied_grid_does_not_read_the_input_embedding_from_the_checkpoint(checkpoints, cache_dir, monkeypatch):
    from embedlens.grid import EmbeddingGridVisualizer
    from embedlens.models import checkpoint as C

    folder = checkpoints("llama", "single")
    lens = embedlens.load(str(folder))
    read: list[str] = []
    orig = C.Checkpoint.torch
    monkeypatch.setattr(C.Checkpoint, "torch", lambda self, name: (read.append(name), orig(self, name))[1])
    viz = EmbeddingGridVisualizer(lens, layer_idx=3, dtype="float32", device="cpu")
    viz.compute_map(4, 0.5, progress=False)
    assert "model.embed_tokens.weight" not in read
    assert not any(name.startswith(("model.layers.0.", "model.layers.1.", "model.layers.2.")) for name in read)
    assert "lm_head.weight" in read and any(name.startswith("model.layers.3.") for name in read)


@pytest.mark.parametrize("kind", ["gpt2", "llama", "bert"])
def test_truncated_contextual_states_equal_output_hidden_states(checkpoints, cache_dir, kind):
    import torch

    from embedlens.contextual.states import hidden_states
    from embedlens.models.loading import load_weights

    folder = checkpoints(kind)
    texts = ["The capital of France is Paris.", "A list of lists"]
    lens = embedlens.load(str(folder))
    n = lens.meta["n_layers"]
    part = hidden_states(lens, texts, layers=f"0,{n - 1}", keep_special=True, batch_size=1)
    nets = lens.__dict__["_partial_networks"]
    assert list(nets) == [n - 1] and nets[n - 1].embedlens_loaded["blocks"] == [0, n - 1]
    full = hidden_states(embedlens.load(str(folder)), texts, layers="all", keep_special=True, batch_size=1)
    model = load_weights(str(folder))
    base = getattr(model, "base_model", model)
    for t, ts, fs in zip(texts, part.texts, full.texts, strict=True):
        ids = torch.tensor([lens.encode(t)])
        with torch.no_grad():
            ref = base(input_ids=ids, output_hidden_states=True).hidden_states
        for j, layer in enumerate(part.layers):
            np.testing.assert_array_equal(ts.states[j], fs.states[layer])  # same path, whole network: identical
            np.testing.assert_allclose(ts.states[j], ref[layer][0].numpy(), rtol=1e-5, atol=1e-5)


# -- 3. device and precision ----------------------------------------------------------------------------


def test_choose_device_and_dtype(monkeypatch):
    import torch

    from embedlens.models import runtime as R

    assert R.choose_device("cpu") == "cpu"
    assert R.choose_device("auto") in ("cpu", "cuda", "mps")
    for bad in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(EmbedlensError, match="unknown device"):
            R.choose_device(bad)
    assert R.choose_dtype("float32") == torch.float32 and R.choose_dtype("bf16") == torch.bfloat16
    with pytest.raises(EmbedlensError, match="unknown dtype 'fp8'"):
        R.choose_dtype("fp8")
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: True)
    assert R.choose_dtype("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda: False)
    assert R.choose_dtype("auto", "cpu") == torch.float32


def test_cuda_without_gpu_and_bf16_without_support(monkeypatch):
    import torch

    from embedlens.models import runtime as R

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EmbedlensError, match="no CUDA GPU"):
        R.choose_device("cuda")
    with pytest.raises(EmbedlensError, match="no CUDA GPU"):
        R.choose_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(EmbedlensError, match="bfloat16 was asked for on cuda"):
        R.choose_dtype("bfloat16", "cuda")
    assert R.choose_dtype("auto", "cuda", checkpoint_dtype="bfloat16") == torch.float16  # falls back


def test_auto_dtype_on_gpu_is_the_checkpoint_dtype(monkeypatch):
    import torch

    from embedlens.models import runtime as R

    monkeypatch.setattr(R, "supports", lambda device, dtype: True)
    assert R.choose_dtype("auto", "cuda", checkpoint_dtype="float16") == torch.float16
    assert R.choose_dtype("auto", "cuda", checkpoint_dtype="bfloat16") == torch.bfloat16
    assert R.choose_dtype("auto", "cuda:1", checkpoint_dtype=torch.float32) == torch.float32


def test_bfloat16_partial_load_and_process_defaults(checkpoints):
    import torch

    from embedlens.models import runtime as R
    from embedlens.models.loading import load_weights

    folder = checkpoints("llama", "sharded")
    with R.using(device="cpu", dtype="bfloat16"):
        m = load_weights(str(folder), blocks=range(2, 4))
    assert m.embedlens_loaded["dtype"] == "bfloat16" and m.embedlens_loaded["blocks"] == [2, 4]
    assert m.model.layers[3].mlp.up_proj.weight.dtype == torch.bfloat16
    assert m.model.layers[0].mlp.up_proj.weight.is_meta
    assert load_weights(str(folder)).lm_head.weight.dtype == torch.float32  # defaults restored


def test_memory_guard_states_estimate_and_what_fits(checkpoints, monkeypatch):
    from embedlens.models import runtime as R
    from embedlens.models.loading import load_weights

    folder = checkpoints("llama", "single")
    monkeypatch.setattr(R, "free_memory", lambda device: 60_000)
    with pytest.raises(EmbedlensError) as info:
        load_weights(str(folder), dtype="float32")
    msg = str(info.value)
    assert "needs about" in msg and "free" in msg and "blocks would fit" in msg and "bfloat16 halves" in msg
    with pytest.raises(EmbedlensError, match="blocks would fit"):
        load_weights(str(folder), dtype="float32", blocks=range(0, 4))
    monkeypatch.setattr(R, "free_memory", lambda device: 10 << 30)
    assert load_weights(str(folder), dtype="float32").embedlens_loaded["materialised_bytes"] > 60_000


def test_model_larger_than_one_gpu_gets_device_map_auto(monkeypatch):
    import torch

    from embedlens.models import partial as P
    from embedlens.models import runtime as R
    from embedlens.models.specs import ModelSource

    monkeypatch.setattr(R, "free_memory", lambda device: 1 << 30)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=None: (1 << 30, 2 << 30))
    monkeypatch.setattr("embedlens.hardware.available_memory", lambda: 8 << 30)
    src = ModelSource("x", "x", "folder", __import__("pathlib").Path("."))
    assert P.check_fits(src, 3 << 30, "cuda") == "auto"
    assert P.check_fits(src, 100 << 20, "cuda") is None
    with pytest.raises(EmbedlensError, match="needs about"):
        P.check_fits(src, 64 << 30, "cuda")


# -- 4. fail fast -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["grid", "--layer-idx", "99"], "out of range"),
    (["grid", "--layer-idx", "1,99"], "out of range"),
    (["grid", "--grid-size", "0"], "grid"),
    (["grid", "--batch-size", "0"], "--batch-size"),
    (["grid", "--embedding-method", "tokens", "--plane-tokens", "The,capital"], "three"),
    (["grid", "--embedding-method", "tokens", "--plane-tokens", "The,capital,zzqqxxjj"], "not exactly one"),
    (["grid", "--device", "tpu"], "unknown device"),
    (["context", "The capital", "--layer", "99"], "out of range"),
    (["context", "The capital", "--device", "tpu"], "unknown device"),
])
def test_bad_options_are_refused_before_any_weight_is_read(checkpoints, cache_dir, run_cli, monkeypatch, tmp_path,
                                                             args, message):
    folder = checkpoints("llama")
    embedlens.load(str(folder))  # the cache entry exists, as after any first use
    import embedlens.models.loading as loading

    def no_weights(*a, **k):
        raise AssertionError("weights were read")

    monkeypatch.setattr(loading, "load_weights", no_weights)
    monkeypatch.setattr(loading, "_load_full", no_weights)
    out = "--output-dir" if args[0] == "grid" else "--out"
    r = run_cli(*args, "--model", str(folder), out, str(tmp_path / "out"))
    assert r.code == 2, r
    assert message in r.err and len(r.err.strip().splitlines()) == 1, r


def test_grid_cli_records_device_dtype_and_blocks(checkpoints, cache_dir, run_cli, tmp_path):
    folder = checkpoints("gpt2")
    r = run_cli("grid", "--model", str(folder), "--layer-idx", "2", "--grid-size", "4", "--dtype", "float32",
                "--device", "cpu", "--no-html", "--output-dir", str(tmp_path / "g"))
    assert r.code == 0, r
    m = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert m["device"] == "cpu" and m["dtype"] == "float32"
    assert m["loaded"]["blocks"] == [2, 3] and m["loaded"]["device"] == "cpu"
