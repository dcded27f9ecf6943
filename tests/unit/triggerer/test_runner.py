"""The triggerer's event loop: triggers run concurrently, each to its first event,
error or cancellation, and their outcomes cross to the metastore side intact."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cluster.triggerer.outcomes import Failed, Fired, Outcome
from cluster.triggerer.runner import TriggerRunner
from tests.unit.triggerer.sample_triggers import (
    CLEANED,
    GATE,
    STARTED,
    Blocker,
    Gated,
    Raiser,
    Silent,
    Sleeper,
)
from tests.waiting import wait_for


@pytest.fixture
def woken() -> threading.Event:
    return threading.Event()


@pytest.fixture
def runner(woken: threading.Event) -> Iterator[TriggerRunner]:
    runner = TriggerRunner(on_outcome=woken.set)
    runner.start()
    yield runner
    runner.stop(timeout=5)


def outcomes(runner: TriggerRunner, count: int) -> list[Outcome]:
    found: list[Outcome] = []

    def enough() -> bool:
        found.extend(runner.take_outcomes())
        return len(found) >= count

    wait_for(enough, timeout=60, interval=0.01, message=f"{count} outcomes")
    return found


def test_a_trigger_fires_once_and_is_cleaned_up(
    runner: TriggerRunner, woken: threading.Event
) -> None:
    runner.add(1, Sleeper(0.01, payload={"at": 1}, name="one"))
    assert outcomes(runner, 1) == [Fired(1, {"at": 1})]
    assert woken.is_set()
    wait_for(lambda: "one" in CLEANED, timeout=5, message="cleanup")
    assert runner.running() == set()
    assert runner.known() == {1}  # until its outcome is written
    runner.forget([1])
    assert runner.known() == set()
    assert runner.take_outcomes() == []  # the second event is never read


def test_a_trigger_that_raises_fails_with_its_traceback(runner: TriggerRunner) -> None:
    runner.add(2, Raiser(0.0, name="two"))
    [failed] = outcomes(runner, 1)
    assert isinstance(failed, Failed) and failed.trigger_id == 2
    text = "".join(failed.traceback)
    assert text.startswith("Traceback") and "RuntimeError: the sky fell on two" in text


def test_a_trigger_that_ends_without_an_event_fails(runner: TriggerRunner) -> None:
    runner.add(3, Silent(0.0, name="three"))
    [failed] = outcomes(runner, 1)
    assert isinstance(failed, Failed)
    assert "exited without sending an event" in "".join(failed.traceback)


def test_a_cancelled_trigger_has_no_outcome_and_is_cleaned_up(runner: TriggerRunner) -> None:
    runner.add(4, Sleeper(60, name="four"))
    wait_for(lambda: "four" in STARTED, timeout=5, message="trigger 4 running")
    runner.cancel([4])
    wait_for(lambda: "four" in CLEANED, timeout=5, message="cleanup of a cancelled trigger")
    wait_for(lambda: runner.known() == set(), timeout=5, message="trigger 4 forgotten")
    assert runner.take_outcomes() == []


def test_an_id_handed_in_twice_runs_once(runner: TriggerRunner) -> None:
    runner.add(5, Sleeper(0.05, payload="first"))
    runner.add(5, Sleeper(0.0, payload="second"))
    assert outcomes(runner, 1) == [Fired(5, "first")]


def test_a_thousand_triggers_wait_together_on_one_loop(runner: TriggerRunner) -> None:
    GATE.clear()
    try:
        for n in range(1000):
            runner.add(n, Gated(payload=n))
        # all at once: none can fire before the gate opens (a fixed 0.5 s sleep could end
        # before the last was added on a loaded machine)
        wait_for(lambda: len(runner.running()) == 1000, timeout=60, message="1000 running")
        assert runner.take_outcomes() == []
    finally:
        GATE.set()
    fired = outcomes(runner, 1000)
    assert sorted(o.trigger_id for o in fired) == list(range(1000))
    assert all(isinstance(o, Fired) and o.payload == o.trigger_id for o in fired)


def test_fencing_cancels_everything_and_drops_unwritten_outcomes(runner: TriggerRunner) -> None:
    runner.add(6, Sleeper(0.0, payload="unwritten"))
    runner.add(7, Sleeper(60))
    wait_for(lambda: runner.running() == {7}, timeout=5, message="6 done, 7 running")
    runner.cancel_all()
    wait_for(lambda: runner.known() == set(), timeout=5, message="everything forgotten")
    assert runner.take_outcomes() == []


def test_the_watchdog_counts_a_blocked_loop(runner: TriggerRunner) -> None:
    runner.add(8, Blocker(0.5))
    assert outcomes(runner, 1) == [Fired(8, "blocked")]
    wait_for(lambda: runner.blocked >= 1, timeout=5, message="a blocked loop noticed")


def test_stop_cancels_running_triggers_with_their_cleanup() -> None:
    runner = TriggerRunner()
    runner.start()
    runner.add(9, Sleeper(60, name="nine"))
    wait_for(lambda: "nine" in STARTED, timeout=5, message="trigger 9 running")
    runner.stop(timeout=5)
    assert "nine" in CLEANED
    assert runner.running() == set()
