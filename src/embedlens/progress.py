"""Progress on stderr for long work: a spinner or a bar on a terminal, nothing when piped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` while the block runs (only when stderr is a terminal)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def _noop(_n: int = 1, _description: str | None = None) -> None:
    return None


@contextlib.contextmanager
def bar(total: int, label: str, *, enabled: bool = True, unit: str = "items",
        min_total: int = 0) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for ``total`` units of work; yields ``advance(n, description=None)``.

    A ``description`` replaces the label (e.g. to show a rate or a running loss).

    Shown only when ``enabled``, stderr is a terminal and ``total >= min_total``; otherwise ``advance``
    does nothing (and rich is not imported). ``unit="bytes"`` shows sizes and a transfer rate instead
    of ``done/total``. The bar is removed when the block ends.
    """
    if not (enabled and sys.stderr.isatty() and total >= min_total):
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    with Progress(TextColumn("{task.description}"), BarColumn(), *counts, TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        def advance(n: int = 1, description: str | None = None) -> None:
            progress.update(task, advance=n, **({"description": description} if description else {}))

        yield advance
