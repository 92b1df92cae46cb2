"""Background work of the server: projections, corpus frequencies and grid maps, one at a time.

Heavy work runs on a single background thread (the machine's cores go to one NumPy/torch job at a
time, queries keep their own threads), is keyed so that asking twice starts it once, and reports its
state (``queued``, ``running``, ``ready``, ``error``) with timings for the progress indicator.
A free worker takes the queued job of lowest ``priority`` (then the oldest): a few seconds of clusters
asked for by the page go ahead of a minute of t-SNE queued before them, never in the middle of it.

Every long-work endpoint answers one shape, :func:`job_answer`: ``{"job": Job.to_dict(), "result": null}``
while the job is queued or running, then ``"result"``: the library result's ``to_dict()`` (the shape its file on
disk has), with the per-row columns the page needs beside it under their own keys.

Projections are the atlas' own (:mod:`embedlens.atlas.projection`): computed by the same pipeline as
``embedlens map --all`` and cached on disk.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import EmbedlensError
from ..progress import Stopped, stop_on

log = logging.getLogger("embedlens")


@dataclass
class Job:
    """One piece of background work and what the page is told about it."""

    key: str
    kind: str
    label: str
    state: str = "queued"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    error_reported: bool = False  # a failed job is retried only once its error has been answered
    result: Any = None
    future: Future | None = None
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        now = time.time()
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "queued_s": round((self.started or now) - self.submitted, 3),
            "elapsed_s": round((self.finished or now) - self.started, 3) if self.started else 0.0,
            "error": self.error,
        }


def job_answer(job: Job, answer: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """What a long-work endpoint answers about ``job``: ``{"job": job.to_dict(), "result": None}`` until it is
    ready, then ``answer(job.result)`` merged in: ``{"result": result.to_dict(), ...page columns}``."""
    out: dict[str, Any] = {"job": job.to_dict(), "result": None}
    if job.state == "ready":
        out.update(answer(job.result))
    return out


def ready_answer(key: str, kind: str, label: str, result: Any, answer: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """:func:`job_answer` of a result already at hand (what a static export stores for the page)."""
    now = time.time()
    return job_answer(Job(key, kind, label, state="ready", submitted=now, started=now, finished=now, result=result), answer)


class JobManager:
    """Runs keyed jobs on ``workers`` threads, lowest ``priority`` first; a key already known returns the existing job."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedlens-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: list[tuple[int, int, Job, Callable[[], None]]] = []
        self._order = itertools.count()
        self._stop = threading.Event()
        self._turns: set[Future] = set()  # the pool's turns not yet ended (a turn runs whichever job comes first)

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, kind: str, label: str, fn: Callable[[], Any], *, retry_failed: bool = True,
               priority: int = 0) -> Job:
        """The job of ``key``: the known one, or ``fn`` queued (with ``retry_failed``, a failed one again once
        its error has been answered: a page polling a job sees the error before any retry)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not (retry_failed and job.state == "error" and job.error_reported):
                if job.state == "error":
                    job.error_reported = True
                return job
            job = Job(key, kind, label, priority=priority)
            self._jobs[key] = job

        def run() -> None:
            job.started, job.state = time.time(), "running"
            try:
                with stop_on(self._stop):
                    job.result = fn()
                job.state = "ready"
            except (Stopped, EmbedlensError) as exc:
                job.error, job.state = str(exc), "error"
            except MemoryError:
                job.error, job.state = "out of memory", "error"
            except Exception as exc:  # a bug: keep serving, tell the page in one line
                log.warning("background job %s failed: %s: %s", label, type(exc).__name__, exc)
                job.error, job.state = f"internal error: {type(exc).__name__}: {exc}", "error"
            finally:
                job.finished = time.time()

        with self._lock:
            heapq.heappush(self._queue, (priority, next(self._order), job, run))
        # Each submission gives the pool one turn; a turn runs whichever queued job comes first then.
        turn = self._pool.submit(self._run_next)
        with self._lock:
            self._turns.add(turn)
        turn.add_done_callback(self._turn_ended)
        job.future = turn
        return job

    def _turn_ended(self, turn: Future) -> None:
        with self._lock:
            self._turns.discard(turn)

    def _run_next(self) -> None:
        with self._lock:
            if not self._queue:
                return
            _, _, _, run = heapq.heappop(self._queue)
        run()

    def done(self, key: str, result: Any, kind: str, label: str) -> Job:
        """Record a result that needed no work (found on disk)."""
        with self._lock:
            job = Job(key, kind, label, state="ready", started=time.time(), finished=time.time(), result=result)
            self._jobs[key] = job
            return job

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.to_dict() for j in self._jobs.values()]

    def shutdown(self) -> None:
        """Drop the queued jobs and stop the running one at its next progress checkpoint (:meth:`wait` for it)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for every job to end (after :meth:`shutdown`: to stop); whether they did."""
        with self._lock:
            # A turn cancelled by shutdown never runs; futures.wait would count it as pending to the timeout.
            turns = [turn for turn in self._turns if not turn.cancelled()]
        return not concurrent.futures.wait(turns, timeout=timeout).not_done
