"""Claiming a try and recording its end: the runner's metastore writes.

Both are compare-and-set transitions: the claim moves ``queued → running`` only for
the try number in the message, so a message delivered twice, or an old one after a
re-send, runs nothing; the record moves ``running → end state`` only for that try, so a
try that was reaped as a zombie or cleared by a user cannot overwrite the new truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from cluster.dagfiles.serialized import SerializedTask
from cluster.execution.outcome import TryOutcome
from cluster.executors.base import TaskMessage
from cluster.metastore.models import DagRun, TaskInstance, TaskInstanceHistory, XCom
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.scheduler.policy.retries import next_try_at
from cluster.states import TaskState


@dataclass(frozen=True)
class ClaimedTry:
    """What the runner needs of the instance and its run once it holds the try."""

    key: TaskKey
    try_number: int
    max_tries: int
    start_date: datetime
    sensor_started_at: datetime | None
    logical_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_type: str
    conf: dict[str, Any]
    run_start_date: datetime | None
    #: ``(data_interval_start, data_interval_end, start_date)`` of the DAG's previous
    #: successful run, for the ``prev_*_success`` template variables
    prev_success: tuple[datetime | None, datetime | None, datetime | None] = (None, None, None)


def key_of(message: TaskMessage) -> TaskKey:
    return TaskKey(message.dag_id, message.run_id, message.task_id, message.map_index)


def claim(
    session: Session, message: TaskMessage, *, hostname: str, pid: int, now: datetime
) -> ClaimedTry | None:
    """Move the try ``queued → running``; ``None`` when someone else has it or it is gone."""
    key = key_of(message)
    won = set_task_state(
        session,
        key,
        TaskState.RUNNING,
        expected=[TaskState.QUEUED],
        try_number=message.try_number,
        values={
            "start_date": now,
            "end_date": None,
            "duration": None,
            "hostname": hostname,
            "pid": pid,
            "heartbeat_at": now,
            # a sensor in reschedule mode measures its timeout from its first poke
            "sensor_started_at": func.coalesce(TaskInstance.sensor_started_at, now),
        },
    )
    if not won:
        return None
    row = session.execute(_claimed_query(key)).one()
    if message.try_number > 1:
        # XComs of an earlier try (or of the run before a clear) must not leak into this one
        session.execute(delete(XCom).where(*_xcom_key(key)))
    return ClaimedTry(
        key=key,
        try_number=message.try_number,
        max_tries=row.max_tries,
        start_date=now,
        sensor_started_at=row.sensor_started_at,
        logical_date=row.logical_date,
        data_interval_start=row.data_interval_start,
        data_interval_end=row.data_interval_end,
        run_type=row.run_type,
        conf=dict(row.conf or {}),
        run_start_date=row.start_date,
        prev_success=(row.prev_start, row.prev_end, row.prev_started),
    )


def _claimed_query(key: TaskKey) -> Any:
    """The instance, its run and the DAG's previous successful run, in one round trip."""
    previous = aliased(DagRun)

    def from_previous_success(column: Any) -> Any:
        return (
            select(column)
            .where(
                previous.dag_id == DagRun.dag_id,
                previous.state == "success",
                previous.logical_date < DagRun.logical_date,
            )
            .order_by(previous.logical_date.desc())
            .limit(1)
            .scalar_subquery()
        )

    return (
        select(
            TaskInstance.max_tries,
            TaskInstance.sensor_started_at,
            DagRun.logical_date,
            DagRun.data_interval_start,
            DagRun.data_interval_end,
            DagRun.run_type,
            DagRun.conf,
            DagRun.start_date,
            from_previous_success(previous.data_interval_start).label("prev_start"),
            from_previous_success(previous.data_interval_end).label("prev_end"),
            from_previous_success(previous.start_date).label("prev_started"),
        )
        .join(
            DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id)
        )
        .where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.map_index == key.map_index,
        )
    )


def _xcom_key(key: TaskKey) -> tuple[Any, ...]:
    return (
        XCom.dag_id == key.dag_id,
        XCom.run_id == key.run_id,
        XCom.task_id == key.task_id,
        XCom.map_index == key.map_index,
    )


def end_state(
    outcome: TryOutcome, claimed: ClaimedTry, task: SerializedTask, now: datetime
) -> tuple[TaskState, datetime | None]:
    """The state a try ends in and, for retries and reschedules, when to try again."""
    if outcome.state == "up_for_reschedule" and outcome.reschedule_at:
        at = datetime.fromisoformat(outcome.reschedule_at)
        return TaskState.UP_FOR_RESCHEDULE, at if at.tzinfo else at.replace(tzinfo=UTC)
    if outcome.state == "failed":
        if outcome.retryable and claimed.try_number <= claimed.max_tries:
            return TaskState.UP_FOR_RETRY, next_try_at(task, claimed.try_number, now)
        return TaskState.FAILED, None
    return TaskState(outcome.state), None


def record(
    session: Session,
    claimed: ClaimedTry,
    outcome: TryOutcome,
    task: SerializedTask,
    *,
    hostname: str,
    pid: int,
    now: datetime,
) -> TaskState | None:
    """Write the end of the try in one transaction; ``None`` when the try lost its claim."""
    state, retry_at = end_state(outcome, claimed, task, now)
    duration = (now - claimed.start_date).total_seconds()
    values: dict[str, Any] = {"end_date": now, "duration": duration, "next_try_at": retry_at}
    if outcome.rendered_fields is not None:
        values["rendered_fields"] = outcome.rendered_fields
    if state != TaskState.UP_FOR_RESCHEDULE:
        values["sensor_started_at"] = None
    won = set_task_state(
        session,
        claimed.key,
        state,
        expected=[TaskState.RUNNING],
        try_number=claimed.try_number,
        values=values,
    )
    if not won:
        return None
    _write_xcoms(session, claimed.key, outcome.xcoms, now)
    _skip(session, claimed.key, outcome.skip_downstream)
    write_history(
        session,
        claimed.key,
        claimed.try_number,
        state,
        claimed.start_date,
        now,
        hostname=hostname,
        pid=pid,
        operator=task.operator,
    )
    return state


def _write_xcoms(
    session: Session, key: TaskKey, xcoms: list[tuple[str, str]], now: datetime
) -> None:
    rows = [
        {
            "dag_id": key.dag_id,
            "run_id": key.run_id,
            "task_id": key.task_id,
            "map_index": key.map_index,
            "key": name,
            "value": value,
            "timestamp": now,
        }
        for name, value in dict(xcoms).items()
    ]
    if rows:
        session.execute(insert(XCom), rows)


def _skip(session: Session, key: TaskKey, task_ids: list[str]) -> None:
    for task_id in task_ids:
        set_task_state(
            session,
            TaskKey(key.dag_id, key.run_id, task_id, key.map_index),
            TaskState.SKIPPED,
            expected=[TaskState.NONE, TaskState.SCHEDULED],
        )


def write_history(
    session: Session,
    key: TaskKey,
    try_number: int,
    state: TaskState,
    start: datetime | None,
    end: datetime,
    *,
    hostname: str | None,
    pid: int | None,
    operator: str | None,
) -> None:
    """One ``task_instance_history`` row per try (also for zombies and timeouts)."""
    session.execute(
        insert(TaskInstanceHistory).values(
            dag_id=key.dag_id,
            run_id=key.run_id,
            task_id=key.task_id,
            map_index=key.map_index,
            try_number=try_number,
            state=str(state),
            start_date=start,
            end_date=end,
            duration=(end - start).total_seconds() if start else None,
            hostname=hostname,
            pid=pid,
            operator=operator,
        )
    )


def heartbeat(session: Session, claimed: ClaimedTry, *, now: datetime) -> bool:
    """Refresh the heartbeat; ``False`` when the instance was set to another state."""
    key = claimed.key
    result = session.execute(
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.map_index == key.map_index,
            TaskInstance.state == TaskState.RUNNING,
            TaskInstance.try_number == claimed.try_number,
        )
        .values(heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
