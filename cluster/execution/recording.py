"""Claiming a try and recording its end: the runner's metastore writes.

Both are compare-and-set transitions: the claim moves ``queued → running`` only for
the try number in the message, so a message delivered twice, or an old one after a
re-send, runs nothing; the record moves ``running → end state`` only for that try, so a
try that was reaped as a zombie or cleared by a user cannot overwrite the new truth.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session, aliased

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.execution.mapped_inputs import MappedInputs, read_mapped_inputs
from cluster.execution.outcome import TryOutcome
from cluster.messages import TaskMessage
from cluster.metastore.datasets import EventSpec, record_events
from cluster.metastore.history import history_row
from cluster.metastore.models import (
    TASK_INSTANCE,
    TASK_INSTANCE_HISTORY,
    XCOM,
    DagRun,
    SerializedDagRow,
    TaskInstance,
    TaskMap,
    XCom,
)
from cluster.metastore.transitions import (
    IfNull,
    TaskKey,
    TryMove,
    current_tries,
    keys_clause,
    move_tries,
    set_task_state,
)
from cluster.metastore.triggers import decode_next_kwargs
from cluster.policy.retries import next_try_at
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
    #: a deferred try that resumes: the method to call and its kwargs (event included)
    next_method: str | None = None
    next_kwargs: dict[str, Any] | None = None
    #: a mapped instance: the values its run's mappings expand over (:mod:`.mapped_inputs`)
    mapped_inputs: MappedInputs = ()
    #: the DAG file of the try's version, when the claim knew it: a pool process then
    #: imports it without asking the metastore where it is
    fileloc: str | None = None


def key_of(message: TaskMessage) -> TaskKey:
    return TaskKey(message.dag_id, message.run_id, message.task_id, message.map_index)


def claim_many(
    session: Session,
    assignments: Sequence[tuple[TaskMessage, int]],
    *,
    hostname: str,
    now: datetime,
    optimistic: bool = False,
    files: Mapping[tuple[str, str], str | None] | None = None,
) -> dict[TaskMessage, ClaimedTry]:
    """Claim several tries in one transaction: each one a compare-and-set of its own,
    all of them in one locking read and one UPDATE.

    :param assignments: ``(message, pid of the process that will run it)``.
    :param optimistic: see :func:`~cluster.metastore.transitions.move_tries`.
    :param files: the DAG file of each ``(dag_id, fingerprint)`` known (``fileloc``).
    :return: the tries this call won, by message; a message missing from it was taken
        by someone else, re-sent with a newer try number, cleared or deleted.
    """
    moves = [
        TryMove(key_of(message), message.try_number, TaskState.RUNNING, {"pid": pid})
        for message, pid in assignments
    ]
    flags = move_tries(
        session,
        moves,
        expected=TaskState.QUEUED,
        shared=_claim_values(hostname, now),
        optimistic=optimistic,
    )
    won = [message for (message, _), ok in zip(assignments, flags, strict=True) if ok]
    by_run: dict[tuple[str, str], list[TaskMessage]] = defaultdict(list)
    for message in won:
        by_run[(message.dag_id, message.run_id)].append(message)
    claimed: dict[TaskMessage, ClaimedTry] = {}
    for (dag_id, run_id), messages in by_run.items():
        # both lists: a superset of the claimed keys, never every instance of a mapped task
        params = {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_ids": sorted({m.task_id for m in messages}),
            "map_indexes": sorted({m.map_index for m in messages}),
        }
        found = session.connection().execute(CLAIMED_QUERY, params)
        rows = {(r.task_id, r.map_index): r for r in found}
        mapped = any(m.map_index >= 0 for m in messages)
        inputs = read_mapped_inputs(session, dag_id, run_id) if mapped else ()
        for message in messages:
            row = rows[(message.task_id, message.map_index)]
            fileloc = files.get((dag_id, message.fingerprint)) if files else None
            claimed[message] = _claimed_try(message, row, now, inputs, fileloc)
            if message.try_number > 1 and row.next_method is None:
                # XComs of an earlier try (or of the run before a clear) must not leak into this one
                session.execute(delete(XCom).where(*_xcom_key(key_of(message))))
                session.execute(delete(TaskMap).where(*_task_map_key(key_of(message))))
    return claimed


def _claim_values(hostname: str, now: datetime) -> dict[str, Any]:
    return {
        "start_date": now,
        "end_date": None,
        "duration": None,
        "hostname": hostname,
        "heartbeat_at": now,
        # a sensor in reschedule mode measures its timeout from its first poke
        "sensor_started_at": IfNull(now),
    }


def _claimed_try(
    message: TaskMessage, row: Any, now: datetime, inputs: MappedInputs, fileloc: str | None
) -> ClaimedTry:
    return ClaimedTry(
        key=key_of(message),
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
        next_method=row.next_method,
        next_kwargs=decode_next_kwargs(row.next_kwargs) if row.next_method else None,
        mapped_inputs=inputs if message.map_index >= 0 else (),
        fileloc=fileloc,
    )


def _claimed_query() -> Any:
    """The instances, their run and the DAG's previous successful run, in one round trip.

    Built once (:data:`CLAIMED_QUERY`): its correlated subquery costs more to build than
    to run. The previous run is found once and joined by id, so its three dates come
    from one run; three subqueries, one per date, cost MariaDB a third of the statement
    in planning them.
    """
    candidate, previous = aliased(DagRun), aliased(DagRun)
    last_success = (
        select(candidate.id)
        .where(
            candidate.dag_id == DagRun.dag_id,
            candidate.state == "success",
            candidate.logical_date < DagRun.logical_date,
        )
        .order_by(candidate.logical_date.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.max_tries,
            TaskInstance.sensor_started_at,
            TaskInstance.next_method,
            TaskInstance.next_kwargs,
            DagRun.logical_date,
            DagRun.data_interval_start,
            DagRun.data_interval_end,
            DagRun.run_type,
            DagRun.conf,
            DagRun.start_date,
            previous.data_interval_start.label("prev_start"),
            previous.data_interval_end.label("prev_end"),
            previous.start_date.label("prev_started"),
        )
        .join(
            DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id)
        )
        .outerjoin(previous, (previous.dag_id == DagRun.dag_id) & (previous.id == last_success))
        .where(
            TaskInstance.dag_id == bindparam("dag_id"),
            TaskInstance.run_id == bindparam("run_id"),
            TaskInstance.task_id.in_(bindparam("task_ids", expanding=True)),
            TaskInstance.map_index.in_(bindparam("map_indexes", expanding=True)),
        )
    )


CLAIMED_QUERY = _claimed_query()


def _xcom_key(key: TaskKey) -> tuple[Any, ...]:
    return (
        XCom.dag_id == key.dag_id,
        XCom.run_id == key.run_id,
        XCom.task_id == key.task_id,
        XCom.map_index == key.map_index,
    )


def drop_xcoms(session: Session, key: TaskKey, names: list[str]) -> None:
    """Delete the instance's XComs ``names`` (before they are written again)."""
    if names:
        session.execute(delete(XCom).where(*_xcom_key(key), XCom.key.in_(names)))


def _task_map_key(key: TaskKey) -> tuple[Any, ...]:
    return (
        TaskMap.dag_id == key.dag_id,
        TaskMap.run_id == key.run_id,
        TaskMap.task_id == key.task_id,
        TaskMap.map_index == key.map_index,
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


@dataclass(frozen=True)
class FinishedTry:
    """A try that ended, with its end state decided, ready to be recorded (picklable)."""

    claimed: ClaimedTry
    outcome: TryOutcome
    state: TaskState
    retry_at: datetime | None
    end: datetime
    operator: str | None
    hostname: str
    pid: int


def finish(
    claimed: ClaimedTry,
    outcome: TryOutcome,
    task: SerializedTask,
    *,
    hostname: str,
    pid: int,
    now: datetime,
) -> FinishedTry:
    """Decide the end state of a try (retry or not, when) without touching the metastore."""
    state, retry_at = end_state(outcome, claimed, task, now)
    return FinishedTry(claimed, outcome, state, retry_at, now, task.operator, hostname, pid)


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
    finished = finish(claimed, outcome, task, hostname=hostname, pid=pid, now=now)
    return record_many(session, [finished])[0]


def record_many(
    session: Session, tries: Sequence[FinishedTry], *, optimistic: bool = False
) -> list[TaskState | None]:
    """Record several ended tries in the caller's transaction, in order.

    Each end is its own compare-and-set (``running → state`` for that try number), all
    of them in one locking read and one UPDATE; a try that lost its claim (reaped as a
    zombie, cleared, marked) gets ``None`` and writes nothing else. XComs and history
    rows of the winners go in one multi-row insert each.

    :param optimistic: see :func:`~cluster.metastore.transitions.move_tries`.
    """
    moves = [TryMove(f.claimed.key, f.claimed.try_number, f.state, _end_values(f)) for f in tries]
    flags = move_tries(session, moves, expected=TaskState.RUNNING, optimistic=optimistic)
    states: list[TaskState | None] = []
    xcoms: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for finished, ok in zip(tries, flags, strict=True):
        if not ok:
            states.append(None)
            continue
        states.append(finished.state)
        claimed = finished.claimed
        if claimed.next_method is not None:  # a resumed try may push a key it pushed before
            drop_xcoms(session, claimed.key, [k for k, _ in finished.outcome.xcoms])
        xcoms.extend(_xcom_rows(claimed.key, finished.outcome.xcoms, finished.end))
        _record_map_length(session, claimed.key, finished.outcome)
        _skip(session, claimed.key, finished.outcome.skip_downstream)
        history.append(
            history_row(
                claimed.key,
                claimed.try_number,
                finished.state,
                claimed.start_date,
                finished.end,
                hostname=finished.hostname,
                pid=finished.pid,
                operator=finished.operator,
            )
        )
    _record_dataset_events(session, tries, states)
    # Core multi-row inserts: the ORM's bulk insert adds per-row work to the same SQL
    if xcoms:
        session.connection().execute(insert(XCOM), xcoms)
    if history:
        session.connection().execute(insert(TASK_INSTANCE_HISTORY), history)
    return states


def _record_map_length(session: Session, key: TaskKey, outcome: TryOutcome) -> None:
    """The length a mapped task will expand over (Airflow's ``task_map``), per try."""
    if outcome.map_length is None:
        return
    session.execute(delete(TaskMap).where(*_task_map_key(key)))
    keys = json.dumps(outcome.map_keys, default=str) if outcome.map_keys is not None else None
    session.execute(
        insert(TaskMap).values(
            dag_id=key.dag_id,
            run_id=key.run_id,
            task_id=key.task_id,
            map_index=key.map_index,
            length=outcome.map_length,
            keys=keys,
        )
    )


def _record_dataset_events(
    session: Session, tries: Sequence[FinishedTry], states: list[TaskState | None]
) -> None:
    """The outlets' events of the tries that won their success, in the same transaction:
    a crash either keeps the success and its events or neither."""
    for finished, state in zip(tries, states, strict=True):
        if state is not TaskState.SUCCESS or not finished.outcome.dataset_events:
            continue
        key = finished.claimed.key
        specs = [
            EventSpec(
                uri=e["uri"],
                extra=dict(e.get("extra") or {}),
                source_dag_id=key.dag_id,
                source_task_id=key.task_id,
                source_run_id=key.run_id,
                source_map_index=key.map_index,
                alias=e.get("alias"),
            )
            for e in finished.outcome.dataset_events
        ]
        record_events(session, specs, now=finished.end)


def _end_values(finished: FinishedTry) -> dict[str, Any]:
    claimed, outcome = finished.claimed, finished.outcome
    values: dict[str, Any] = {
        "end_date": finished.end,
        "duration": (finished.end - claimed.start_date).total_seconds(),
        "next_try_at": finished.retry_at,
    }
    if outcome.rendered_fields is not None:
        values["rendered_fields"] = outcome.rendered_fields
    if outcome.rendered_map_index is not None:
        values["rendered_map_index"] = outcome.rendered_map_index
    if finished.state != TaskState.UP_FOR_RESCHEDULE:
        values["sensor_started_at"] = None
    if claimed.next_method is not None:  # a resumed try ended: its retry starts afresh
        values["next_method"] = None
        values["next_kwargs"] = None
    return values


def record_lost(
    session: Session,
    claimed: ClaimedTry,
    reason: str,
    *,
    hostname: str,
    pid: int,
    now: datetime,
) -> TaskState | None:
    """Record a try whose process died before reporting: failed, or up for retry.

    The retry delay comes from the DAG's current serialized form (the process that
    knew the task is gone); ``None`` when the try lost its claim meanwhile.
    """
    spec = _task_spec(session, claimed.key)
    return record(
        session,
        claimed,
        TryOutcome.crashed(reason),
        spec,
        hostname=hostname,
        pid=pid,
        now=now,
    )


def _task_spec(session: Session, key: TaskKey) -> SerializedTask:
    data = session.scalar(
        select(SerializedDagRow.data).where(SerializedDagRow.dag_id == key.dag_id)
    )
    task = SerializedDag.from_json(data).tasks.get(key.task_id) if data is not None else None
    return task or SerializedTask(task_id=key.task_id, operator="?")


def _xcom_rows(key: TaskKey, xcoms: list[tuple[str, str]], now: datetime) -> list[dict[str, Any]]:
    return [
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


def _skip(session: Session, key: TaskKey, task_ids: list[str]) -> None:
    for task_id in task_ids:
        set_task_state(
            session,
            TaskKey(key.dag_id, key.run_id, task_id, key.map_index),
            TaskState.SKIPPED,
            expected=[TaskState.NONE, TaskState.SCHEDULED],
        )


def heartbeat_many(session: Session, tries: Sequence[ClaimedTry], *, now: datetime) -> list[bool]:
    """Refresh several heartbeats in one UPDATE per try number; ``False`` for each try
    that lost its claim (found with one more read, only when some did)."""
    by_number: dict[int, list[TaskKey]] = defaultdict(list)
    for claimed in tries:
        by_number[claimed.try_number].append(claimed.key)
    changed = 0
    for try_number, keys in by_number.items():
        result = session.connection().execute(
            update(TASK_INSTANCE)
            .where(
                keys_clause(keys),
                TaskInstance.state == TaskState.RUNNING,
                TaskInstance.try_number == try_number,
            )
            .values(heartbeat_at=now)
        )
        changed += result.rowcount
    if changed == len(tries):
        return [True] * len(tries)
    current = current_tries(session, [c.key for c in tries])
    return [current.get(c.key) == (TaskState.RUNNING, c.try_number) for c in tries]
