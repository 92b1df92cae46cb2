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


def _matrix_span(folder):
    """(start, stop) byte offsets of the 'input' matrix inside embeddings.safetensors."""
    from embedlens.safetensors_mmap import read_header

    header, start = read_header(folder / "embeddings.safetensors")
    begin, end = header["input"]["data_offsets"]
    return start + begin, start + end


@pytest.mark.parametrize("where", [0.01, 0.5, 0.97])
def test_damage_anywhere_in_the_matrix_is_detected_and_rebuilt(tiny_llama_dir, cache_dir, caplog, where):
    """One flipped byte at any place of the matrix (not a sampled row) is caught by the per-block checksums."""
    from embedlens.models.loading import load_weights

    embedlens.load(str(tiny_llama_dir))
    folder = _entry(cache_dir)
    lo, hi = _matrix_span(folder)
    pos = lo + int((hi - lo) * where)
    f = folder / "embeddings.safetensors"
    data = bytearray(f.read_bytes())
    data[pos] ^= 0x10
    f.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="embedlens"):
        lens = embedlens.load(str(tiny_llama_dir))
    assert "damaged" in caplog.text and "do not match their checksum" in caplog.text
    truth = load_weights(str(tiny_llama_dir)).get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(np.asarray(lens.space.vectors), truth)


def test_checksums_cover_every_block(tiny_gpt2_dir, cache_dir):
    from embedlens.spaces.extract import block_sums

    lens = embedlens.load(str(tiny_gpt2_dir))
    meta = json.loads((_entry(cache_dir) / "meta.json").read_text())
    rows = meta["checksums"]["rows"]
    assert meta["checksums"]["input"] == block_sums(np.asarray(lens.space.vectors), rows)
    assert len(meta["checksums"]["input"]) == -(-lens.meta["n_vocab"] // rows)


def test_two_processes_building_one_entry_both_get_a_sound_one(tiny_llama_dir, cache_dir):
    code = (
        "import sys, json, numpy as np, embedlens\n"
        f"lens = embedlens.load({str(tiny_llama_dir)!r})\n"
        "v = np.asarray(lens.space.vectors)\n"
        "print(json.dumps([float(v.sum()), v.shape[0], lens.meta['key']]))\n"
    )
    env = {**os.environ, "EMBEDLENS_CACHE": str(cache_dir)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert results[0] == results[1]
    lens = embedlens.load(str(tiny_llama_dir))  # sound on open: checksums verified
    assert float(np.asarray(lens.space.vectors).sum()) == results[0][0]
    assert [p.name for p in (cache_dir / "models").iterdir() if p.name.startswith(".")] == []


def test_damaged_output_matrix_is_caught_when_it_is_used(tiny_llama_dir, cache_dir, caplog):
    """The untied head's checksums are verified on its first use (commands on the input matrix skip the read)."""
    from embedlens.models.loading import load_weights
    from embedlens.safetensors_mmap import read_header

    embedlens.load(str(tiny_llama_dir))
    folder = _entry(cache_dir)
    header, start = read_header(folder / "embeddings.safetensors")
    begin, end = header["output"]["data_offsets"]
    f = folder / "embeddings.safetensors"
    data = bytearray(f.read_bytes())
    data[start + (begin + end) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    lens = embedlens.load(str(tiny_llama_dir))  # the input matrix is sound: opened without a rebuild
    with caplog.at_level("WARNING", logger="embedlens"):
        out = np.asarray(lens.output_space.vectors)
    assert "damaged" in caplog.text and "'output'" in caplog.text
    truth = load_weights(str(tiny_llama_dir)).lm_head.weight.detach().numpy()
    np.testing.assert_array_equal(out, truth)


def _rewrite_matrix(folder, change):
    """Apply ``change`` to the cached input matrix in place (same size), as a disk fault might."""
    lo, hi = _matrix_span(folder)
    f = folder / "embeddings.safetensors"
    data = bytearray(f.read_bytes())
    meta = json.loads((folder / "meta.json").read_text())
    x = np.frombuffer(bytes(data[lo:hi]), dtype=np.float32).reshape(meta["n_vocab"], meta["d_model"]).copy()
    change(x)
    data[lo:hi] = x.tobytes()
    f.write_bytes(bytes(data))


def _swap_rows(x):
    x[[3, 7]] = x[[7, 3]]


def _plus_minus(x):
    words = x.view(np.uint64)  # +x on one 64-bit word, -x on another: the same sum of words
    words[5, 0] += np.uint64(1 << 20)
    words[9, 2] -= np.uint64(1 << 20)


@pytest.mark.parametrize("change", [_swap_rows, _plus_minus], ids=["swapped rows", "plus-minus pair"])
def test_damage_that_keeps_a_word_sum_is_caught(tiny_llama_dir, cache_dir, caplog, change):
    """A sum of 64-bit words (the old checksum) misses swapped rows and values that trade places."""
    from embedlens.models.loading import load_weights

    embedlens.load(str(tiny_llama_dir))
    folder = _entry(cache_dir)
    _rewrite_matrix(folder, change)
    with caplog.at_level("WARNING", logger="embedlens"):
        lens = embedlens.load(str(tiny_llama_dir))
    assert "damaged" in caplog.text and "do not match their checksum" in caplog.text
    truth = load_weights(str(tiny_llama_dir)).get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(np.asarray(lens.space.vectors), truth)


@pytest.mark.parametrize("name", ["vocab.json", "tokenizer/tokenizer.json"])
def test_a_same_size_edit_of_a_token_file_is_caught(tiny_gpt2_dir, cache_dir, caplog, name):
    embedlens.load(str(tiny_gpt2_dir))
    folder = _entry(cache_dir)
    f = folder / name
    text = f.read_text(encoding="utf-8")
    i = text.index("capital") if "capital" in text else text.index("the")
    edited = text[:i] + "X" + text[i + 1:]  # one character, same size
    assert len(edited.encode()) == len(text.encode()) and edited != text
    f.write_text(edited, encoding="utf-8")
    with caplog.at_level("WARNING", logger="embedlens"):
        lens = embedlens.load(str(tiny_gpt2_dir))
    assert "changed since the entry was built" in caplog.text and name in caplog.text
    assert f.read_text(encoding="utf-8") == text  # rebuilt from the model's own files
    assert len(lens.space) == lens.meta["n_vocab"]


def test_files_added_to_an_entry_later_do_not_force_a_rebuild(tiny_gpt2_dir, cache_dir, caplog):
    """k-NN graphs and a GGUF's dequantized copy are written into the entry after it is built."""
    embedlens.load(str(tiny_gpt2_dir))
    folder = _entry(cache_dir)
    (folder / "knn-extra.npz").write_bytes(b"later")
    with caplog.at_level("WARNING", logger="embedlens"):
        embedlens.load(str(tiny_gpt2_dir))
    assert "changed" not in caplog.text and "damaged" not in caplog.text


def test_threads_checking_the_cache_folder_at_once_never_see_each_others_probe(cache_dir):
    """The explorer's jobs and requests check the cache folder from several threads of one process; a probe
    file named by the process alone was removed by one thread under another ("not writable")."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def check() -> None:
        start.wait()
        for _ in range(300):
            try:
                cache_root()
            except BaseException as exc:  # the failure this test is about
                errors.append(exc)
                return

    threads = [threading.Thread(target=check) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in cache_dir.iterdir()] == []  # no probe left behind


def test_saved_tensors_are_the_same_bytes_every_time_and_read_back(tmp_path):
    """safetensors keeps metadata in a hash map: without a canonical header, saves of the same tensors differ."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    from embedlens.safetensors_mmap import read_tensors, write_tensors

    rng = np.random.default_rng(0)
    tensors = {f"layers.{i}.weight": rng.standard_normal((4, 4)).astype(np.float32) for i in range(5)}
    tensors["ids"] = np.arange(7, dtype=np.int64)
    metadata = {"format": "x", "n_layers": "5", "tokenizer": "ü digest", "z": "1", "a": "2"}
    blobs = set()
    for i in range(12):
        path = tmp_path / f"t{i}.safetensors"
        write_tensors(tensors, path, metadata=metadata)
        blobs.add(path.read_bytes())
    assert len(blobs) == 1
    got, mapped = load_file(str(path)), read_tensors(path)
    for name, value in tensors.items():
        np.testing.assert_array_equal(got[name], value)
        np.testing.assert_array_equal(mapped[name], value)
    with safe_open(str(path), "np") as fh:
        assert fh.metadata() == metadata
