"""The loop's queueing step: what fits now moves ``scheduled → queued`` and is dispatched.

Occupancy (pools, per DAG, global) is counted from ``queued`` and ``running`` rows, so
it is exact whichever scheduler or worker moved them. The move sets the next try
number; the message carries it, and the runner's claim only accepts that number.
Only the best-weighted scheduled instances are read (a few times the free slots), so
a run of 1,000 ready tasks costs a bounded query per iteration; when that whole batch
is blocked by full pools or DAGs, the rest is read too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from cluster.executors.base import Dispatch
from cluster.messages import TaskMessage
from cluster.metastore.models import TASK_INSTANCE, SlotPool, TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state, set_task_states
from cluster.policy.fit import (
    DagLoad,
    FitDecision,
    PoolSnapshot,
    QueueCandidate,
    select_to_queue,
)
from cluster.scheduler.dagcache import DagCache
from cluster.states import OCCUPYING, TaskState

log = logging.getLogger(__name__)

_OCCUPYING = [str(s) for s in OCCUPYING]
#: the fewest scheduled instances read per iteration
MIN_CANDIDATES = 32


def queue_ready(
    session: Session,
    dags: DagCache,
    *,
    now: datetime,
    epoch: int,
    parallelism: int,
    executor_free: int | None,
) -> list[Dispatch]:
    """Queue what fits and return the dispatches to send once the transaction commits."""
    session.flush()  # the Core queries below see rows the iteration added through the ORM
    occupied, pools, by_dag = _occupancy(session)
    free = parallelism - occupied
    if executor_free is not None:
        free = min(free, executor_free)
    if free <= 0:
        return []
    limit = max(4 * free, MIN_CANDIDATES)
    rows = _scheduled(session, limit)
    decision = _decide(session, dags, rows, pools, by_dag, free, now)
    if not decision.to_queue and len(rows) == limit:
        rows = _scheduled(session, None)
        decision = _decide(session, dags, rows, pools, by_dag, free, now)
    for unrunnable in decision.never_fits:
        _fail_unrunnable(session, unrunnable.candidate, unrunnable.reason, now)
    by_key = {(r.dag_id, r.run_id, r.task_id, r.map_index): r for r in rows}
    chosen = [by_key[(c.dag_id, c.run_id, c.task_id, c.map_index)] for c in decision.to_queue]
    return _move_to_queued(session, dags, chosen, now=now, epoch=epoch)


def _scheduled_query(*, limited: bool) -> Any:
    """The scheduled tries, best first: highest weight, ties to the oldest run (Airflow's
    order). The run's date is on the row (migration 0010), so the database walks
    ``idx_ti_state_priority`` in this order and stops at the limit: an iteration reads
    what it may queue, not the whole backlog (sorting all 10,000 of a fan-out each time
    made its iterations cost in proportion to what was left)."""
    ti = TASK_INSTANCE.c
    query = (
        select(
            ti.dag_id,
            ti.run_id,
            ti.task_id,
            ti.map_index,
            ti.try_number,
            ti.priority_weight,
            ti.pool,
            ti.pool_slots,
            ti.queue,
            ti.run_logical_date.label("run_date"),
        )
        .where(ti.state == TaskState.SCHEDULED)
        .order_by(ti.priority_weight.desc(), ti.run_logical_date)
    )
    return query.limit(bindparam("limit")) if limited else query


# the loop's queries run many times a second: built once, in Core (the ORM's execution
# path costs more than these queries), they cost only their execution
_SCHEDULED_FIRST = _scheduled_query(limited=True)
_SCHEDULED_ALL = _scheduled_query(limited=False)
_OCCUPANCY = (
    select(
        TASK_INSTANCE.c.dag_id,
        TASK_INSTANCE.c.pool,
        func.count(),
        func.sum(TASK_INSTANCE.c.pool_slots),
    )
    .where(TASK_INSTANCE.c.state.in_(_OCCUPYING))
    .group_by(TASK_INSTANCE.c.dag_id, TASK_INSTANCE.c.pool)
)
_POOLS = select(SlotPool.pool, SlotPool.slots)


def _scheduled(session: Session, limit: int | None) -> Sequence[Any]:
    connection = session.connection()
    if limit is None:
        return connection.execute(_SCHEDULED_ALL).all()
    return connection.execute(_SCHEDULED_FIRST, {"limit": limit}).all()


def _decide(
    session: Session,
    dags: DagCache,
    rows: Sequence[Any],
    pools: dict[str, PoolSnapshot],
    by_dag: dict[str, int],
    free: int,
    now: datetime,
) -> FitDecision:
    loads = {}
    for dag_id in {r.dag_id for r in rows}:
        dag = dags.get(session, dag_id)
        if dag is not None:
            loads[dag_id] = DagLoad(dag.max_active_tasks, by_dag.get(dag_id, 0))
    candidates = [
        QueueCandidate(
            dag_id=r.dag_id,
            run_id=r.run_id,
            task_id=r.task_id,
            logical_date=r.run_date or now,
            priority_weight=r.priority_weight,
            pool=r.pool,
            pool_slots=r.pool_slots,
            map_index=r.map_index,
        )
        for r in rows
    ]
    return select_to_queue(candidates, pools=pools, dag_loads=loads, free_executor_slots=free)


def _move_to_queued(
    session: Session, dags: DagCache, rows: list[Any], *, now: datetime, epoch: int
) -> list[Dispatch]:
    """Move ``rows`` to ``queued`` in one statement; dispatch exactly those that moved."""
    if not rows:
        return []
    keys = [TaskKey(r.dag_id, r.run_id, r.task_id, r.map_index) for r in rows]
    moved = set_task_states(
        session,
        keys,
        TaskState.QUEUED,
        expected=[TaskState.SCHEDULED],
        values={
            "try_number": TaskInstance.try_number + 1,
            "queued_at": now,
            "queued_by_epoch": epoch,
            "start_date": None,
            "end_date": None,
            "heartbeat_at": None,
        },
    )
    if moved < len(keys):
        # a user cleared or marked some meanwhile: dispatch only what this loop moved
        rows = [r for r in rows if _moved_now(session, r, now, epoch)]
    dispatches = []
    for row in rows:
        message = TaskMessage(
            row.dag_id,
            row.run_id,
            row.task_id,
            row.map_index,
            row.try_number + 1,
            dags.fingerprint(row.dag_id) or "",
        )
        dispatches.append(Dispatch(message, queue=row.queue, priority=row.priority_weight))
    return dispatches


def _moved_now(session: Session, row: Any, now: datetime, epoch: int) -> bool:
    state = session.execute(
        select(TaskInstance.state, TaskInstance.try_number, TaskInstance.queued_at).where(
            TaskInstance.dag_id == row.dag_id,
            TaskInstance.run_id == row.run_id,
            TaskInstance.task_id == row.task_id,
            TaskInstance.map_index == row.map_index,
            TaskInstance.queued_by_epoch == epoch,
        )
    ).first()
    return state is not None and tuple(state) == (TaskState.QUEUED, row.try_number + 1, now)


def _occupancy(session: Session) -> tuple[int, dict[str, PoolSnapshot], dict[str, int]]:
    """``(queued + running in all, pools with their occupied slots, per-DAG active count)``."""
    by_pool: dict[str, int] = defaultdict(int)
    by_dag: dict[str, int] = defaultdict(int)
    total = 0
    counts = session.connection().execute(_OCCUPANCY).all()
    for dag_id, pool, count, slots in counts:
        by_pool[pool] += int(slots or 0)
        by_dag[dag_id] += int(count)
        total += int(count)
    pools = {
        name: PoolSnapshot(name, slots, by_pool.get(name, 0))
        for name, slots in session.connection().execute(_POOLS)
    }
    return total, pools, dict(by_dag)


def _fail_unrunnable(
    session: Session, candidate: QueueCandidate, reason: str, now: datetime
) -> None:
    log.error(
        "%s.%s (%s) can never run: %s",
        candidate.dag_id,
        candidate.task_id,
        candidate.run_id,
        reason,
    )
    key = TaskKey(candidate.dag_id, candidate.run_id, candidate.task_id, candidate.map_index)
    set_task_state(
        session, key, TaskState.FAILED, expected=[TaskState.SCHEDULED], values={"end_date": now}
    )
