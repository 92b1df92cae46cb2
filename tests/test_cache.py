"""The embedding cache: hit without the model, corruption detected and rebuilt, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import embedlens
from embedlens.cache import atomic_path, cache_root
from embedlens.errors import EmbedlensError


def _entry(cache_dir):
    (folder,) = [p for p in (cache_dir / "models").iterdir() if not p.name.startswith(".")]
    return folder


def test_cache_hit_does_not_import_the_model(tiny_gpt2_dir, cache_dir):
    embedlens.load(str(tiny_gpt2_dir))  # build
    code = (
        "import sys, embedlens\n"
        f"lens = embedlens.load({str(tiny_gpt2_dir)!r})\n"
        "lens.nearest(' list', 5); lens.tokens('The capital')\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "EMBEDLENS_CACHE": str(cache_dir)})
    assert out.stdout.strip() == "none", out.stderr


def test_corrupt_entry_is_rebuilt_with_a_note(tiny_gpt2_dir, cache_dir, caplog):
    good = np.asarray(embedlens.load(str(tiny_gpt2_dir)).space.vectors).copy()
    emb = _entry(cache_dir) / "embeddings.safetensors"
    data = bytearray(emb.read_bytes())
    data[-400:] = b"\x7f" * 400  # damage the last rows, same size
    emb.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="embedlens"):
        lens = embedlens.load(str(tiny_gpt2_dir))
    assert "damaged" in caplog.text
    np.testing.assert_array_equal(np.asarray(lens.space.vectors), good)


@pytest.mark.parametrize("damage", ["truncate", "meta", "vocab", "delete_meta"])
def test_other_damage_is_detected(tiny_gpt2_dir, cache_dir, damage):
    embedlens.load(str(tiny_gpt2_dir))
    folder = _entry(cache_dir)
    if damage == "truncate":
        f = folder / "embeddings.safetensors"
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "meta":
        (folder / "meta.json").write_text("{not json")
    elif damage == "vocab":
        (folder / "vocab.json").write_text(json.dumps({"tokens": ["x"]}))
    else:
        (folder / "meta.json").unlink()
    lens = embedlens.load(str(tiny_gpt2_dir))
    assert len(lens.space) == lens.meta["n_vocab"]


def test_changed_model_files_make_a_new_entry(tiny_gpt2_dir, cache_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_gpt2_dir, copy)
    a = embedlens.load(str(copy))
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(copy / "model.safetensors"))
    key = next(k for k in weights if k.endswith("wte.weight"))
    weights[key] = weights[key] * 2
    save_file(weights, str(copy / "model.safetensors"), metadata={"format": "pt"})
    b = embedlens.load(str(copy))
    assert a.entry.folder != b.entry.folder
    np.testing.assert_allclose(np.asarray(b.space.vectors), 2 * np.asarray(a.space.vectors), rtol=1e-6)


def test_unwritable_cache_is_one_line_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("EMBEDLENS_CACHE", str(blocker / "sub"))
    with pytest.raises(EmbedlensError, match="not writable"):
        cache_root()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_cache_cli_list_verify_clear(tiny_gpt2_dir, cache_dir, run_cli):
    embedlens.load(str(tiny_gpt2_dir))
    listed = run_cli("cache", "list", "--json")
    assert listed.code == 0 and json.loads(listed.out)[0]["status"] == "ok"
    assert run_cli("cache", "verify").code == 0
    emb = _entry(cache_dir) / "embeddings.safetensors"
    data = bytearray(emb.read_bytes())
    data[-1] ^= 0xFF
    emb.write_bytes(bytes(data))
    bad = run_cli("cache", "verify")
    assert bad.code == 2 and "BAD" in bad.out and len(bad.err.strip().splitlines()) == 1
    cleared = run_cli("cache", "clear", str(tiny_gpt2_dir))
    assert cleared.code == 0 and "removed 1" in cleared.out
    assert run_cli("cache", "clear", "nothing-like-this").code == 2
