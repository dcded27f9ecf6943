"""Deferral in the metastore: trigger rows, and the moves of deferred tries.

A try that defers inserts its ``trigger`` row and moves ``running → deferred`` in one
transaction (:func:`defer_try`); a triggerer later runs the trigger and reports its
event (:func:`fire`) or its failure (:func:`fail`); the scheduler leader times out the
tries whose ``trigger_timeout`` passed (:func:`time_out`). Each of these is a
compare-and-set on ``state = 'deferred' AND trigger_id = :id``, so an event reported
twice (two triggerers after a takeover, a retried transaction) resumes a try once.

A resumed try goes back to ``scheduled`` with its try number lowered by one: tries are
numbered when they are queued, so the resumption runs as the same try (same number,
same log file, no retry consumed), as in Airflow, where a resumption is not a new try.

Values that cross the metastore here (trigger kwargs, ``next_kwargs``, event payloads)
are JSON with datetimes and timedeltas tagged (:func:`encode_value`), so a
``DateTimeTrigger``'s moment comes back a timezone-aware datetime, not a string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.orm import Session

from cluster.metastore.models import TASK_INSTANCE
from cluster.metastore.secrets import decrypt, encrypt
from cluster.metastore.transitions import TaskKey, keys_clause
from cluster.metastore.trigger_models import TRIGGER
from cluster.states import TaskState, check_task_transition

#: ``next_method`` of a try whose trigger failed or timed out: the worker fails it
FAIL_METHOD = "__fail__"
#: Airflow's error text for a trigger (or execution) timeout
TIMEOUT_ERROR = "Trigger/execution timeout"
#: Airflow's error text for a trigger that raised
FAILURE_ERROR = "Trigger failure"

_TAG = "__tw_type__"
_DEFERRED = str(TaskState.DEFERRED)
_SCHEDULED = str(TaskState.SCHEDULED)


@dataclass(frozen=True, slots=True)
class TriggerRow:
    """A trigger as a triggerer needs it: its class path and its decrypted kwargs."""

    id: int
    classpath: str
    kwargs: dict[str, Any]


def encode_value(value: Any) -> Any:
    """``value`` as plain JSON data, with datetimes, dates and timedeltas tagged.

    :raises TypeError: for a value JSON cannot hold (an object, a set): a trigger's
        kwargs and an event's payload must be data, as in Airflow's serializer.
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {_TAG: "datetime", "value": moment.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "value": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "value": value.total_seconds()}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a trigger or its event: {value!r}")


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        kind = value.get(_TAG)
        if kind == "datetime":
            return datetime.fromisoformat(value["value"])
        if kind == "date":
            return date.fromisoformat(value["value"])
        if kind == "timedelta":
            return timedelta(seconds=value["value"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def add_trigger(
    session: Session,
    classpath: str,
    kwargs: Mapping[str, Any],
    *,
    fernet: MultiFernet,
    now: datetime,
) -> int:
    """Insert a trigger row (kwargs encrypted) and return its id."""
    text = encrypt(fernet, json.dumps(encode_value(dict(kwargs)), sort_keys=True))
    result = session.connection().execute(
        insert(TRIGGER).values(classpath=classpath, kwargs=text, created_at=now)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


@dataclass(frozen=True, slots=True)
class Deferral:
    """What a deferring try asks for (Airflow's ``TaskDeferred``, resolved)."""

    classpath: str
    trigger_kwargs: Mapping[str, Any]
    next_method: str
    next_kwargs: Mapping[str, Any]
    #: when the scheduler fails the try if the trigger has not fired (None: never)
    timeout_at: datetime | None


def defer_try(
    session: Session,
    key: TaskKey,
    try_number: int,
    deferral: Deferral,
    *,
    fernet: MultiFernet,
    now: datetime,
) -> int | None:
    """Insert the trigger and move the try ``running → deferred`` in the caller's
    transaction; the trigger id, or ``None`` when the try lost its claim (zombie, clear):
    then the trigger row is deleted again, and nothing waits on it."""
    check_task_transition(TaskState.RUNNING, TaskState.DEFERRED)
    trigger_id = add_trigger(
        session, deferral.classpath, deferral.trigger_kwargs, fernet=fernet, now=now
    )
    moved = session.connection().execute(
        update(TASK_INSTANCE)
        .where(
            keys_clause([key]),
            TASK_INSTANCE.c.state == str(TaskState.RUNNING),
            TASK_INSTANCE.c.try_number == try_number,
        )
        .values(
            state=_DEFERRED,
            trigger_id=trigger_id,
            trigger_timeout=deferral.timeout_at,
            next_method=deferral.next_method,
            next_kwargs=encode_value(dict(deferral.next_kwargs)),
            heartbeat_at=None,
        )
    )
    if moved.rowcount == 1:
        return trigger_id
    session.connection().execute(delete(TRIGGER).where(TRIGGER.c.id == trigger_id))
    return None


def _resume(
    session: Session, key: TaskKey, trigger_id: int, next_method: str | None, kwargs: Any
) -> bool:
    """One deferred try back to ``scheduled`` as the same try (see the module's note)."""
    values: dict[str, Any] = {
        "state": _SCHEDULED,
        "trigger_id": None,
        "trigger_timeout": None,
        "next_kwargs": kwargs,
        "try_number": TASK_INSTANCE.c.try_number - 1,
    }
    if next_method is not None:
        values["next_method"] = next_method
    moved = session.connection().execute(
        update(TASK_INSTANCE)
        .where(
            keys_clause([key]),
            TASK_INSTANCE.c.state == _DEFERRED,
            TASK_INSTANCE.c.trigger_id == trigger_id,
        )
        .values(values)
    )
    return moved.rowcount == 1


def _waiting_on(session: Session, trigger_id: int) -> list[Any]:
    return list(
        session.connection().execute(
            select(
                TASK_INSTANCE.c.dag_id,
                TASK_INSTANCE.c.run_id,
                TASK_INSTANCE.c.task_id,
                TASK_INSTANCE.c.map_index,
                TASK_INSTANCE.c.next_kwargs,
            ).where(
                TASK_INSTANCE.c.trigger_id == trigger_id,
                TASK_INSTANCE.c.state == _DEFERRED,
            )
        )
    )


def fire(session: Session, trigger_id: int, payload: Any) -> int:
    """Resume every try deferred on ``trigger_id`` with the event's ``payload`` (added
    to its ``next_kwargs`` as ``event``); return how many moved. Keeps the trigger row
    (its triggerer deletes it, or :func:`delete_unused` does)."""
    check_task_transition(TaskState.DEFERRED, TaskState.SCHEDULED)
    event = encode_value(payload)
    moved = 0
    for row in _waiting_on(session, trigger_id):
        kwargs = {**(row.next_kwargs or {}), "event": event}
        key = TaskKey(row.dag_id, row.run_id, row.task_id, row.map_index)
        moved += _resume(session, key, trigger_id, None, kwargs)
    return moved


def fail(session: Session, trigger_id: int, error: str, traceback: list[str]) -> int:
    """Send every try deferred on ``trigger_id`` to a worker to fail there (its
    callbacks and retries apply), with the trigger's error and traceback for its log."""
    check_task_transition(TaskState.DEFERRED, TaskState.SCHEDULED)
    kwargs = {"error": error, "traceback": list(traceback)}
    moved = 0
    for row in _waiting_on(session, trigger_id):
        key = TaskKey(row.dag_id, row.run_id, row.task_id, row.map_index)
        moved += _resume(session, key, trigger_id, FAIL_METHOD, kwargs)
    return moved


def time_out(session: Session, *, now: datetime) -> int:
    """Send every deferred try whose ``trigger_timeout`` passed to fail on a worker, as
    Airflow's scheduler does; one UPDATE on ``idx_ti_state_trigger_timeout``."""
    check_task_transition(TaskState.DEFERRED, TaskState.SCHEDULED)
    moved = session.connection().execute(
        update(TASK_INSTANCE)
        .where(
            TASK_INSTANCE.c.state == _DEFERRED,
            TASK_INSTANCE.c.trigger_timeout < now,
        )
        .values(
            state=_SCHEDULED,
            trigger_id=None,
            trigger_timeout=None,
            next_method=FAIL_METHOD,
            next_kwargs={"error": TIMEOUT_ERROR},
            try_number=TASK_INSTANCE.c.try_number - 1,
        )
    )
    return int(moved.rowcount or 0)


def load(session: Session, ids: Iterable[int], *, fernet: MultiFernet) -> list[TriggerRow]:
    """The triggers ``ids`` (those that still exist), kwargs decrypted and decoded.

    :raises SecretError: when the configured keys cannot decrypt a row's kwargs.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = session.connection().execute(
        select(TRIGGER.c.id, TRIGGER.c.classpath, TRIGGER.c.kwargs).where(TRIGGER.c.id.in_(wanted))
    )
    return [
        TriggerRow(row.id, row.classpath, decode_value(json.loads(decrypt(fernet, row.kwargs))))
        for row in rows
    ]


def delete_unused(session: Session) -> int:
    """Delete the trigger rows no deferred task instance waits on; return how many."""
    waited_on = exists().where(
        TASK_INSTANCE.c.trigger_id == TRIGGER.c.id, TASK_INSTANCE.c.state == _DEFERRED
    )
    result = session.connection().execute(delete(TRIGGER).where(~waited_on))
    return int(result.rowcount or 0)


def decode_next_kwargs(stored: Any) -> dict[str, Any]:
    """A claimed try's ``next_kwargs`` as the method it resumes in receives them."""
    decoded = decode_value(stored or {})
    return dict(decoded) if isinstance(decoded, dict) else {}
