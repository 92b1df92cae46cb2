"""tokens / neighbors / variants through the real entry point, and every bad input as one line + exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def test_help_is_instant_and_light():
    code = "import sys, time; t=time.time(); from embedlens.cli import main; main(['--help']); " \
           "print('HEAVY' if any(m in sys.modules for m in ('torch','transformers','numpy','plotly')) else 'LIGHT')"
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("LIGHT")
    assert "neighbors" in out.stdout
    assert time.perf_counter() - started < 10  # generous: only guards against importing torch


def _commands() -> list[str]:
    from embedlens.cli import COMMANDS

    return sorted(COMMANDS)


@pytest.mark.parametrize("command", _commands())
def test_command_help_is_light(command):
    """Every command's --help imports its option lists, not numpy, torch, plotly or the other heavy libraries."""
    code = (f"import sys; from embedlens.cli import main; main([{command!r}, '--help']); "
            "print('HEAVY' if any(m in sys.modules for m in ('torch','transformers','numpy','plotly','matplotlib',"
            "'igraph','sklearn','scipy')) else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("LIGHT"), out.stdout[-200:]


HEAVY_MODULES = ("torch", "transformers", "plotly", "matplotlib", "igraph", "sklearn", "scipy")


def test_neighbors_warm_imports_nothing_heavy(tiny_gpt2_dir, cache_dir, run_cli):
    """A warm `neighbors` (matrix already extracted) reads the cached matrix and tokenizer: no torch, transformers,
    plotly, matplotlib, igraph, scikit-learn or scipy, so it starts in a fraction of a second."""
    assert run_cli("neighbors", "the", "-m", tiny_gpt2_dir, "-k", "3").code == 0  # extracts once
    code = ("import sys; from embedlens.cli import main; code = main(['neighbors', 'the', '-m', sys.argv[1], '-k', '3']); "
            f"print('HEAVY', sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules), code)")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_gpt2_dir)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY [] 0", out.stdout[-300:] + out.stderr[-300:]


def test_tokens_json(tiny_gpt2_dir, cache_dir, run_cli):
    from transformers import AutoTokenizer

    res = run_cli("tokens", "The capital of France is", "-m", tiny_gpt2_dir, "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    ids = AutoTokenizer.from_pretrained(str(tiny_gpt2_dir))("The capital of France is")["input_ids"]
    assert [t["id"] for t in data["tokens"]] == ids
    assert [t["position"] for t in data["tokens"]] == list(range(len(ids)))
    first = data["tokens"][1]
    assert first["display"].startswith("␣") and first["token"].startswith("Ġ")
    assert len(first["head"]) == 3 and len(first["tail"]) == 3


def test_tokens_save_vectors(tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    out = tmp_path / "v.npy"
    res = run_cli("tokens", "lists of lists", "-m", tiny_gpt2_dir, "--save", out)
    assert res.code == 0 and out.exists()
    import embedlens

    lens = embedlens.load(str(tiny_gpt2_dir))
    np.testing.assert_array_equal(np.load(out), np.asarray(lens.space.vectors)[lens.encode("lists of lists")])


def test_markup_token_printed_literally(tiny_gpt2_dir, cache_dir, run_cli):
    res = run_cli("tokens", "[/b] <script>", "-m", tiny_gpt2_dir)
    assert res.code == 0 and "[/b]" in res.out and "<script>" in res.out


def test_neighbors_json_shape(tiny_llama_dir, cache_dir, run_cli):
    res = run_cli("neighbors", "list", "-m", tiny_llama_dir, "--k", "5", "--json")
    assert res.code == 0, res
    data = json.loads(res.out)
    assert set(data) >= {"query", "query_ids", "neighbors"}
    assert len(data["neighbors"]) == 5
    assert {"id", "token", "display", "score"} == set(data["neighbors"][0])
    scores = [n["score"] for n in data["neighbors"]]
    assert scores == sorted(scores, reverse=True)
    out_space = json.loads(run_cli("neighbors", "list", "-m", tiny_llama_dir, "--space", "output", "--json").out)
    assert out_space["space"].endswith(":output")


def test_variants_cli(tiny_gpt2_dir, cache_dir, run_cli):
    res = run_cli("variants", "list", "-m", tiny_gpt2_dir, "--json")
    assert res.code == 0, res
    shown = [n["display"] for n in json.loads(res.out)["neighbors"]]
    assert any(s.lower().lstrip("␣_") == "list" for s in shown)


@pytest.mark.parametrize(
    "args",
    [
        ["tokens", "", "-m", "{tiny}"],
        ["tokens", "x", "-m", "no-such-model-alias"],
        ["tokens", "x", "-m", "./does/not/exist"],
        ["neighbors", "tok:not-a-token-zz", "-m", "{tiny}"],
        ["neighbors", "id:100000", "-m", "{tiny}"],
        ["neighbors", "list", "-m", "{tiny}", "--k", "0"],
        ["neighbors", "list", "-m", "{tiny}", "--k", "100000"],
        ["neighbors", "list", "-m", "{tiny}", "--space", "nowhere-space"],
        ["neighbors", "list", "-m", "{tiny}", "--k", "abc"],
        ["variants", "qqqqzzzz", "-m", "{tiny}"],
        ["no-such-command"],
    ],
)
def test_bad_input_is_one_line_exit_2(args, tiny_gpt2_dir, cache_dir, run_cli):
    res = run_cli(*[a.replace("{tiny}", str(tiny_gpt2_dir)) for a in args])
    assert res.code == 2, res
    lines = [ln for ln in res.err.splitlines() if ln.strip() and not ln.startswith("embedlens: note:")]
    assert len(lines) == 1 and lines[0].startswith("embedlens: error:"), res.err
    assert "Traceback" not in res.err


def test_console_script_exit_code(tiny_gpt2_dir, cache_dir):
    import embedlens

    # The cache entry is made in this process (its libraries are loaded here already), so the script's own run is
    # what a user's later runs are: it reads the cached space instead of extracting it (seconds of a busy core).
    embedlens.load(str(tiny_gpt2_dir))
    exe = Path(sys.executable).parent / "embedlens"
    res = subprocess.run([str(exe), "neighbors", "list", "-m", str(tiny_gpt2_dir), "--k", "-1"],
                         capture_output=True, text=True, env={"EMBEDLENS_CACHE": str(cache_dir), "PATH": "/usr/bin:/bin"})
    from transformers import AutoTokenizer

    n = len(AutoTokenizer.from_pretrained(str(tiny_gpt2_dir)))  # every token but the query itself can be returned
    errors = [ln for ln in res.stderr.splitlines() if not ln.startswith("embedlens: note:")]
    assert res.returncode == 2 and errors == [
        f"embedlens: error: k must be an integer from 1 to {n - 1} (the items that can be returned), got -1"]




def test_cli_reference_is_current():
    # docs/cli.md is generated from --help; an option changed without regenerating it fails here.
    script = Path(__file__).resolve().parents[1] / "scripts" / "cli_reference.py"
    res = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_demo_writes_a_report_with_every_token_escaped(tiny_gpt2_dir, cache_dir, run_cli, tmp_path):
    from embedlens.render.offline import html_text

    out = tmp_path / "demo"
    res = run_cli("demo", "-m", tiny_gpt2_dir, "--out", out)
    assert res.code == 0, res
    for name in ("index.html", "tokens.json", "neighbors.json", "manifest.json", "map/map.html", "map/points.parquet"):
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="map/map.html"' in page
    tokens = json.loads((out / "tokens.json").read_text())
    results = json.loads((out / "neighbors.json").read_text())
    shown = [t["display"] for t in tokens["tokens"]] + [n["display"] for r in results for n in r["neighbors"]]
    for d in shown:
        assert html_text(d) in page, d
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["spec"] == str(tiny_gpt2_dir) and manifest["map"]["method"] == "pca"
    assert str(out / "index.html") in res.out
