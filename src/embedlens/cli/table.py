"""Tables on the terminal: the boxed table rich prints, without importing rich when the table is plain.

Importing and laying out rich costs about as much as a whole ``embedlens neighbors`` run should. A table
whose text is made of characters one cell wide, that fits the console and whose title wraps without cutting
a word is written here directly, the same bytes as ``rich`` (box ``HEAVY_HEAD``, bold header on a terminal,
italic title); any other table (wide or zero-width characters, too wide for the console, Windows, Jupyter,
forced colour) is handed to rich. ``tests/test_cli_table.py`` checks the two agree.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any

# Characters rich measures one cell wide: printable ASCII, Latin-1 and Latin Extended-A letters, and the
# markers of embedlens.display and the titles. Anything else (CJK, emoji, combining marks) goes to rich.
_SAFE = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0xA1, 0x180) if c != 0xAD]
    + list("␣↵⇥␍⟨⟩⟪⟫…")
)
_WORD = re.compile(r"\s*\S+\s*")
_BOLD, _ITALIC, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[0m"


def _plain(value: str) -> bool:
    return all(ch in _SAFE for ch in value)


def _console_width() -> int:
    """The width rich gives a console: ``$COLUMNS``, else the terminal of stdin/stdout/stderr, else 80."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (OSError, ValueError):
            continue
    return 80


def _styled() -> bool | None:
    """Whether rich would style the output (a terminal); None where its rules are not followed here."""
    env = os.environ
    if os.name == "nt" or "TTY_COMPATIBLE" in env or "FORCE_COLOR" in env or "JUPYTER_COLUMNS" in env:
        return None
    if "ipykernel" in sys.modules or env.get("TERM", "").strip().lower() in ("dumb", "unknown"):
        return None
    if not (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").startswith("utf8"):
        return None  # rich draws an ASCII box where the box characters cannot be encoded
    try:
        return bool(sys.stdout.isatty())
    except ValueError:
        return None


def _wrap_title(title: str, width: int) -> list[str] | None:
    """rich's word wrap of a left-justified title to ``width`` (lines padded); None where a word must be cut."""
    breaks, offset = [], 0
    for match in _WORD.finditer(title):
        word, start = match.group(0), match.start()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            return None
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    lines = [title[a:b] for a, b in zip([0, *breaks], [*breaks, len(title)], strict=True)]
    out = []
    for line in lines:
        if len(line) > width:  # only trailing spaces can reach past the width here
            line = line[: max(width, len(line.rstrip()))]
        out.append(line[:width].ljust(width))
    return out


def render_plain(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], *,
                 width: int, styled: bool) -> str | None:
    """The text rich prints for this table (title left-justified, ``columns`` as (header, justify)); None when
    rich would lay it out differently (characters not one cell wide, a table wider than ``width``...)."""
    cells = [list(r) for r in rows]
    if any(len(r) != len(columns) for r in cells) or any(j not in ("left", "right") for _, j in columns):
        return None
    if not _plain(title) or "\t" in title or not all(_plain(h) for h, _ in columns):
        return None
    if not all(_plain(c) for r in cells for c in r):
        return None
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, (h, _) in enumerate(columns)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width:
        return None
    lines = _wrap_title(title, total) if title else []
    if lines is None:
        return None
    if styled:
        lines = [f"{_ITALIC}{line}{_RESET}" for line in lines]

    def fit(value: str, w: int, justify: str) -> str:
        return value.rjust(w) if justify == "right" else value.ljust(w)

    bar = [("━" * (w + 2)) for w in widths]
    thin = [("─" * (w + 2)) for w in widths]
    if styled:
        head = [f"{_BOLD} {_RESET}{_BOLD}{fit(h, w, j)}{_RESET}{_BOLD} {_RESET}"
                for (h, j), w in zip(columns, widths, strict=True)]
    else:
        head = [f" {fit(h, w, j)} " for (h, j), w in zip(columns, widths, strict=True)]
    lines += ["┏" + "┳".join(bar) + "┓", "┃" + "┃".join(head) + "┃", "┡" + "╇".join(bar) + "┩"]
    for r in cells:
        lines.append("│" + "│".join(f" {fit(c, w, j)} " for c, w, (_, j) in zip(r, widths, columns, strict=True)) + "│")
    lines.append("└" + "┴".join(thin) + "┘")
    return "\n".join(lines) + "\n"


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def text(value: str) -> Any:
    """A table cell that rich prints literally (token strings may look like markup: ``[/b]``)."""
    from rich.text import Text

    return Text(value)


def print_table(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> None:
    """Print a boxed table: ``columns`` as (header, justify), ``rows`` of literal strings (never markup)."""
    styled = _styled()
    plain = None if styled is None else render_plain(title, columns, rows, width=_console_width(), styled=styled)
    if plain is not None:
        sys.stdout.write(plain)
        sys.stdout.flush()
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title, style="table.title"), title_justify="left")
    for header, justify in columns:
        table.add_column(header, justify=justify)
    for r in rows:
        table.add_row(*(text(c) for c in r))
    console().print(table)
