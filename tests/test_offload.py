"""Models larger than the memory they may use: a ``max_memory`` budget offloads the blocks that do not fit
(accelerate's ``device_map="auto"``), with results equal to an unconstrained run; refusals where it cannot.

A tiny random Llama (4 blocks of 37,120 bytes in float32, 227 KB in all) and budgets that force offload.
"""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

import embedlens
from embedlens.errors import EmbedlensError

from .scale_fixtures import build_checkpoint

TEXT = "the bank of the river is near the capital"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """The tiny Llama as safetensors and as a ``.bin``, with its float32 size and one block's."""
    import torch

    from embedlens.models.partial import estimate_bytes
    from embedlens.models.weights import folder_config

    root = tmp_path_factory.mktemp("offload")
    folder = build_checkpoint(root / "st", "llama")
    need, per_block = estimate_bytes(folder_config(folder), torch.float32)
    assert 4 * per_block < need < 300_000
    return {"st": folder, "bin": build_checkpoint(root / "bin", "llama", "bin"), "need": need, "block": per_block}


def _budget(ckpt) -> int:
    """Room for the embedding and one block: the other blocks, the norm and the head go to the disk."""
    return int(0.6 * ckpt["need"])


def _on_disk(model) -> list[str]:
    return [k for k, v in model.hf_device_map.items() if v == "disk"]


def test_logit_lens_under_a_budget_equals_the_unconstrained_run(ckpt, cache_dir, run_cli, tmp_path):
    from embedlens.models.runtime import using

    folder = str(ckpt["st"])
    free = run_cli("logit-lens", TEXT, "--model", folder, "--device", "cpu", "--json", "--out", str(tmp_path / "a"))
    capped = run_cli("logit-lens", TEXT, "--model", folder, "--device", "cpu", "--json", "--max-memory",
                     f"{_budget(ckpt)}B", "--out", str(tmp_path / "b"))
    assert free.code == 0 and capped.code == 0, (free, capped)
    a, b = json.loads(free.out), json.loads(capped.out)
    assert a["top_ids"] == b["top_ids"] and a["target_rank"] == b["target_rank"]
    np.testing.assert_array_equal(np.asarray(a["top_probs"]), np.asarray(b["top_probs"]))
    loaded = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "offloaded" in json.dumps(loaded)  # the manifest says what was offloaded
    with using(device="cpu", max_memory=_budget(ckpt)):
        model = embedlens.load(folder).model
    disk = _on_disk(model)
    assert disk and model.embedlens_loaded["max_memory"] == _budget(ckpt)
    assert any(k.startswith("model.layers") or k == "lm_head" for k in disk), model.hf_device_map
    assert model.lm_head.weight.is_meta  # really not in memory until it runs


@pytest.mark.parametrize("layer", ["-1", "1"])
def test_context_states_under_a_budget_equal_the_unconstrained_run(ckpt, cache_dir, run_cli, tmp_path, layer):
    from safetensors.numpy import load_file

    states = []
    for extra in ([], ["--max-memory", str(_budget(ckpt))]):
        out = tmp_path / f"ctx{len(extra)}"
        r = run_cli("context", TEXT, "the capital of the bank", "--model", str(ckpt["st"]), "--layer", layer,
                    "--method", "pca", "--device", "cpu", "--no-html", "--no-png", "--out", str(out), *extra)
        assert r.code == 0, r
        states.append(load_file(str(out / "states.safetensors")))
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        np.testing.assert_array_equal(states[0][k], states[1][k])


def test_hidden_states_at_an_early_layer_run_the_offloaded_model_only_that_far(ckpt, cache_dir):
    from embedlens.contextual.states import hidden_states
    from embedlens.models.running import network
    from embedlens.models.runtime import using

    budget = 2 * ckpt["block"] + 1000  # less than the embedding, block 0, the norm and the head together
    with using(device="cpu", max_memory=budget):
        lens = embedlens.load(str(ckpt["st"]))
        capped = hidden_states(lens, [TEXT], layers="1")
        net = network(lens, 1)
    assert _on_disk(net) and net.embedlens_loaded["blocks"] == [0, 1]
    free = hidden_states(embedlens.load(str(ckpt["st"])), [TEXT], layers="1")
    np.testing.assert_array_equal(capped.texts[0].states, free.texts[0].states)


def test_weights_written_for_offload_live_under_the_cache_and_go_with_the_model(ckpt, cache_dir):
    from embedlens.models.loading import load_weights

    model = load_weights(str(ckpt["bin"]), device="cpu", max_memory=_budget(ckpt))  # a .bin is re-saved to offload
    spills = [p for p in (cache_dir / "offload").iterdir()]
    assert _on_disk(model) and len(spills) == 1 and any(spills[0].rglob("*"))
    del model
    gc.collect()
    assert not spills[0].exists()
    model = load_weights(str(ckpt["st"]), device="cpu", max_memory=_budget(ckpt))  # safetensors: read in place
    assert _on_disk(model) and not list((cache_dir / "offload").iterdir())


def test_what_offload_cannot_do_is_refused_in_one_line(ckpt, cache_dir, run_cli, tmp_path):
    from embedlens.models.loading import load_weights

    r = run_cli("logit-lens", TEXT, "--model", str(ckpt["st"]), "--max-memory", f"{ckpt['block'] // 2}B",
                "--out", str(tmp_path / "o"))
    last = r.err.strip().splitlines()[-1]  # after the note of the first extraction
    assert r.code == 2 and last.startswith("embedlens: error:") and "is less than one block" in last, r
    r = run_cli("context", TEXT, "--model", str(ckpt["st"]), "--max-memory", "lots", "--out", str(tmp_path / "o"))
    assert r.code == 2 and "not a size" in r.err, r
    with pytest.raises(EmbedlensError, match="not from a middle block"):  # the grid's partial load, from block 2
        load_weights(str(ckpt["st"]), blocks=range(2, 4), embeddings=False, max_memory=2 * ckpt["block"] + 1000)
    # a budget the whole model fits: no offload at all
    assert load_weights(str(ckpt["st"]), max_memory="1GB").embedlens_loaded["device_map"] is None


def test_a_gguf_model_is_refused_before_it_is_dequantized(ckpt, cache_dir, monkeypatch, tmp_path):
    from embedlens.models import loading, weights
    from embedlens.models.specs import ModelSource

    def no_dequantize(*a, **k):
        raise AssertionError("the GGUF was dequantized")

    monkeypatch.setattr(weights, "_dequantize_gguf", no_dequantize)
    monkeypatch.setattr(loading, "load_config", lambda source: weights.folder_config(ckpt["st"]))  # its metadata
    gguf = ModelSource("tiny.gguf", "tiny", "gguf", tmp_path / "tiny.gguf", ())
    with pytest.raises(EmbedlensError, match="a GGUF model is dequantized whole in memory"):
        loading.load_weights(gguf, device="cpu", dtype="float32", max_memory=_budget(ckpt))


def test_memory_sizes_parse_as_accelerate_reads_them():
    from embedlens.models.runtime import parse_memory

    assert parse_memory("2GB") == 2 * 10**9 and parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("1.5G") == int(1.5 * 2**30) and parse_memory(4096) == 4096 and parse_memory("300B") == 300
    for bad in ("", "two GB", "-1GB", "0", "5XB"):
        with pytest.raises(EmbedlensError):
            parse_memory(bad)


def test_on_a_gpu_the_budget_is_the_gpus_and_the_rest_goes_to_the_cpu(monkeypatch):
    import torch

    from embedlens.models import offload

    monkeypatch.setattr("embedlens.hardware.available_memory", lambda: 10 << 30)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert offload._budgets("cuda:1", 4 << 30) == {1: 4 << 30, "cpu": 9 << 30}
    assert offload._budgets("cuda", 4 << 30) == {0: 4 << 30, "cpu": 9 << 30}
    assert offload._budgets("cpu", 4 << 30) == {"cpu": 4 << 30}  # and accelerate's next stop, the disk
