"""Clearing task instances so they run again, and choosing the tasks an action names.

A clear follows ``ExternalTaskMarker`` into other DAGs' runs; each writes an audit row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.actions.base import Actor, load_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError, UsageError
from cluster.metastore import audit
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.transitions import TaskKey, set_dag_run_state, set_task_states
from cluster.policy.external_markers import follow_markers
from cluster.policy.graph import descendants
from cluster.policy.setup_teardown import with_setup_teardowns_upstream, with_setups_and_teardowns
from cluster.states import DagRunState, TaskState


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
