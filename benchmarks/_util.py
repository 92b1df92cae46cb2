"""Small helpers shared by the benchmark scripts: the machine, medians, subprocess timing, peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDLENS = str(Path(sys.executable).parent / "embedlens")


def machine() -> str:
    """One line saying what the figures were measured on: CPU model, cores, memory, bfloat16, load."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        from embedlens.hardware import fast_bfloat16

        bf16 = "fast bfloat16" if fast_bfloat16() else "slow bfloat16 (no bf16 units)"
    except Exception:  # torch missing: the figure is about something else
        bf16 = "bfloat16 not probed"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {cpu}, {os.cpu_count()} cores{mem}, {bf16}; load average {load}"


def print_machine() -> None:
    print(machine(), flush=True)


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


def runs_note(n: int) -> str:
    """What a printed figure is over: ``median of 5`` (``1 run`` when there was one, which is no median)."""
    return f"median of {n}" if n > 1 else "1 run"


def run_once(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of ONE run of a command (its own rusage, not the max over all children),
    and what it printed (stdout and stderr)."""
    import tempfile

    with tempfile.TemporaryFile() as out:  # a file, not a pipe: a chatty command never blocks on a full pipe
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        text = out.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text


def run_timed(args: list[str], repeats: int = 3, env: dict | None = None) -> tuple[float, float]:
    """Median wall time and max peak RSS (MB) of a command run ``repeats`` times."""
    runs = [run_once(args, env) for _ in range(repeats)]
    return statistics.median(w for w, _, _ in runs), max(r for _, r, _ in runs)
