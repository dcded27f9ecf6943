"""The loop's DAG-run steps: create due runs, start queued ones, move running ones forward.

Each function loads a small snapshot, asks :mod:`cluster.policy` and writes
the decisions with compare-and-set in the caller's transaction. Only unfinished runs
and their instances are read, so the cost does not grow with history.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag
from cluster.dagfiles.storage import NEVER
from cluster.metastore.callbacks import request_callback
from cluster.metastore.index_hints import along_index
from cluster.metastore.models import TASK_INSTANCE, Dag, DagRun, TaskInstance
from cluster.metastore.transitions import TaskKey, set_dag_run_state, set_task_states
from cluster.policy.changes import InstanceKey, StateChange, key_of
from cluster.policy.outcome import run_state
from cluster.policy.readiness import WAITING, InstanceSnapshot, RunDecision, decide_run
from cluster.policy.runs import (
    RunSnapshot,
    plan_runs,
    runs_to_start,
    timed_out_runs,
    timeout_changes,
)
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.expansion import (
    create_instances,
    load_lengths,
    load_summarized,
    task_ids_of,
    wants_lengths,
    write_expansions,
    write_revisions,
)
from cluster.sdk.timetables import DataInterval
from cluster.states import DagRunState, TaskState

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = (DagRunState.QUEUED, DagRunState.RUNNING)
#: instance states that will change by themselves (a runner or the queue moves them)
#: a deferred instance counts too: the run changes only once its trigger fires
ACTIVE_TI_STATES = (TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING, TaskState.DEFERRED)
#: runs of at least this many tasks are counted before they are loaded: a run waiting
#: only on its running tasks is then skipped; loading a smaller run costs no more
SETTLED_CHECK_TASKS = 100

# the loop's queries run many times a second: built once, they cost only their execution
#: the active runs, each with its DAG's fingerprint when the DAG is not paused (and
#: whether it is known and unpaused at all): one round trip where two ran each iteration
_ACTIVE_RUNS = (
    select(
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.logical_date,
        DagRun.start_date,
        Dag.dag_id.is_not(None),
        Dag.fingerprint,
    )
    .join(Dag, and_(Dag.dag_id == DagRun.dag_id, Dag.is_paused.is_(False)), isouter=True)
    .where(DagRun.state.in_(ACTIVE_RUN_STATES))
)
_IN_RUN = (TaskInstance.dag_id == bindparam("dag_id"), TaskInstance.run_id == bindparam("run_id"))
_COUNT = select(func.count()).select_from(TaskInstance).where(*_IN_RUN)
#: on MariaDB along the run's state index: left to itself, the optimizer walked the run by
#: primary key for the first active row (LIMIT 1), past every finished instance before it,
#: so a 10,000-task run's probe read thousands of rows per iteration, more as it finished
_ANY_IN = along_index(
    select(TaskInstance.task_id)
    .where(*_IN_RUN, TaskInstance.state.in_(bindparam("states", expanding=True)))
    .limit(1),
    TASK_INSTANCE,
    "idx_ti_dag_run_state",
)
#: a state's column value → the state: a dict lookup costs less than the enum's call,
#: once per instance and iteration
_STATES = {str(s): s for s in TaskState}
_WAITING = sorted(str(s) for s in WAITING)
_ACTIVE = sorted(str(s) for s in ACTIVE_TI_STATES)
_INSTANCES = select(
    TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state, TaskInstance.next_try_at
).where(*_IN_RUN)


def create_due_runs(
    session: Session, dags: DagCache, *, now: datetime, epoch: int, limit: int
) -> int:
    """Create the scheduled runs of every unpaused DAG that is due; returns how many."""
    due = session.scalars(
        select(Dag)
        .where(
            Dag.is_active,
            Dag.is_paused.is_(False),
            or_(Dag.next_dagrun_create_after.is_(None), Dag.next_dagrun_create_after <= now),
        )
        .limit(limit)
    ).all()
    created = 0
    for row in due:
        dag = dags.get(session, row.dag_id, row.fingerprint)
        if dag is None:
            continue
        plan = plan_runs(
            dag,
            paused=False,
            last_automated_data_interval=_last_automated_interval(session, row.dag_id),
            active_runs=_active_runs(session, row.dag_id),
            now=now,
            max_create=limit,
        )
        for run in plan.create:
            session.execute(
                insert(DagRun).values(
                    dag_id=row.dag_id,
                    run_id=run.run_id,
                    logical_date=run.logical_date,
                    data_interval_start=run.data_interval_start,
                    data_interval_end=run.data_interval_end,
                    run_type="scheduled",
                    state=DagRunState.QUEUED,
                    conf={},
                    queued_at=now,
                    fingerprint=row.fingerprint,
                    created_by_epoch=epoch,
                )
            )
        created += len(plan.create)
        _set_next_run(row, plan.next_run, plan.next_dagrun_create_after)
    return created


def _set_next_run(row: Dag, next_run: object, create_after: datetime | None) -> None:
    info = next_run
    row.next_dagrun = getattr(info, "logical_date", None)
    interval = getattr(info, "data_interval", None)
    row.next_dagrun_data_interval_start = interval.start if interval else None
    row.next_dagrun_data_interval_end = interval.end if interval else None
    row.next_dagrun_create_after = create_after or NEVER


#: the runs the next scheduled one follows, as Airflow's: a backfilled interval is not
#: run again by the scheduler (nor one Airflow backfilled, after migrate-from-airflow)
AUTOMATED_RUN_TYPES = ("scheduled", "backfill")


def _last_automated_interval(session: Session, dag_id: str) -> DataInterval | None:
    latest = session.execute(
        select(DagRun.data_interval_start, DagRun.data_interval_end)
        .where(DagRun.dag_id == dag_id, DagRun.run_type.in_(AUTOMATED_RUN_TYPES))
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    ).first()
    if latest is None or latest[0] is None or latest[1] is None:
        return None
    return DataInterval(latest[0], latest[1])


def _active_runs(session: Session, dag_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.state.in_(ACTIVE_RUN_STATES))
        )
        or 0
    )


def step_active_runs(session: Session, dags: DagCache, *, now: datetime) -> int:
    """Start queued runs within ``max_active_runs``, then move every running run forward.

    One read of the active runs with their DAGs' fingerprints serves both steps; a run
    started here is moved forward in the same iteration. Returns the changes.
    """
    session.flush()  # the Core reads below see runs this iteration added through the ORM
    rows = session.connection().execute(_ACTIVE_RUNS).all()
    if not rows:
        return 0
    by_dag: dict[str, list[RunSnapshot]] = defaultdict(list)
    fingerprints: dict[str, str | None] = {}
    for dag_id, run_id, state, logical_date, start_date, unpaused, fingerprint in rows:
        by_dag[dag_id].append(RunSnapshot(run_id, DagRunState(state), logical_date, start_date))
        if unpaused:
            fingerprints[dag_id] = fingerprint
    changed = 0
    for dag_id, runs in by_dag.items():
        if dag_id not in fingerprints:
            continue  # paused: queued runs wait and running ones stand still, as in Airflow
        dag = dags.get(session, dag_id, fingerprints[dag_id])
        if dag is None:
            continue
        started = _start_queued(session, dags, dag, runs, now)
        for run in runs:
            if run.state is DagRunState.RUNNING or run.run_id in started:
                changed += _advance_running(session, dags, dag, run, now)
    return changed


def _start_queued(
    session: Session, dags: DagCache, dag: SerializedDag, runs: list[RunSnapshot], now: datetime
) -> set[str]:
    """Move the queued runs that fit to running and create their instances."""
    if not any(r.state is DagRunState.QUEUED for r in runs):
        return set()
    started = set()
    by_id = {r.run_id: r for r in runs}
    for run_id in runs_to_start(dag, runs):
        if set_dag_run_state(
            session,
            dag.dag_id,
            run_id,
            DagRunState.RUNNING,
            expected=[DagRunState.QUEUED],
            values={
                "start_date": now,
                "end_date": None,
                "fingerprint": dags.fingerprint(dag.dag_id),
            },
        ):
            weights = dags.weights(session, dag.dag_id)
            create_instances(session, dag, weights, by_id[run_id], dag.tasks)
            started.add(run_id)
    return started


def _advance_running(
    session: Session, dags: DagCache, dag: SerializedDag, run: RunSnapshot, now: datetime
) -> int:
    """Apply trigger rules, retries, timeouts and the outcome to one running run."""
    start = run.start_date if run.state is DagRunState.RUNNING else now  # else started just now
    snapshot = RunSnapshot(run.run_id, DagRunState.RUNNING, run.logical_date, start)
    if timed_out_runs(dag, [snapshot], now=now):
        return _time_out(session, dag, run.run_id, now)
    return _advance(session, dags, dag, snapshot, now)


def _advance(
    session: Session, dags: DagCache, dag: SerializedDag, run: RunSnapshot, now: datetime
) -> int:
    weights = dags.weights(session, dag.dag_id)
    mapped = dag.has_mapping
    settled_check = not mapped and len(dag.tasks) >= SETTLED_CHECK_TASKS
    if settled_check and _settled(session, dags, dag, run.run_id):
        return 0
    instances = _load_run(session, dag, run.run_id)
    present = task_ids_of(instances) if mapped else instances
    missing = [t for t in dag.tasks if t not in present]
    if missing:
        create_instances(session, dag, weights, run, missing)
        instances = _load_run(session, dag, run.run_id)
    changed = _remove_vanished(session, dag, run.run_id, instances)
    previous = _previous_states(session, dag, run) if dag.uses_past else None
    for _ in range(len(dag.tasks) + 1):
        lengths = (
            load_lengths(session, dag, run.run_id, instances)
            if mapped and wants_lengths(dag, instances)
            else None
        )
        decision = decide_run(dag, instances, now=now, previous_states=previous, lengths=lengths)
        changes = [_finish_empty(dag, c) for c in decision.changes]
        if decision.expansions or decision.revisions:
            expanded, changes = _write_mapping(
                session, dag, weights, run, decision, changes, instances
            )
            changed += expanded
        if not changes:
            break
        changed += _apply(session, dag.dag_id, run.run_id, changes, now)
        instances.update(
            {
                key_of(c.task_id, c.map_index): InstanceSnapshot(
                    c.task_id, c.target, None, c.map_index
                )
                for c in changes
            }
        )
        if not any(c.target is TaskState.SUCCESS for c in changes):
            break
    outcome = run_state(dag, {k: i.state for k, i in instances.items()})
    if outcome is not None and set_dag_run_state(
        session,
        dag.dag_id,
        run.run_id,
        outcome,
        expected=[DagRunState.RUNNING],
        values={"end_date": now},
    ):
        log.info("DAG run %s.%s finished: %s", dag.dag_id, run.run_id, outcome)
        success = outcome is DagRunState.SUCCESS
        if dag.has_callbacks:
            reason = "success" if success else "task_failure"
            request_callback(
                session, dag.dag_id, run.run_id, success=success, reason=reason, now=now
            )
        # a finished run may unblock max_active_runs: let the next loop recompute
        session.execute(
            update(Dag)
            .where(Dag.dag_id == dag.dag_id, Dag.next_dagrun_create_after == NEVER)
            .values(next_dagrun_create_after=None)
        )
    return changed


def _write_mapping(
    session: Session,
    dag: SerializedDag,
    weights: dict[str, int],
    run: RunSnapshot,
    decision: RunDecision,
    changes: list[StateChange],
    instances: dict[InstanceKey, InstanceSnapshot],
) -> tuple[int, list[StateChange]]:
    """Write the decision's expansions and revisions and show them in ``instances``.

    Returns how many tasks were expanded and the changes still to apply: those of a task
    whose placeholder moved meanwhile are dropped (the next iteration decides it).
    """
    expanded = write_expansions(session, dag, weights, run, decision.expansions)
    new_rows: list[tuple[str, Iterable[int]]] = []
    for expansion in decision.expansions:
        if expansion.task_id in expanded:
            del instances[expansion.task_id]
            new_rows.append((expansion.task_id, range(expansion.count)))
    write_revisions(session, dag, weights, run, decision.revisions)
    new_rows.extend((r.task_id, r.added) for r in decision.revisions)
    for task_id, indexes in new_rows:
        instances.update(
            {(task_id, i): InstanceSnapshot(task_id, TaskState.NONE, None, i) for i in indexes}
        )
    lost = {e.task_id for e in decision.expansions} - expanded
    return len(expanded), [c for c in changes if c.task_id not in lost]


def _finish_empty(dag: SerializedDag, change: StateChange) -> StateChange:
    task = dag.tasks[change.task_id]
    if (
        change.target is TaskState.SCHEDULED
        and change.source is TaskState.NONE
        and task.extra.get("empty")
        and not task.has_callbacks
        and not task.extra.get("outlets")  # as in Airflow: it runs, to emit its events
    ):
        return StateChange(
            change.task_id,
            change.source,
            TaskState.SUCCESS,
            "EmptyOperator: nothing to run",
            change.map_index,
        )
    return change


def _apply(
    session: Session, dag_id: str, run_id: str, changes: list[StateChange], now: datetime
) -> int:
    groups: dict[tuple[TaskState, TaskState], list[TaskKey]] = defaultdict(list)
    for change in changes:
        groups[(change.source, change.target)].append(
            TaskKey(dag_id, run_id, change.task_id, change.map_index)
        )
    changed = 0
    for (source, target), keys in groups.items():
        values = {"start_date": now, "end_date": now} if target is TaskState.SUCCESS else {}
        changed += set_task_states(session, keys, target, expected=[source], values=values)
    return changed


def _settled(session: Session, dags: DagCache, dag: SerializedDag, run_id: str) -> bool:
    """Whether nothing in the run can change now without a task finishing first.

    True when no instance waits for a decision (``none``, retry, reschedule), some are
    still scheduled, queued or running, and every task has its instance. Indexed probes
    instead of loading the whole run: a 1,000-task fan-out is otherwise re-evaluated in
    full after each of its tasks. Each probe stops at its first row, and whether every
    task has its instance is counted once per run and DAG version: counting the run's
    rows at every iteration made each iteration of a 10,000-task run cost as much as
    its size, and the run's cost grow with its square.
    """
    params = {"dag_id": dag.dag_id, "run_id": run_id}
    connection = session.connection()
    if not dags.complete(dag.dag_id, run_id):
        if connection.execute(_COUNT, params).scalar() != len(dag.tasks):
            return False
        dags.mark_complete(dag.dag_id, run_id)
    if connection.execute(_ANY_IN, {**params, "states": _WAITING}).first() is not None:
        return False
    return connection.execute(_ANY_IN, {**params, "states": _ACTIVE}).first() is not None


def _load_run(
    session: Session, dag: SerializedDag, run_id: str
) -> dict[InstanceKey, InstanceSnapshot]:
    """The run's instances for the policy: a mapped task's finished ones counted in SQL."""
    summarized = load_summarized(session, dag, run_id) if dag.has_mapping else None
    return _load_instances(session, dag.dag_id, run_id) if summarized is None else summarized


def _load_instances(
    session: Session, dag_id: str, run_id: str
) -> dict[InstanceKey, InstanceSnapshot]:
    """The run's instances, by task id (by ``(task_id, map_index)`` for mapped ones)."""
    rows = session.connection().execute(_INSTANCES, {"dag_id": dag_id, "run_id": run_id}).all()
    return {
        key_of(task_id, map_index): InstanceSnapshot(task_id, _STATES[state], ready_at, map_index)
        for task_id, map_index, state, ready_at in rows
    }


def _remove_vanished(
    session: Session,
    dag: SerializedDag,
    run_id: str,
    instances: dict[InstanceKey, InstanceSnapshot],
) -> int:
    gone = [
        k
        for k, i in instances.items()
        if i.task_id not in dag.tasks and i.state is not TaskState.REMOVED
    ]
    if not gone:
        return 0
    keys = [TaskKey(dag.dag_id, run_id, instances[k].task_id, instances[k].map_index) for k in gone]
    changed = set_task_states(
        session, keys, TaskState.REMOVED, expected=[TaskState.NONE, TaskState.SCHEDULED]
    )
    for key in gone:
        del instances[key]
    return changed


def _previous_states(
    session: Session, dag: SerializedDag, run: RunSnapshot
) -> dict[InstanceKey, TaskState] | None:
    if run.logical_date is None:
        return None
    previous = session.scalar(
        select(DagRun.run_id)
        .where(DagRun.dag_id == dag.dag_id, DagRun.logical_date < run.logical_date)
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )
    if previous is None:
        return None
    rows = session.execute(
        select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
            TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == previous
        )
    ).all()
    return {key_of(task_id, map_index): TaskState(state) for task_id, map_index, state in rows}


def _time_out(session: Session, dag: SerializedDag, run_id: str, now: datetime) -> int:
    dag_id = dag.dag_id
    if not set_dag_run_state(
        session,
        dag_id,
        run_id,
        DagRunState.FAILED,
        expected=[DagRunState.RUNNING],
        values={"end_date": now},
    ):
        return 0
    if dag.has_callbacks:
        request_callback(session, dag_id, run_id, success=False, reason="timed_out", now=now)
    states = {t: i.state for t, i in _load_instances(session, dag_id, run_id).items()}
    changes = timeout_changes(states)
    for change in changes:
        set_task_states(
            session,
            [TaskKey(dag_id, run_id, change.task_id, change.map_index)],
            TaskState.SKIPPED,
            expected=[change.source],
            by_user=True,
            values={"end_date": now},
        )
    log.warning("DAG run %s.%s timed out (dagrun_timeout): failed", dag_id, run_id)
    return len(changes)
