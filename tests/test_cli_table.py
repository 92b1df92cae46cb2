"""The terminal table written without rich prints exactly what rich prints, or hands the table to rich."""

from __future__ import annotations

import io
import random

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from embedlens.cli import table as cli_table
from embedlens.cli.table import _SAFE, print_table, render_plain

COLUMNS = [("#", "right"), ("id", "right"), ("token", "left"), ("cosine", "right")]
TRICKY = ['"', "'", "&", "<", ">", "&amp;", "<script>", "[/b]", "[bold]x", ":smile:", "␣list", "a b", "  x", "x  ",
          "⟪<|im_start|>⟫", "⟨U+200B⟩", "é", "Ġ", "…", "%s", "\\", "{}"]


def rich_text(title, columns, rows, *, width, styled):
    out = io.StringIO()
    t = Table(title=Text(title, style="table.title"), title_justify="left")
    for header, justify in columns:
        t.add_column(header, justify=justify)
    for r in rows:
        t.add_row(*(Text(c) for c in r))
    Console(file=out, width=width, highlight=False, soft_wrap=False, force_terminal=styled,
            color_system="standard" if styled else None).print(t)
    return out.getvalue()


def test_safe_characters_are_one_cell_wide_for_rich():
    assert all(cell_len(ch) == 1 for ch in _SAFE)


def random_table(rng):
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + ["␣", "é", "ß", "⟨", "⟩", "↵"]
    words = TRICKY + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(10)]
    title = " ".join(rng.choice(words + ["nearest", "to", "·", "smollm2-135m:input", "(ids", "644)"])
                     for _ in range(rng.randint(0, 9)))
    rows = [(str(i), str(rng.randint(0, 300_000)), rng.choice(words), f"{rng.uniform(-1, 1):.4f}")
            for i in range(1, rng.randint(0, 12) + 1)]
    return title, rows


@pytest.mark.parametrize("styled", [False, True])
def test_plain_table_matches_rich_byte_for_byte(styled):
    rng = random.Random(7)
    plain = 0
    for _ in range(300):
        title, rows = random_table(rng)
        width = rng.choice([20, 30, 40, 80, 120])
        ours = render_plain(title, COLUMNS, rows, width=width, styled=styled)
        if ours is None:
            continue
        plain += 1
        assert ours == rich_text(title, COLUMNS, rows, width=width, styled=styled), (title, rows, width)
    assert plain > 150  # most tables take the plain route; the rest are rich's to lay out


def test_tables_rich_lays_out_differently_are_refused():
    rows = [("1", "5", "日本", "0.5000")]  # two cells wide per character
    assert render_plain("t", COLUMNS, rows, width=80, styled=False) is None
    rows = [("1", "5", "x" * 90, "0.5000")]  # wider than the console
    assert render_plain("t", COLUMNS, rows, width=80, styled=False) is None
    assert render_plain("a" * 40, COLUMNS, [("1", "5", "x", "0.5")], width=80, styled=False) is None  # title cut


def test_print_table_falls_back_to_rich_and_prints_tokens_literally(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(cli_table, "_console_width", lambda: 80)
    rows = [("1", "7", "[/b]", "0.5000"), ("2", "8", "日本", "0.4000"), ("3", "9", ":smile:", "0.1000")]
    print_table("nearest to '[/b]' · x", COLUMNS, rows)
    out = capsys.readouterr().out
    assert out == rich_text("nearest to '[/b]' · x", COLUMNS, rows, width=80, styled=False)
    assert "[/b]" in out and ":smile:" in out and "日本" in out


def test_neighbors_command_prints_without_rich(run_cli, tiny_gpt2_dir, cache_dir, monkeypatch):
    import sys

    monkeypatch.setenv("COLUMNS", "100")
    # A plain terminal-less process, as the console script runs: rich lays tables out differently in Jupyter
    # (a kernel imported by a notebook test of the same worker) or when told to, and then the printer defers
    # to it, rightly.
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert run_cli("neighbors", "list", "--model", str(tiny_gpt2_dir), "-k", "5").code == 0  # extracts; warm below
    for name in [m for m in sys.modules if m.startswith("rich.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)  # any `import rich...` now raises ImportError
    res = run_cli("neighbors", "list", "--model", str(tiny_gpt2_dir), "-k", "5")
    assert res.code == 0, res
    assert sys.modules["rich"] is None and not any(m.startswith("rich.") for m in sys.modules)
    assert res.out.count("│") == 5 * 5 and "┃ # ┃" in res.out


def test_a_stdout_that_cannot_encode_the_box_gets_rich_ascii_box(tmp_path):
    """The plain printer writes box characters; where stdout cannot encode them, rich's ASCII table prints."""
    import os
    import subprocess
    import sys

    code = ("from embedlens.cli.table import print_table; "
            "print_table('king', [('#', 'right'), ('token', 'left')], [['1', 'queen'], ['2', 'a&b']])")
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode("latin-1")[-2000:]
    out = res.stdout.decode("latin-1")
    assert "| 1 | queen |" in out and "| 2 | a&b   |" in out and "┃" not in out
