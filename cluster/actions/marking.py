"""Marking task instances and runs success, failed or skipped, as a user does.

A running instance that is marked is stopped by its runner at its next heartbeat.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.actions.base import Actor
from cluster.actions.clearing import clear
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError, UsageError
from cluster.metastore import audit
from cluster.metastore.models import SerializedDagRow, TaskInstance
from cluster.metastore.transitions import TaskKey, set_dag_run_state, set_task_states
from cluster.policy.graph import ancestors, descendants
from cluster.states import FINISHED, DagRunState, TaskState

MARKABLE = (TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED)

Found = tuple[TaskKey, TaskState]


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
    _check_markable(state)
    found = _instances(session, dag_id, [run_id], task_ids)
    if not found:
        raise NotFoundError(f"no task instances of '{dag_id}' run '{run_id}' match")
    changed = _write(session, found, state, now or datetime.now(UTC))
    _audit(session, actor, dag_id, [run_id], task_ids, state)
    return len(changed)


def relatives(dag: SerializedDag, task_id: str, *, upstream: bool, downstream: bool) -> set[str]:
    """``task_id`` with every task upstream and/or downstream of it, as Airflow's marking
    takes them (``get_flat_relatives``: no setups or teardowns are added, unlike a clear).

    :raises NotFoundError: when the DAG has no such task.
    """
    if task_id not in dag.tasks:
        raise NotFoundError(f"DAG '{dag.dag_id}' has no task {task_id}")
    chosen = {task_id}
    if upstream:
        chosen |= ancestors(dag, task_id)
    if downstream:
        chosen |= descendants(dag, task_id)
    return chosen


def set_task_instances_state(
    session: Session,
    dag: SerializedDag,
    run_ids: list[str],
    task_ids: set[str],
    state: TaskState,
    *,
    origin: str,
    actor: Actor,
    map_indexes: set[int] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[TaskKey]:
    """Airflow's ``DAG.set_task_instance_state``: mark the instances of ``task_ids`` in
    ``run_ids`` (only ``map_indexes`` of them when given) that are not in ``state`` yet,
    then clear the failed and upstream-failed instances downstream of ``origin`` in those
    runs, so a run that failed resumes after a fix marked by hand.

    The tasks just marked are not cleared again (Airflow exempts ``origin`` only, so a
    downstream task marked failed with it would be cleared at once). No
    ``ExternalTaskMarker`` is followed, as in Airflow. Returns the instances marked
    (with ``dry_run``, those that would be), written nothing when ``dry_run``.
    """
    _check_markable(state)
    found = _instances(session, dag.dag_id, run_ids, task_ids, map_indexes)
    to_mark = [(key, current) for key, current in found if current != state]
    if dry_run:
        return [key for key, _ in to_mark]
    _write(session, to_mark, state, now or datetime.now(UTC))
    _audit(session, actor, dag.dag_id, run_ids, task_ids, state)
    below = descendants(dag, origin) - task_ids
    clear(session, dag.dag_id, run_ids, below, actor=actor, only_failed=True, recursive=False)
    return [key for key, _ in to_mark]


def _check_markable(state: TaskState) -> None:
    if state not in MARKABLE:
        raise UsageError(f"can only mark success, failed or skipped, not {state}")


def _instances(
    session: Session,
    dag_id: str,
    run_ids: list[str],
    task_ids: set[str],
    map_indexes: set[int] | None = None,
) -> list[Found]:
    """The instances named, each with its state, in run, task and map-index order."""
    statement = select(
        TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state
    ).where(
        TaskInstance.dag_id == dag_id,
        TaskInstance.run_id.in_(run_ids),
        TaskInstance.task_id.in_(task_ids),
    )
    if map_indexes is not None:
        statement = statement.where(TaskInstance.map_index.in_(map_indexes))
    rows = session.execute(
        statement.order_by(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index)
    )
    return [(TaskKey(dag_id, r, t, m), TaskState(s)) for r, t, m, s in rows]


def _write(session: Session, found: list[Found], state: TaskState, now: datetime) -> list[TaskKey]:
    """Set ``state`` on each instance not in it yet, each a compare-and-set from the state
    read (an instance that moved meanwhile is left as it is)."""
    changed = []
    for key, current in found:
        if current == state:
            continue
        if set_task_states(
            session, [key], state, expected=[current], by_user=True, values={"end_date": now}
        ):
            changed.append(key)
    return changed


def _audit(
    session: Session,
    actor: Actor,
    dag_id: str,
    run_ids: list[str],
    task_ids: set[str],
    state: TaskState,
) -> None:
    audit.record_event(
        session=session,
        event=f"{actor.source}.tasks.mark_{state}",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_ids[0] if len(run_ids) == 1 else None,
        extra={"tasks": sorted(task_ids)} | ({} if len(run_ids) == 1 else {"runs": run_ids}),
    )


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
