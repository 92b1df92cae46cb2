"""An engine a caller entered can be entered again by a stage: one start, one stop."""

from __future__ import annotations


def test_an_engine_entered_again_by_a_stage_opens_and_closes_once():
    from embedlens.engines import Engine, LocalEngine

    class Counting(LocalEngine):
        opened = closed = 0

        def open(self) -> None:
            self.opened += 1

        def close(self) -> None:
            self.closed += 1

    eng = Counting()
    assert isinstance(eng, Engine)
    with eng as outer:
        with eng as inner:  # what count_tokens / occurrences do with the caller's engine
            assert inner is outer and (eng.opened, eng.closed) == (1, 0)
        assert eng.closed == 0  # the caller still holds it
    assert (eng.opened, eng.closed) == (1, 1)
    with eng:  # entered again later: opened again
        pass
    assert (eng.opened, eng.closed) == (2, 2)
