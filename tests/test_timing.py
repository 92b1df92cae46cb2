"""Timings: seconds per stage, added up, nested, recorded even when a stage fails."""

from __future__ import annotations

import json
import time

import pytest

from embedlens.timing import Timings


def test_stages_record_wall_time_add_up_and_nest(monkeypatch):
    clock = iter([10.0, 11.0, 11.5, 12.0, 14.0, 20.0, 23.0, 30.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    timings = Timings()  # started at 10
    with timings.stage("reduce"):  # 11 -> 23
        with timings.stage("knn"):  # 11.5 -> 12
            pass
        with timings.stage("knn"):  # 14 -> 20: a stage entered twice adds up
            pass
    assert timings == {"knn": 0.5 + 6.0, "reduce": 12.0}
    assert timings.since_start() == 20.0  # 30 - 10
    assert list(timings) == ["knn", "reduce"]  # in the order the stages ended


def test_a_failing_stage_is_still_recorded_and_the_error_passes():
    timings = Timings()
    with pytest.raises(ValueError, match="boom"), timings.stage("fit"):
        raise ValueError("boom")
    assert timings["fit"] >= 0.0


def test_it_is_a_plain_json_dict_and_takes_a_start():
    started = time.perf_counter() - 5.0
    timings = Timings({"open": 0.25}, started=started)
    timings["nested"] = {"optimize": 1.5}
    assert json.loads(json.dumps(timings)) == {"open": 0.25, "nested": {"optimize": 1.5}}
    assert timings.started == started and 5.0 <= timings.since_start() < 60.0

