"""What users do to DAGs, runs and task instances: trigger, pause, clear, mark, delete.

The CLI, the web UI and the REST API all call these; each is a metastore write that
the scheduler picks up, never a call into the scheduler. Functions take ``session=``
and leave the commit to the caller; every one writes an audit row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore import audit
from cluster.metastore.cleanup import delete_runs
from cluster.metastore.models import (
    Dag,
    DagCode,
    DagRun,
    ImportErrorRow,
    SerializedDagRow,
    TaskInstance,
)
from cluster.metastore.transitions import TaskKey, set_dag_run_state, set_task_states
from cluster.policy.external_markers import follow_markers
from cluster.policy.graph import descendants
from cluster.policy.setup_teardown import with_setup_teardowns_upstream, with_setups_and_teardowns
from cluster.sdk.params import validate_params
from cluster.sdk.timetables import TimeRestriction, timetable_from_dict
from cluster.states import FINISHED, DagRunState, TaskState


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log: a username (or ``cli``) and where from."""

    username: str
    source: str = "cli"


def load_dag(session: Session, dag_id: str) -> SerializedDag:
    """The serialized DAG; :class:`NotFoundError` names what to run when it is missing."""
    row = session.get(SerializedDagRow, dag_id)
    if row is None:
        raise NotFoundError(
            f"DAG '{dag_id}' not found: is it in the DAGs folder? (tradewind dags list, "
            "tradewind dags list-import-errors)"
        )
    return SerializedDag.from_json(row.data)


def trigger(
    session: Session,
    dag_id: str,
    *,
    actor: Actor,
    conf: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    logical_date: datetime | None = None,
    now: datetime | None = None,
) -> DagRun:
    """Create a manual run (state ``queued``) with validated params, like ``airflow dags trigger``.

    :raises ParamValidationError: when ``conf`` breaks the DAG's ``Param`` declarations.
    :raises AlreadyExistsError: when the run id is taken.
    """
    dag = load_dag(session, dag_id)
    now = now or datetime.now(UTC)
    when = logical_date or now
    if when.tzinfo is None:
        raise UsageError("the logical date needs a time zone (e.g. 2024-01-01T00:00:00+00:00)")
    checked = validate_params(dag.params, dict(conf or {}))
    run_id = run_id or f"manual__{when.isoformat()}"
    _check_run_id(run_id)
    if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)):
        raise AlreadyExistsError(f"DAG run '{run_id}' of '{dag_id}' already exists")
    interval = timetable_from_dict(dag.timetable).infer_manual_data_interval(run_after=when)
    run = DagRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=when,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        run_type="manual",
        state=DagRunState.QUEUED,
        conf=checked,
        queued_at=now,
    )
    session.add(run)
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.trigger",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_id,
        extra={"conf": checked},
    )
    return run


def _check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 250 or not re.fullmatch(r"[A-Za-z0-9_.~:+\-]+", run_id):
        raise UsageError(
            f"invalid run id {run_id!r}: use letters, digits and _ . ~ : + - (at most 250)"
        )


def backfill(
    session: Session,
    dag_id: str,
    *,
    start: datetime,
    end: datetime,
    actor: Actor,
    reset_failed: bool = False,
    now: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """Create ``backfill`` runs for every interval of the DAG's timetable from ``start`` to ``end``.

    Intervals that already have a run are left alone, unless the run failed and
    ``reset_failed`` is set: then its failed instances are cleared. New runs get ``conf``
    as given (Airflow's ``backfill -c``). Returns the run ids created and the run ids cleared.
    """
    dag = load_dag(session, dag_id)
    timetable = timetable_from_dict(dag.timetable)
    if not timetable.periodic:
        raise UsageError(
            f"DAG '{dag_id}' has no periodic schedule ({dag.schedule}): nothing to backfill"
        )
    now = now or datetime.now(UTC)
    existing = {
        r.logical_date: r
        for r in session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id, DagRun.logical_date >= start, DagRun.logical_date <= end
            )
        )
    }
    created: list[str] = []
    reset: list[str] = []
    restriction = TimeRestriction(start, end, True)
    last = None
    while (
        info := timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=max(now, end)
        )
    ) is not None:
        last = info.data_interval
        if info.logical_date > end:
            break
        run = existing.get(info.logical_date)
        if run is None:
            run_id = f"backfill__{info.logical_date.isoformat()}"
            session.add(
                DagRun(
                    dag_id=dag_id,
                    run_id=run_id,
                    logical_date=info.logical_date,
                    data_interval_start=info.data_interval.start,
                    data_interval_end=info.data_interval.end,
                    run_type="backfill",
                    state=DagRunState.QUEUED,
                    conf=dict(conf or {}),
                    queued_at=now,
                )
            )
            created.append(run_id)
        elif reset_failed and run.state == DagRunState.FAILED:
            clear(session, dag_id, [run.run_id], set(dag.tasks), actor=actor, only_failed=True)
            reset.append(run.run_id)
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.backfill",
        username=actor.username,
        dag_id=dag_id,
        extra={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "created": len(created),
            "reset": len(reset),
        },
    )
    return created, reset


def set_paused(session: Session, dag_id: str, paused: bool, *, actor: Actor) -> None:
    """Pause or unpause a DAG; a paused DAG gets no new scheduled runs or tasks queued."""
    result = session.execute(update(Dag).where(Dag.dag_id == dag_id).values(is_paused=paused))
    if not getattr(result, "rowcount", 0):
        raise NotFoundError(f"DAG '{dag_id}' not found")
    event = "pause" if paused else "unpause"
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.{event}",
        username=actor.username,
        dag_id=dag_id,
    )


def select_task_ids(
    dag: SerializedDag,
    *,
    task_regex: str | None = None,
    task_ids: Iterable[str] | None = None,
    upstream: bool = False,
    downstream: bool = False,
) -> set[str]:
    """The tasks a clear or mark applies to, with their relatives when asked.

    Setups and teardowns come along as in Airflow's ``DAG.partial_subset``: a work task
    brings the setups it needs and their teardowns (so a cleared task has its
    resource again, and it is removed again), a setup brings its teardowns; with
    ``upstream``, each upstream setup brings its teardowns; with ``downstream``, each
    downstream work task brings the setups and teardowns it needs.
    """
    chosen = set(dag.tasks)
    if task_ids is not None:
        chosen = set(task_ids)
        unknown = chosen - set(dag.tasks)
        if unknown:
            raise NotFoundError(f"DAG '{dag.dag_id}' has no task {', '.join(sorted(unknown))}")
    if task_regex:
        try:
            pattern = re.compile(task_regex)
        except re.error as exc:
            raise UsageError(f"bad task regex {task_regex!r}: {exc}") from exc
        chosen = {t for t in chosen if pattern.search(t)}
    related: set[str] = set()
    for task_id in chosen:
        if upstream:
            related |= with_setup_teardowns_upstream(dag, task_id)
        related |= with_setups_and_teardowns(dag, [task_id])
        if downstream:
            below = descendants(dag, task_id)
            related |= with_setups_and_teardowns(dag, below - chosen) | below
    return chosen | related


def clear(
    session: Session,
    dag_id: str,
    run_ids: Iterable[str],
    task_ids: set[str],
    *,
    actor: Actor,
    only_failed: bool = False,
    dry_run: bool = False,
    recursive: bool = True,
    map_indexes: set[int] | None = None,
) -> list[TaskKey]:
    """Clear task instances to ``none`` so they run again; their runs go back to ``queued``.

    A running instance is cleared too: its runner sees the change at its next heartbeat
    and stops the task. Each cleared instance gets its retries again, as in Airflow.
    ``recursive`` (Airflow's default) follows each ``ExternalTaskMarker`` to its task (with
    downstream) in the other DAG's run, at most the first marker's ``recursion_depth`` deep.

    ``map_indexes`` clears only those instances of mapped tasks (not followed to markers).

    :raises UsageError: past that depth (a cycle of markers, or too long a chain).
    """
    keys: list[TaskKey] = []
    pending, visited, limit = [(dag_id, list(run_ids), task_ids, 0)], set(), []  # type: ignore[var-annotated]
    while pending:
        dag_id, runs, tasks, depth = pending.pop(0)
        if recursive:
            steps = _marker_steps(session, dag_id, runs, tasks, only_failed, visited, depth, limit)
            pending += [(d, r, t, depth + 1) for d, r, t in steps]
        chosen = map_indexes if depth == 0 else None
        keys += _clear_one(session, dag_id, runs, tasks, actor, only_failed, dry_run, chosen)
    return keys


def _marker_steps(
    session: Session,
    dag_id: str,
    run_ids: list[str],
    task_ids: set[str],
    only_failed: bool,
    visited: set[tuple[str, str, str]],
    depth: int,
    limit: list[int],
) -> Iterable[tuple[str, list[str], set[str]]]:
    dag = load_dag(session, dag_id)
    if not any(t in dag.tasks and dag.tasks[t].extra.get("external_marker") for t in task_ids):
        return
    states = [TaskState.FAILED, TaskState.UPSTREAM_FAILED] if only_failed else list(TaskState)
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.task_id, DagRun)
        .join(DagRun, (DagRun.dag_id == dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id.in_(run_ids),
            TaskInstance.task_id.in_(task_ids),
            TaskInstance.state.in_([str(s) for s in states]),
        )
    ).all()
    instances = [
        (r, t, run.logical_date, (run.data_interval_start, run.data_interval_end))
        for r, t, run in rows
        if run.logical_date is not None
    ]
    for target in follow_markers(dag, instances, visited, depth, limit):
        found = session.scalars(
            select(DagRun.run_id).where(
                DagRun.dag_id == target.dag_id, DagRun.logical_date == target.logical_date
            )
        ).all()
        if found:
            other = load_dag(session, target.dag_id)
            below = select_task_ids(other, task_ids=[target.task_id], downstream=True)
            yield target.dag_id, list(found), below


def _clear_one(
    session: Session,
    dag_id: str,
    run_ids: Iterable[str],
    task_ids: set[str],
    actor: Actor,
    only_failed: bool,
    dry_run: bool,
    map_indexes: set[int] | None = None,
) -> list[TaskKey]:
    dag = load_dag(session, dag_id)
    run_list = list(run_ids)
    if not run_list or not task_ids:
        return []
    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_id,
        TaskInstance.run_id.in_(run_list),
        TaskInstance.task_id.in_(task_ids),
    )
    rows = session.scalars(query).all()
    wanted = {TaskState.FAILED, TaskState.UPSTREAM_FAILED} if only_failed else None
    cleared = [
        r
        for r in rows
        if (wanted is None or TaskState(r.state) in wanted)
        and r.state != TaskState.NONE
        and (map_indexes is None or r.map_index in map_indexes)
    ]
    keys = [TaskKey(r.dag_id, r.run_id, r.task_id, r.map_index) for r in cleared]
    if dry_run or not keys:
        return keys
    for row in cleared:
        retries = dag.tasks[row.task_id].retries if row.task_id in dag.tasks else 0
        set_task_states(
            session,
            [TaskKey(row.dag_id, row.run_id, row.task_id, row.map_index)],
            TaskState.NONE,
            expected=[TaskState(row.state)],
            by_user=True,
            values={
                "max_tries": row.try_number + retries,
                "end_date": None,
                "next_try_at": None,
                "sensor_started_at": None,
            },
        )
    for run_id in {k.run_id for k in keys}:
        set_dag_run_state(
            session,
            dag_id,
            run_id,
            DagRunState.QUEUED,
            by_user=True,
            expected=[DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.RUNNING],
            values={"end_date": None, "clear_number": DagRun.clear_number + 1},
        )
    audit.record_event(
        session=session,
        event=f"{actor.source}.tasks.clear",
        username=actor.username,
        dag_id=dag_id,
        extra={"runs": run_list, "tasks": sorted(task_ids), "cleared": len(keys)},
    )
    return keys


def mark(
    session: Session,
    dag_id: str,
    run_id: str,
    task_ids: set[str],
    state: TaskState,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> int:
    """Mark task instances success, failed or skipped; a running one is stopped by its runner."""
    if state not in (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED):
        raise UsageError(f"can only mark success, failed or skipped, not {state}")
    now = now or datetime.now(UTC)
    rows = session.execute(
        select(TaskInstance.task_id, TaskInstance.state, TaskInstance.map_index).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id.in_(task_ids),
        )
    ).all()
    if not rows:
        raise NotFoundError(f"no task instances of '{dag_id}' run '{run_id}' match")
    changed = 0
    for task_id, current, map_index in rows:
        if TaskState(current) == state:
            continue
        changed += set_task_states(
            session,
            [TaskKey(dag_id, run_id, task_id, map_index)],
            state,
            expected=[TaskState(current)],
            by_user=True,
            values={"end_date": now},
        )
    audit.record_event(
        session=session,
        event=f"{actor.source}.tasks.mark_{state}",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_id,
        extra={"tasks": sorted(task_ids)},
    )
    return changed


def mark_run(
    session: Session, dag_id: str, run_id: str, state: DagRunState, *, actor: Actor
) -> None:
    """Mark a run and all its unfinished instances success or failed (Airflow's run marking).

    Unfinished teardowns are left to run, as in Airflow (they remove what their setups
    made): the run then stays running, and the scheduler ends it after them.
    """
    if state not in (DagRunState.SUCCESS, DagRunState.FAILED):
        raise UsageError("a run can only be marked success or failed")
    target = TaskState.SUCCESS if state is DagRunState.SUCCESS else TaskState.FAILED
    unfinished = set(
        session.scalars(
            select(TaskInstance.task_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.state.not_in([str(s) for s in FINISHED]),
            )
        ).all()
    )
    stored = session.get(SerializedDagRow, dag_id)
    tasks = SerializedDag.from_json(stored.data).tasks if stored is not None else {}
    teardowns = {t for t in unfinished if t in tasks and tasks[t].is_teardown}
    if unfinished - teardowns:
        mark(session, dag_id, run_id, unfinished - teardowns, target, actor=actor)
    if teardowns:
        return
    set_dag_run_state(
        session, dag_id, run_id, state, by_user=True, values={"end_date": datetime.now(UTC)}
    )


def delete_run(session: Session, dag_id: str, run_id: str, *, actor: Actor) -> None:
    """Delete one run with its task instances, history and XComs."""
    if not session.scalar(
        select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ):
        raise NotFoundError(f"DAG run '{run_id}' of '{dag_id}' not found")
    delete_runs(session, dag_id, [run_id])
    audit.record_event(
        session=session,
        event=f"{actor.source}.dag_runs.delete",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_id,
    )


def delete_dag(session: Session, dag_id: str, *, actor: Actor) -> int:
    """Delete every record of a DAG (its file stays; the next parse brings the DAG back)."""
    row = session.get(Dag, dag_id)
    if row is None:
        raise NotFoundError(f"DAG '{dag_id}' not found")
    run_ids = list(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))
    delete_runs(session, dag_id, run_ids)
    session.execute(delete(SerializedDagRow).where(SerializedDagRow.dag_id == dag_id))
    session.execute(delete(Dag).where(Dag.dag_id == dag_id))
    others = session.scalar(select(Dag.dag_id).where(Dag.fileloc == row.fileloc).limit(1))
    if others is None:
        session.execute(delete(DagCode).where(DagCode.fileloc == row.fileloc))
        session.execute(delete(ImportErrorRow).where(ImportErrorRow.filename == row.fileloc))
    audit.record_event(
        session=session, event=f"{actor.source}.dags.delete", username=actor.username, dag_id=dag_id
    )
    return len(run_ids)
