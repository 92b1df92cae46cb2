"""Options are never silently ignored, and commands leave no stray files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(r, *words: str) -> None:
    assert r.code == 2, r
    assert r.err.startswith("embedlens: error:") and r.err.count("\n") == 1, r.err
    for w in words:
        assert w in r.err, (w, r.err)


def test_labels_without_a_matrix_space_is_refused(tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    labels = tmp_path / "words.txt"
    labels.write_text("a\nb\n")
    _one_line_error(run_cli("neighbors", "list", "-m", tiny_gpt2_dir, "--labels", labels), "--labels", "matrix")
    _one_line_error(run_cli("variants", "list", "-m", tiny_gpt2_dir, "--space", "output", "--labels", labels), "--labels")
    assert not (cache_dir / "models").exists()  # refused before the model was read


def test_model_with_a_space_that_is_not_the_models_is_refused(tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    vectors = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "m.npy", vectors)
    (tmp_path / "w.txt").write_text("a\nb\nc\nd\ne\n")
    r = run_cli("neighbors", "a", "-m", tiny_gpt2_dir, "--space", tmp_path / "m.npy", "--labels", tmp_path / "w.txt")
    _one_line_error(r, "--model", "m.npy")
    ok = run_cli("neighbors", "a", "--space", tmp_path / "m.npy", "--labels", tmp_path / "w.txt", "-k", "2", "--json")
    assert ok.code == 0, ok
    got = [n["display"] for n in json.loads(ok.out)["neighbors"]]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit[1:] @ unit[0]
    assert got == [["b", "c", "d", "e"][i] for i in np.argsort(-cos)[:2]]


def test_serve_refuses_labels_without_a_matrix_space(tiny_gpt2_dir, cache_dir, tmp_path):
    from embedlens.errors import EmbedlensError
    from embedlens.serve.setup import open_panels

    with pytest.raises(EmbedlensError, match="labels"):
        open_panels([str(tiny_gpt2_dir)], ["input"], str(tmp_path / "w.txt"), default_model=str(tiny_gpt2_dir))


def test_graph_json_writes_nothing_unless_out_is_given(tiny_gpt2_dir, cache_dir, run_cli, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = run_cli("graph", "--words", "list,capital", "-m", tiny_gpt2_dir, "-k", "3", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["nodes"] and data["edges"]
    assert list(work.iterdir()) == []
    r = run_cli("graph", "--words", "list,capital", "-m", tiny_gpt2_dir, "-k", "3", "--json", "--out", "g")
    assert r.code == 0, r
    assert json.loads(r.out) == json.loads((work / "g" / "graph.json").read_text())
    assert {p.name for p in (work / "g").iterdir()} >= {"graph.html", "graph.json", "graph.graphml", "manifest.json"}


def test_every_default_output_folder_is_git_ignored():
    import click

    from embedlens.cli import COMMANDS, LazyGroup, cli

    ignored = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()}
    group = LazyGroup()
    defaults = set()
    for name in COMMANDS:
        cmd = group.get_command(click.Context(cli), name)
        commands = cmd.commands.values() if isinstance(cmd, click.Group) else [cmd]
        for c in commands:
            for p in c.params:
                if p.name in ("out", "output_dir") and isinstance(p.default, str):
                    defaults.add(p.default)
    assert "embedlens-demo" in defaults and len(defaults) >= 5, defaults
    assert defaults <= ignored, defaults - ignored


def test_a_model_from_the_local_hugging_face_cache_is_loaded_and_run(tiny_llama_dir, cache_dir, run_cli, tmp_path,
                                                                      monkeypatch):
    """`--model org/name` found in the hub cache (never downloaded) answers like the same model's folder."""
    import shutil

    hub = tmp_path / "hub" / "models--someone--tiny-llama"
    shutil.copytree(tiny_llama_dir, hub / "snapshots" / "0123abc")
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    r = run_cli("neighbors", "list", "-m", "someone/tiny-llama", "-k", "5", "--json")
    assert r.code == 0, r
    direct = run_cli("neighbors", "list", "-m", tiny_llama_dir, "-k", "5", "--json")
    assert json.loads(r.out)["neighbors"] == json.loads(direct.out)["neighbors"]
    # the network itself runs from the cached files: its grid map equals the folder's
    grids = []
    for spec, name in (("someone/tiny-llama", "hub"), (tiny_llama_dir, "folder")):
        g = run_cli("grid", "-m", spec, "--layer-idx", "1", "--grid-size", "4", "--embedding-method", "direct",
                    "--output-dir", tmp_path / name, "--no-html", "--json")
        assert g.code == 0, g
        grids.append(json.loads(Path(json.loads(g.out)["results_path"]).read_text()))
    assert grids[0]["token_ids"] == grids[1]["token_ids"] and grids[0]["top5"] == grids[1]["top5"]
    np.testing.assert_allclose(grids[0]["probs"], grids[1]["probs"], rtol=1e-6)


@pytest.mark.parametrize("args, words", [
    (("map", "--all", "--text-column", "body"), ("--text-column", "--corpus")),
    (("map", "--workers", "2"), ("--workers", "--engine ray")),
    (("map", "--ray-address", "127.0.0.1:1"), ("--ray-address", "--engine ray")),
    (("map", "--all", "--engine", "ray"), ("--engine ray", "--corpus")),
    (("context", "a text", "--text-column", "body"), ("--text-column",)),
    (("context", "a text", "--workers", "2"), ("--workers",)),
])
def test_corpus_and_ray_options_that_would_be_ignored_are_refused(tiny_gpt2_dir, cache_dir, run_cli, tmp_path,
                                                                  args, words):
    r = run_cli(*args, "-m", tiny_gpt2_dir, "--out", tmp_path / "out")
    _one_line_error(r, *words)
    assert not (cache_dir / "models").exists()  # refused before the model was read


def test_ray_address_from_the_environment_is_not_a_typed_option(tiny_gpt2_dir, cache_dir, run_cli, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # set for other tools: a local map must still run
    r = run_cli("map", "-m", tiny_gpt2_dir, "--all", "--no-png", "--out", tmp_path / "out")
    assert r.code == 0, r
