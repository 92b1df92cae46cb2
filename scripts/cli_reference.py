"""Write docs/cli.md from the commands' own --help (run again after changing an option).

    .venv/bin/python scripts/cli_reference.py          # rewrite docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from embedlens.cli import COMMANDS, cli

TARGET = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _help(path: list[str], command: click.Command, parent: click.Context | None) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100)
    out = [f"## `{' '.join(path)}`", "", "```text", command.get_help(ctx).rstrip(), "```", ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            out += _help(path + [name], command.get_command(ctx, name), ctx)
    return out


def render() -> str:
    root = click.Context(cli, info_name="embedlens", terminal_width=100, max_content_width=100)
    lines = ["# Command-line reference", "", "Generated from `--help` by `scripts/cli_reference.py`; CI checks it is current.", ""]
    lines += ["```text", cli.get_help(root).rstrip(), "```", ""]
    for name in sorted(COMMANDS):
        lines += _help(["embedlens", name], cli.get_command(root, name), root)
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print("docs/cli.md is out of date: run .venv/bin/python scripts/cli_reference.py", file=sys.stderr)
            sys.exit(1)
        sys.exit(0)
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
