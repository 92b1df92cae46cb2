"""Library errors name parameters (`min_score`); the command line turns them into its flags (--min-score)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import numpy as np
import pytest

from embedlens.cli.errors_text import flag_text, invoked_command
from embedlens.errors import EmbedlensError
from embedlens.lens import SpaceLens
from embedlens.spaces.space import EmbeddingSpace

SRC = Path(__file__).resolve().parents[1] / "src" / "embedlens"
FLAG = re.compile(r"(?<![\w-])--[A-Za-z]")
# shell commands of other tools, quoted whole in a message: their flags are the other tool's, not ours
FOREIGN_COMMANDS = ("pip install", "ray start")


@pytest.fixture(scope="module")
def word_lens() -> SpaceLens:
    x = np.random.default_rng(3).normal(size=(60, 8)).astype(np.float32)
    return SpaceLens(EmbeddingSpace.from_arrays(x, [f"w{i}" for i in range(60)], name="words"))


@pytest.fixture
def fake_command() -> click.Command:
    @click.command()
    @click.argument("query")
    @click.option("--min-score", type=float)
    @click.option("-k", "--k", type=int)
    @click.option("--keep-special", is_flag=True)
    @click.option("--open/--no-open", "open_browser", default=True)
    @click.option("--exact", "method", flag_value="exact")
    @click.option("--approx", "method", flag_value="approx")
    @click.option("--random", "random_n", type=int)
    @click.option("--model", "-m", "--model-name", "model")
    @click.option("--space")
    @click.option("--png", is_flag=True)
    def cmd(**_: object) -> None:
        pass

    return cmd


# (a) the library speaks of parameters


def test_library_error_names_the_parameter(word_lens, cache_dir):
    from embedlens.graph import build_graph

    with pytest.raises(EmbedlensError) as err:
        build_graph(word_lens, ["w1", "w2"], k=3, min_score=2)
    assert str(err.value) == "`min_score` is a cosine, from -1 to 1; got 2"


def _dims(lens):
    from embedlens.reduce.options import ReduceOptions

    ReduceOptions(n_components=4)


def _min_count(lens):
    from embedlens.atlas.selection import select_rows

    select_rows(5, counts=np.ones(5, dtype=np.int64), min_count=0)


def _no_seed_option(lens):
    from embedlens.graph import check_seed_options

    check_seed_options()


def _no_random_words(lens):
    from embedlens.graph import seeds_from_random

    seeds_from_random(lens, 0)


def _one_chunk(lens):
    from embedlens.classic.tfidf import tfidf_from_ids

    tfidf_from_ids(np.arange(5), list("abcde"), 1)


@pytest.mark.parametrize("call, expected", [
    (_dims, "`n_components` must be 2 or 3 (a 2D or 3D map), got 4"),
    (_min_count, "`min_count` must be at least 1, got 0"),
    (_no_seed_option, "give exactly one of `text`, `words`, `random` or `variants` (none was given)"),
    (_no_random_words, "asked for 0 random words; the number of words must be a positive number"),
    (_one_chunk, "`n_chunks` must be at least 2"),
])
def test_library_errors_have_no_flags(call, expected, word_lens):
    with pytest.raises(EmbedlensError) as err:
        call(word_lens)
    assert str(err.value).startswith(expected) and not FLAG.search(str(err.value)), str(err.value)


def test_matrix_without_labels_asks_for_the_labels_parameter(tmp_path):
    from embedlens.handles import open_space

    np.save(tmp_path / "m.npy", np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(EmbedlensError, match=re.escape("m.npy needs a labels file: pass `labels=FILE.txt` (one label")):
        open_space(str(tmp_path / "m.npy"))


# (b) the command line shows its flags


def test_cli_error_shows_the_flag(run_cli, tiny_gpt2_dir, cache_dir, tmp_path):
    res = run_cli("graph", "-m", tiny_gpt2_dir, "--words", "list", "--min-score", "2", "--out", tmp_path / "g")
    assert res.code == 2
    errors = [line for line in res.err.splitlines() if not line.startswith("embedlens: note:")]
    assert errors == ["embedlens: error: --min-score is a cosine, from -1 to 1; got 2.0"], res.err
    assert "`" not in res.err


def test_cli_error_with_a_value_and_a_renamed_parameter(run_cli, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("one two three\n")
    res = run_cli("tfidf", corpus, "--chunks", "1", "--out", tmp_path / "t")
    assert res.code == 2 and "embedlens: error: --chunks must be at least 2" in res.err, res.err
    res = run_cli("tfidf", corpus, "--chunks", "5", "--out", tmp_path / "t")
    assert res.code == 2 and "use --chunks 3 or less" in res.err and "`" not in res.err, res.err


def test_cli_space_value_and_matrix_labels(run_cli, tmp_path, cache_dir):
    np.save(tmp_path / "m.npy", np.zeros((2, 2), dtype=np.float32))
    res = run_cli("neighbors", "w", "--space", tmp_path / "m.npy")
    assert res.code == 2 and "pass --labels FILE.txt (one label per line)" in res.err and "`" not in res.err, res.err
    res = run_cli("neighbors", "w", "--space", "glove-50d:x")
    assert res.code == 2 and "use --space glove-50d" in res.err and "`" not in res.err, res.err


def test_cli_note_from_a_library_string_shows_the_flag(capsys):
    from embedlens.cli.common import note

    @click.command()
    @click.option("--min-count", type=int)
    @click.option("--all", "all_tokens", is_flag=True)
    def cmd(min_count: int, all_tokens: bool) -> None:
        note("`min_count` is ignored with `all_tokens` (every token is mapped)")

    cmd.main(["--all"], standalone_mode=False)
    assert capsys.readouterr().err == "embedlens: note: --min-count is ignored with --all (every token is mapped)\n"


# (c) the translator


def test_flag_text_on_a_fake_command(fake_command):
    c = fake_command
    assert flag_text("`min_score` is a cosine; got 2", c) == "--min-score is a cosine; got 2"
    assert flag_text("`k` must be from 1 to 5", c) == "--k must be from 1 to 5"
    assert flag_text("use `k=3` or less", c) == "use --k 3 or less"
    assert flag_text("try `min_score=0.5`", c) == "try --min-score 0.5"
    assert flag_text("use `keep_special=True`", c) == "use --keep-special"
    assert flag_text("`open_browser=False` keeps it closed", c) == "--no-open keeps it closed"
    assert flag_text("`method=approx` is faster", c) == "--approx is faster"
    assert flag_text("`random` needs a number", c) == "--random needs a number"  # found by its option name
    assert flag_text("give `query` a word", c) == "give QUERY a word"
    assert flag_text("`query=king` is unknown", c) == "king is unknown"
    # not this command's: left as written (a user's own query such as `print` may hold backticks)
    assert flag_text("`seed` and `labels=x:y` are not options here", c) == "`seed` and `labels=x:y` are not options here"
    assert flag_text("'`print`' is 3 tokens", c) == "'`print`' is 3 tokens"
    assert flag_text("start `ray start --head` first", c) == "start `ray start --head` first"  # not a name: kept
    assert flag_text("`min_score` and `k`", None) == "min_score and k"
    # the user's quoted query is never rewritten, even when it names a parameter
    assert flag_text("'`k`' is 3 tokens; lower `k`", c) == "'`k`' is 3 tokens; lower --k"
    assert flag_text("`model` is unknown", c) == "--model is unknown"  # the main spelling, not the alias
    assert flag_text("`method=hnsw` is unknown", c) == "--exact/--approx (not hnsw) is unknown"
    assert flag_text("choose `method`", c) == "choose --exact/--approx"
    assert flag_text("`png=False` skips it", c) == "without --png skips it"
    assert flag_text("use `space=my dir`", c) == "use --space 'my dir'"  # a value the shell can take back


def test_invoked_command_resolves_lazily_one_nested_level():
    from embedlens.cli import cli

    assert invoked_command(cli, ["graph", "--words", "a,b", "--min-score", "2"]).name == "graph"
    assert invoked_command(cli, ["cache", "clear", "x"]).name == "clear"
    assert invoked_command(cli, ["--help"]) is None
    assert invoked_command(cli, ["no-such-command"]) is None


# (d) no flag is left in library text


def test_library_strings_name_no_flags():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and FLAG.search(node.value) and not any(c in node.value for c in FOREIGN_COMMANDS)):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value.strip()[:80]}")
    assert not found, "library text names a command-line flag; name the parameter in backticks instead:\n" + "\n".join(found)


def test_logged_notes_name_flags_and_a_bad_note_never_breaks_the_work(fake_command, capsys, monkeypatch):
    import logging

    from embedlens.cli import _setup_logging, errors_text

    _setup_logging()
    log = logging.getLogger("embedlens")
    with click.Context(fake_command):
        log.warning("lower `k` or `min_score=0.2`")
    assert "embedlens: note: lower --k or --min-score 0.2" in capsys.readouterr().err
    monkeypatch.setattr(errors_text, "flag_text", lambda *a: 1 / 0)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # as in production: a failed note is dropped
    with click.Context(fake_command):
        log.warning("this note cannot be printed")  # must not raise into the caller
