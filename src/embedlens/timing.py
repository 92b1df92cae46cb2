"""One stopwatch for every stage: :class:`Timings`, seconds per named stage, as manifests record them.

>>> timings = Timings()
>>> with timings.stage("knn"):
...     graph = build()
>>> with timings.stage("optimize"):
...     coords = fit()
>>> timings["total"] = timings.since_start()
>>> dict(timings)                       # {"knn": 0.41, "optimize": 2.3, "total": 2.71}

A stage entered twice adds up (two k-NN searches are one ``knn`` figure); stages may nest (an outer
``reduce`` holding an inner ``knn``), each recording its own wall time. ``Timings`` is a ``dict`` (of
floats, or of a sub-stage's own timings, e.g. a reducer's ``timings_``), so it is saved to JSON as it is
and a stage may also be set by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .progress import check_stop


class Timings(dict[str, Any]):
    """Seconds per stage (``time.perf_counter`` wall time), in the order the stages first ran.

    Args:
        started: the ``time.perf_counter()`` value :meth:`since_start` counts from (default: now).
    """

    def __init__(self, *args: Any, started: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter() if started is None else started

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (added to what ``name`` already holds), even when it raises.

        Entering a stage is a checkpoint: work asked to stop (:func:`~embedlens.progress.stop_on`) stops here."""
        check_stop()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + (time.perf_counter() - t0)

    def since_start(self) -> float:
        """Seconds since this stopwatch was made (or since ``started``)."""
        return time.perf_counter() - self.started
