"""Progress on stderr for long work: a spinner or a bar on a terminal, nothing when piped.

The same checkpoints let the work's owner stop it: a thread running under :func:`stop_on` raises
:class:`Stopped` at its next progress step (a bar's ``advance``, a timed stage's start, a t-SNE callback)
once the event is set. The explorer stops its background maps this way when it closes, instead of
leaving minutes of k-NN search or t-SNE running for nobody.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator

_owner = threading.local()


class Stopped(Exception):
    """Raised at a progress checkpoint of work whose owner asked it to stop."""


@contextlib.contextmanager
def stop_on(event: threading.Event) -> Iterator[None]:
    """Run the block so that its progress checkpoints raise :class:`Stopped` once ``event`` is set."""
    previous = getattr(_owner, "event", None)
    _owner.event = event
    try:
        check_stop()
        yield
    finally:
        _owner.event = previous


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run the block to its end even if this thread's work is asked to stop meanwhile: its checkpoints pass
    (what it finishes is worth more than the seconds a stop would save, e.g. a search's result and its cache)."""
    with stop_on(threading.Event()):
        yield


def check_stop() -> None:
    """Raise :class:`Stopped` if this thread's work was asked to stop (a no-op outside :func:`stop_on`)."""
    event = getattr(_owner, "event", None)
    if event is not None and event.is_set():
        raise Stopped("stopped: its owner closed")


def stoppable() -> bool:
    """Whether this thread runs under :func:`stop_on` (so a library loop may pass a checkpoint callback)."""
    return getattr(_owner, "event", None) is not None


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
    check_stop()


@contextlib.contextmanager
def bar(total: int, label: str, *, enabled: bool = True, unit: str = "items",
        min_total: int = 0) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for ``total`` units of work; yields ``advance(n, description=None)``.

    A ``description`` replaces the label (e.g. to show a rate or a running loss).

    Shown only when ``enabled``, stderr is a terminal and ``total >= min_total``; otherwise ``advance``
    draws nothing (and rich is not imported). Either way ``advance`` is a :func:`check_stop` checkpoint.
    ``unit="bytes"`` shows sizes and a transfer rate instead of ``done/total``. The bar is removed when the
    block ends.
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
            check_stop()
            progress.update(task, advance=n, **({"description": description} if description else {}))

        yield advance
