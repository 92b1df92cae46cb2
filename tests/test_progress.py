"""The one progress bar every long stage uses: silent when piped, a real bar on a terminal."""

from __future__ import annotations

import io
import re
import sys

import pytest


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_silent_when_stderr_is_not_a_terminal_or_the_work_is_small(monkeypatch):
    from embedlens import progress

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with progress.bar(10, "work") as advance:
        assert advance is progress._noop
    monkeypatch.setattr(sys, "stderr", _Terminal())
    with progress.bar(10, "work", enabled=False) as advance:
        assert advance is progress._noop
    with progress.bar(10, "work", min_total=11) as advance:
        assert advance is progress._noop
    assert err.getvalue() == ""


@pytest.mark.parametrize("unit,total,steps,shown", [("items", 10, (3, 4), " 7/10"),
                                                    ("bytes", 3 << 20, (1 << 20,), "1.0/3.1 MB")])
def test_bar_on_a_terminal_draws_the_count_and_goes_away(monkeypatch, unit, total, steps, shown):
    from embedlens import progress

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress.bar(total, "counting things", unit=unit) as advance:
        for n in steps:
            advance(n)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.getvalue())  # drop colours and cursor moves
    last = [line for line in text.split("\r") if line.strip()][-1]
    assert last.startswith("counting things") and shown in last, last
    assert term.getvalue().endswith("\x1b[2K")  # transient: the bar's line is erased at the end


@pytest.mark.parametrize("terminal", [False, True])
def test_work_under_stop_on_stops_at_its_next_checkpoint_and_only_there(monkeypatch, terminal):
    import threading

    from embedlens import progress
    from embedlens.timing import Timings

    monkeypatch.setattr(sys, "stderr", _Terminal() if terminal else io.StringIO())
    stop, done = threading.Event(), []
    with progress.bar(5, "work") as advance:  # outside stop_on every checkpoint is a no-op
        advance(1)
    with progress.stop_on(stop), progress.bar(5, "work") as advance:
        assert progress.stoppable()
        for step in range(5):
            advance(1)
            done.append(step)
            if step == 1:
                stop.set()
                with pytest.raises(progress.Stopped):
                    advance(1)
                break
    assert done == [0, 1] and not progress.stoppable()
    with pytest.raises(progress.Stopped), progress.stop_on(stop):  # already asked to stop: not even started
        done.append("started")
    assert done == [0, 1]
    timings = Timings()
    with progress.stop_on(threading.Event()), timings.stage("knn"):
        pass
    later = threading.Event()
    with pytest.raises(progress.Stopped), progress.stop_on(later):
        later.set()
        with timings.stage("optimize"):
            done.append("optimized")
    assert "optimize" not in timings and "knn" in timings and done == [0, 1]


def test_a_shielded_block_runs_to_its_end_and_the_stop_waits_for_the_next_checkpoint_after_it():
    import threading

    from embedlens import progress

    stop, done = threading.Event(), []
    with pytest.raises(progress.Stopped), progress.stop_on(stop):
        with progress.shielded():
            stop.set()
            for step in range(3):
                progress.check_stop()
                done.append(step)
        done.append("after")
        progress.check_stop()
        done.append("never")
    assert done == [0, 1, 2, "after"] and not progress.stoppable()
