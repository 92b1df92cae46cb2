"""``embedlens cache list | verify | clear``."""

from __future__ import annotations

import click

from .common import emit_json, json_option
from .table import console, text


@click.group()
def cache() -> None:
    """Cached embedding matrices (in $EMBEDLENS_CACHE)."""


@cache.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List cache entries with their size."""
    from ..spaces.cache_admin import list_entries  # lazy: embedlens.spaces imports numpy

    entries = list_entries()
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    from rich.table import Table

    t = Table(title=f"{len(entries)} cached models", title_justify="left")
    for col in ("entry", "model", "vocab x dim", "MB", "status"):
        t.add_column(col)
    for e in entries:
        t.add_row(text(e.key), text(e.spec or "?"), e.shape or "?", f"{e.bytes / 1e6:.1f}", e.status)
    console().print(t)


@cache.command("verify")
@click.argument("model", required=False)
def verify_cmd(model: str | None) -> None:
    """Check every entry (or MODEL's) by a full SHA-256 of its matrices against the digest taken at build."""
    from ..spaces.cache_admin import verify_entries  # lazy: embedlens.spaces imports numpy

    bad = 0
    for key, ok, why in verify_entries(model):
        click.echo(f"{'ok  ' if ok else 'BAD '} {key}{'' if ok else ': ' + why}")
        bad += not ok
    if bad:
        raise click.ClickException(f"{bad} damaged cache entr{'y' if bad == 1 else 'ies'}; `embedlens cache clear` them")


@cache.command("clear")
@click.argument("model", required=False)
def clear_cmd(model: str | None) -> None:
    """Remove every entry, or only MODEL's (alias, path or entry name)."""
    from ..spaces.cache_admin import clear_entries  # lazy: embedlens.spaces imports numpy

    removed = clear_entries(model)
    click.echo(f"removed {len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}")
