"""Deferral in the metastore: a try defers with its trigger, and resumes exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cluster.metastore.models import TaskInstance, Trigger
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.metastore.triggers import (
    FAIL_METHOD,
    TIMEOUT_ERROR,
    Deferral,
    add_trigger,
    decode_next_kwargs,
    decode_value,
    defer_try,
    delete_unused,
    encode_value,
    fail,
    fire,
    load,
    time_out,
)
from cluster.states import TaskState

T0 = datetime(2025, 1, 1, tzinfo=UTC)
KEY = TaskKey("d", "r1", "wait")
MOMENT = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def _deferral(timeout_at: datetime | None = None) -> Deferral:
    return Deferral(
        classpath="cluster.triggers.temporal.DateTimeTrigger",
        trigger_kwargs={"moment": MOMENT, "end_from_trigger": False},
        next_method="execute_complete",
        next_kwargs={"started": T0},
        timeout_at=timeout_at,
    )


def _deferred(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
    *,
    timeout_at: datetime | None = None,
) -> int:
    add_run()
    add_task(KEY.task_id, state="running", try_number=3, max_tries=1)
    trigger_id = defer_try(session, KEY, 3, _deferral(timeout_at), fernet=fernet, now=T0)
    assert trigger_id is not None
    return trigger_id


def _row(session: Session) -> TaskInstance:
    session.expire_all()
    return session.scalars(select(TaskInstance)).one()


def test_a_deferring_try_stores_its_trigger_encrypted_and_frees_its_slot(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    trigger_id = _deferred(session, add_run, add_task, fernet, timeout_at=T0 + timedelta(hours=1))
    ti = _row(session)
    assert (ti.state, ti.trigger_id, ti.next_method) == ("deferred", trigger_id, "execute_complete")
    assert ti.trigger_timeout == T0 + timedelta(hours=1)
    stored = session.scalar(text("SELECT kwargs FROM trigger"))
    assert "moment" not in stored  # encrypted at rest
    [row] = load(session, [trigger_id], fernet=fernet)
    assert row.classpath == "cluster.triggers.temporal.DateTimeTrigger"
    assert row.kwargs == {"moment": MOMENT, "end_from_trigger": False}


def test_a_try_that_lost_its_claim_leaves_no_trigger(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    add_run()
    add_task(KEY.task_id, state="running", try_number=2)
    assert defer_try(session, KEY, 1, _deferral(), fernet=fernet, now=T0) is None
    assert session.scalars(select(Trigger)).all() == []
    assert _row(session).state == "running"


def test_an_event_resumes_the_same_try_once(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    trigger_id = _deferred(session, add_run, add_task, fernet)
    assert fire(session, trigger_id, MOMENT) == 1
    assert fire(session, trigger_id, MOMENT) == 0  # a second report resumes nothing
    ti = _row(session)
    # queueing adds one: the resumption runs as try 3 again, and max_tries is untouched
    assert (ti.state, ti.try_number, ti.max_tries, ti.trigger_id) == ("scheduled", 2, 1, None)
    assert ti.next_method == "execute_complete"
    assert decode_next_kwargs(ti.next_kwargs) == {"started": T0, "event": MOMENT}
    assert fail(session, trigger_id, "boom", []) == 0


def test_a_failed_trigger_sends_its_try_to_fail_with_the_traceback(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    trigger_id = _deferred(session, add_run, add_task, fernet)
    assert fail(session, trigger_id, "Trigger failure", ["Traceback", "ValueError: x"]) == 1
    ti = _row(session)
    assert (ti.state, ti.next_method) == ("scheduled", FAIL_METHOD)
    assert ti.next_kwargs == {
        "error": "Trigger failure",
        "traceback": ["Traceback", "ValueError: x"],
    }
    assert fire(session, trigger_id, None) == 0


def test_the_timeout_moves_only_tries_whose_time_passed(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    trigger_id = _deferred(session, add_run, add_task, fernet, timeout_at=T0 + timedelta(minutes=5))
    assert time_out(session, now=T0 + timedelta(minutes=4)) == 0
    assert time_out(session, now=T0 + timedelta(minutes=6)) == 1
    ti = _row(session)
    assert (ti.state, ti.next_method, ti.next_kwargs) == (
        "scheduled",
        FAIL_METHOD,
        {"error": TIMEOUT_ERROR},
    )
    assert fire(session, trigger_id, 1) == 0  # a late event cannot resume it again


def test_unused_triggers_are_deleted_and_waited_ones_kept(
    session: Session,
    add_run: Callable[..., object],
    add_task: Callable[..., TaskInstance],
    fernet: MultiFernet,
) -> None:
    waited = _deferred(session, add_run, add_task, fernet)
    orphan = add_trigger(session, "x.Y", {}, fernet=fernet, now=T0)
    assert delete_unused(session) == 1
    assert [t.id for t in session.scalars(select(Trigger))] == [waited]
    assert set_task_state(session, KEY, TaskState.NONE, by_user=True)  # a user's clear
    ti = _row(session)
    assert (ti.trigger_id, ti.next_method, ti.next_kwargs) == (None, None, None)
    assert delete_unused(session) == 1
    assert load(session, [waited, orphan], fernet=fernet) == []


def test_values_round_trip_through_json() -> None:
    value = {"at": MOMENT, "d": MOMENT.date(), "dt": timedelta(seconds=90), "xs": (1, "a", None)}
    assert decode_value(encode_value(value)) == {**value, "xs": [1, "a", None]}
    naive = datetime(2025, 1, 1)
    assert decode_value(encode_value(naive)) == naive.replace(tzinfo=UTC)
