"""Small helpers shared by the benchmark scripts: medians, subprocess timing, peak RSS."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDLENS = str(Path(sys.executable).parent / "embedlens")


def run_times(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    return statistics.median(run_times(fn, repeats, warmup))


def run_timed(args: list[str], repeats: int = 3, env: dict | None = None) -> tuple[float, float]:
    """Median wall time and max peak RSS (MB) of a command run ``repeats`` times."""
    walls, peaks = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(args, check=True, capture_output=True, env={**os.environ, **(env or {})})
        walls.append(time.perf_counter() - t)
        peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return statistics.median(walls), max(peaks)
