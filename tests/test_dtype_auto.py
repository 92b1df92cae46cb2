"""``--dtype auto`` is one answer everywhere: the checkpoint's dtype on a GPU, whichever command loads it.

A float16 tiny checkpoint on a faked CUDA device (torch says a GPU is there and computes every dtype) goes
through each command's own path; the loaders below ``load_weights`` are replaced by a recorder, so nothing
ever reaches the (absent) GPU.
"""

from __future__ import annotations

import json

import pytest

from embedlens.errors import EmbedlensError

from .scale_fixtures import build_checkpoint


class Recorded(EmbedlensError):
    pass


@pytest.fixture(scope="module")
def fp16_dir(tmp_path_factory):
    """A tiny Llama stored in float16 (config ``dtype`` float16, F16 tensors)."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = build_checkpoint(tmp_path_factory.mktemp("fp16") / "llama", "llama")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float16)
    model.save_pretrained(str(folder))
    assert json.loads((folder / "config.json").read_text())["dtype"] == "float16"
    return folder


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch sees a GPU that computes every dtype; loads are recorded (device, dtype, blocks) and stopped."""
    import torch

    from embedlens.models import loading, partial
    from embedlens.models import runtime as R

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(R, "supports", lambda device, dtype: True)
    loads: list[tuple[str, str]] = []

    def full(source, dtype, device, **kw):
        loads.append((device, R.dtype_name(dtype)))
        raise Recorded(f"recorded a load in {R.dtype_name(dtype)} on {device}")

    def part(source, *, dtype, device, **kw):
        return full(source, dtype, device)

    monkeypatch.setattr(loading, "_load_full", full)
    monkeypatch.setattr(partial, "load_partial", part)
    return loads


def test_checkpoint_dtype_reads_config_then_headers_and_gguf_is_float32(fp16_dir, tmp_path):
    import shutil
    from pathlib import Path

    from embedlens.models.runtime import checkpoint_dtype
    from embedlens.models.specs import ModelSource

    assert checkpoint_dtype(str(fp16_dir)) == "float16"
    bare = tmp_path / "bare"
    shutil.copytree(fp16_dir, bare)
    cfg = json.loads((bare / "config.json").read_text())
    cfg.pop("dtype", None)
    cfg.pop("torch_dtype", None)
    (bare / "config.json").write_text(json.dumps(cfg))
    assert checkpoint_dtype(str(bare)) == "float16"  # from the safetensors header (F16)
    assert checkpoint_dtype(ModelSource("q", "q", "gguf", Path("model.gguf"))) == "float32"


def test_resolve_dtype_auto_on_gpu_keeps_the_checkpoint_and_cpu_stays_as_measured(fp16_dir, monkeypatch):
    import torch

    from embedlens.models import runtime as R

    monkeypatch.setattr(R, "supports", lambda device, dtype: True)
    assert R.resolve_dtype("auto", "cuda", model=str(fp16_dir)) == torch.float16
    assert R.resolve_dtype("auto", "cuda") == torch.bfloat16  # nothing known: bfloat16 where the GPU has it
    with R.using(dtype="auto"):
        assert R.resolve_dtype(None, "cuda", model=str(fp16_dir)) == torch.float16
    assert R.resolve_dtype(None, "cuda", model=str(fp16_dir)) == torch.float32  # no process default: float32
    for fast, want in ((True, torch.bfloat16), (False, torch.float32)):  # CPUs: the bfloat16 probe decides
        monkeypatch.setattr("embedlens.hardware.fast_bfloat16", lambda fast=fast: fast)
        assert R.resolve_dtype("auto", "cpu", model=str(fp16_dir)) == want


def test_load_weights_and_grid_library_resolve_float16(fp16_dir, cache_dir, fake_cuda):
    import embedlens
    from embedlens.grid.source import GridModel
    from embedlens.models.loading import load_weights

    with pytest.raises(Recorded):
        load_weights(str(fp16_dir), dtype="auto", device="cuda")
    lens = embedlens.load(str(fp16_dir))
    assert GridModel(lens, dtype="auto", device="cuda").dtype_name == "float16"
    assert fake_cuda == [("cuda", "float16")]


@pytest.mark.parametrize("command", [
    ["grid", "--grid-size", "4", "--no-html", "--output-dir"],
    ["context", "the bank of the river", "--no-html", "--no-png", "--out"],
    ["context", "the bank of the river", "--layer", "1", "--no-html", "--no-png", "--out"],
    ["logit-lens", "the bank of the river", "--out"],
])
def test_each_command_runs_a_float16_checkpoint_in_float16_on_a_gpu(fp16_dir, cache_dir, fake_cuda, run_cli,
                                                                   tmp_path, command):
    r = run_cli(*command, str(tmp_path / "out"), "--model", str(fp16_dir), "--device", "cuda", "--dtype", "auto")
    assert r.code == 2 and "recorded a load in float16 on cuda" in r.err, r
    assert fake_cuda == [("cuda", "float16")]


def test_serve_runs_the_prompt_and_grid_views_in_float16_on_a_gpu(fp16_dir, cache_dir, fake_cuda, run_cli,
                                                                  monkeypatch):
    import time

    from starlette.testclient import TestClient

    import embedlens.serve

    seen = {}

    def fake_server(app, **kw):  # what a browser would ask the running explorer for
        with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
            seen["lens"] = c.get("/api/logit_lens", params={"space": 0, "text": "the bank"}).json()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                body = c.get("/api/grid", params={"space": 0, "layer": 1, "size": 4}).json()
                if body["job"]["state"] in ("ready", "error"):
                    break
                time.sleep(0.05)
            seen["grid"] = body

    monkeypatch.setattr(embedlens.serve, "serve", fake_server)
    r = run_cli("serve", "--model", str(fp16_dir), "--knn", "off", "--device", "cuda", "--dtype", "auto")
    assert r.code == 0, r
    assert "float16 on cuda" in json.dumps(seen["lens"]) and seen["grid"]["job"]["state"] == "error", seen
    assert fake_cuda == [("cuda", "float16"), ("cuda", "float16")]
