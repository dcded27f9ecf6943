"""A triggerer on a real (SQLite) metastore: claims, outcomes, capacity, takeover, fencing.

The must-show runs with real processes on MariaDB are in
tests/integration/test_triggerer_process.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from cluster.metastore import trigger_claims
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Component, TaskInstance, Trigger
from cluster.metastore.transitions import TaskKey
from cluster.metastore.triggers import FAIL_METHOD, decode_next_kwargs
from cluster.triggerer.delivery import write_outcomes
from cluster.triggerer.outcomes import Fired
from tests.unit.triggerer.conftest import Defer, MakeTriggerer
from tests.waiting import wait_for


def tries(sessions: SessionFactory) -> dict[str, TaskInstance]:
    with sessions() as session:
        return {ti.task_id: ti for ti in session.scalars(select(TaskInstance))}


def owners(sessions: SessionFactory) -> dict[int, int | None]:
    with sessions() as session:
        return {row[0]: row[1] for row in session.execute(select(Trigger.id, Trigger.triggerer_id))}


def all_resumed(sessions: SessionFactory, count: int) -> bool:
    found = tries(sessions)
    return len(found) == count and all(ti.state == "scheduled" for ti in found.values())


def test_an_event_resumes_the_try_and_deletes_the_trigger(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(3, "Sleeper", seconds=0.05, payload={"rows": 7})
    triggerer = make_triggerer()
    wait_for(lambda: all_resumed(session_factory, 3), timeout=10, message="3 tries resumed")
    for ti in tries(session_factory).values():
        assert ti.next_method == "execute_complete" and ti.trigger_id is None
        assert decode_next_kwargs(ti.next_kwargs) == {"event": {"rows": 7}}
    wait_for(lambda: owners(session_factory) == {}, timeout=5, message="trigger rows deleted")
    assert triggerer.pulse.component_id is not None
    registry = triggerer.metrics.registry
    fired = {"outcome": "fired"}
    assert registry.get_sample_value("tradewind_triggerer_triggers_total", fired) == 3
    claimed = {"source": "unassigned"}
    assert registry.get_sample_value("tradewind_triggerer_claimed_triggers_total", claimed) == 3
    assert registry.get_sample_value("tradewind_triggerer_capacity") == 1000


def test_a_trigger_that_raises_fails_its_try_with_the_traceback(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(1, "Raiser", name="the_raiser")
    make_triggerer()
    wait_for(lambda: all_resumed(session_factory, 1), timeout=10, message="the try sent to fail")
    [ti] = tries(session_factory).values()
    assert ti.next_method == FAIL_METHOD
    kwargs = decode_next_kwargs(ti.next_kwargs)
    assert kwargs["error"] == "Trigger failure"
    assert "RuntimeError: the sky fell on the_raiser" in "".join(kwargs["traceback"])


def test_a_trigger_class_that_cannot_be_imported_fails_its_try(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(1, "tests.unit.triggerer.no_such_module.Gone")
    make_triggerer()
    wait_for(lambda: all_resumed(session_factory, 1), timeout=10, message="the try sent to fail")
    [ti] = tries(session_factory).values()
    assert ti.next_method == FAIL_METHOD
    assert "no_such_module" in "".join(decode_next_kwargs(ti.next_kwargs)["traceback"])


def test_a_triggerer_runs_no_more_than_its_capacity(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(5, "Sleeper", seconds=60)
    triggerer = make_triggerer(capacity=2)
    wait_for(lambda: len(triggerer.runner.running()) == 2, timeout=10, message="2 running")
    held = [owner for owner in owners(session_factory).values() if owner is not None]
    assert held == [triggerer.pulse.component_id] * 2


def test_a_clean_stop_hands_the_triggers_back(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(2, "Sleeper", seconds=60)
    first = make_triggerer(capacity=2)
    wait_for(lambda: len(first.runner.running()) == 2, timeout=10, message="2 running")
    first.stop()
    wait_for(
        lambda: set(owners(session_factory).values()) == {None},
        timeout=10,
        message="triggers handed back",
    )
    second = make_triggerer("master2")
    wait_for(lambda: len(second.runner.running()) == 2, timeout=10, message="taken at once")


def _stale_triggerer(sessions: SessionFactory, *, age: float, pid: int = 1) -> int:
    """A triggerer row whose last heartbeat is ``age`` seconds old."""
    beat = datetime.now(UTC) - timedelta(seconds=age)
    with sessions.begin() as session:
        row = Component(kind="triggerer", host="gone", pid=pid, started_at=beat, heartbeat_at=beat)
        session.add(row)
        session.flush()
        return row.id


def _assign(sessions: SessionFactory, owner: int) -> None:
    with sessions.begin() as session:
        session.execute(update(Trigger).values(triggerer_id=owner))


def test_the_triggers_of_a_dead_triggerer_are_taken_over(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(4, "Sleeper", seconds=60)
    dead = _stale_triggerer(session_factory, age=60)
    _assign(session_factory, dead)
    alive = make_triggerer(health_timeout=5.0)
    wait_for(lambda: len(alive.runner.running()) == 4, timeout=10, message="4 taken over")
    assert set(owners(session_factory).values()) == {alive.pulse.component_id}
    taken = {"source": "taken_over"}
    registry = alive.metrics.registry
    assert registry.get_sample_value("tradewind_triggerer_claimed_triggers_total", taken) == 4


def test_the_triggers_of_a_live_triggerer_are_left_alone(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(2, "Sleeper", seconds=60)
    live = _stale_triggerer(session_factory, age=1)
    _assign(session_factory, live)
    other = make_triggerer(start=False, health_timeout=5.0)
    assert other.pulse.beat()
    other.runner.start()
    other.run_pass()
    assert other.runner.running() == set()
    assert set(owners(session_factory).values()) == {live}


def test_a_claim_takes_free_rows_and_leaves_a_live_triggerers_rows(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(6, "Sleeper", seconds=60)
    one, two = (_stale_triggerer(session_factory, age=0, pid=pid) for pid in (101, 102))
    now = datetime.now(UTC)
    with session_factory.begin() as session:
        first = trigger_claims.claim(session, one, room=4, now=now, health_timeout=5)
    with session_factory.begin() as session:
        second = trigger_claims.claim(session, two, room=6, now=now, health_timeout=5)
    assert first == {None: 4} and second == {None: 2}  # a live triggerer's rows stay its own
    assert sorted(owners(session_factory).values()) == [one] * 4 + [two] * 2


def test_outcomes_of_rows_no_longer_held_are_dropped(
    session_factory: SessionFactory, defer: Defer
) -> None:
    [key] = defer(1, "Sleeper", seconds=60)
    [trigger_id] = owners(session_factory)
    _assign(session_factory, 7)
    with session_factory.begin() as session:
        written = write_outcomes(session, 8, [Fired(trigger_id, "late")])
    assert (written.fired, written.dropped) == (0, 1)
    assert tries(session_factory)[key.task_id].state == "deferred"
    with session_factory.begin() as session:
        written = write_outcomes(session, 7, [Fired(trigger_id, "on time")])
    assert (written.fired, written.resumed) == (1, 1)
    assert owners(session_factory) == {}


def test_a_payload_the_metastore_cannot_hold_fails_the_try(
    session_factory: SessionFactory, defer: Defer
) -> None:
    [key] = defer(1, "Sleeper", seconds=60)
    [trigger_id] = owners(session_factory)
    _assign(session_factory, 7)
    with session_factory.begin() as session:
        written = write_outcomes(session, 7, [Fired(trigger_id, {1, 2})])
    assert written.failed == 1
    ti = tries(session_factory)[key.task_id]
    assert ti.next_method == FAIL_METHOD
    assert "cannot be stored" in "".join(decode_next_kwargs(ti.next_kwargs)["traceback"])


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_triggerer_that_cannot_heartbeat_stops_its_triggers(
    session_factory: SessionFactory, defer: Defer, make_triggerer: MakeTriggerer
) -> None:
    defer(3, "Sleeper", seconds=60)
    triggerer = make_triggerer(start=False, health_timeout=4.0, heartbeat_interval=0.5)
    clock = Monotonic()
    triggerer._monotonic = clock  # the pass's view of time
    triggerer.pulse._monotonic = clock
    assert triggerer.pulse.beat()
    triggerer.runner.start()
    triggerer.run_pass()
    wait_for(lambda: len(triggerer.runner.running()) == 3, timeout=10, message="3 running")
    clock.now += 2.5  # no heartbeat written for over half the health timeout
    triggerer.run_pass()
    wait_for(lambda: triggerer.runner.running() == set(), timeout=10, message="all stopped")
    assert triggerer.metrics.registry.get_sample_value("tradewind_triggerer_fenced_total") == 1
    assert triggerer.pulse.beat()  # the metastore answers again
    triggerer.run_pass()
    wait_for(lambda: len(triggerer.runner.running()) == 3, timeout=10, message="3 again")


def test_a_key_helper_makes_distinct_tries(defer: Defer) -> None:
    keys = defer(2, "Sleeper")
    assert keys == [TaskKey("d", "r1", "wait_0"), TaskKey("d", "r1", "wait_1")]
