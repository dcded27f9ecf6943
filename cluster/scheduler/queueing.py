"""The loop's queueing step: what fits now moves ``scheduled → queued`` and is dispatched.

Occupancy (pools, per DAG, global) is counted from ``queued`` and ``running`` rows, so
it is exact whichever scheduler or worker moved them. The move sets the next try
number; the message carries it, and the runner's claim only accepts that number.
Only the best-weighted scheduled instances that could be queued are read (a few times
the free slots), pool by pool: a full pool's tries and those of a DAG at its
``max_active_tasks`` are passed over in the database, as Airflow's starved pools and
DAGs are. A full pool's backlog is not read at all; a DAG at its limit still costs the
database a walk over its tries' index entries (about 1 ms per 5,000 on SQLite), but
none of them reaches the scheduler. A task's ``max_active_tis_per_dag`` and
``max_active_tis_per_dagrun`` are checked against its queued and running instances,
counted only when a candidate's task has such a limit (one grouped query over those
tasks), so DAGs without them pay nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, null, select, tuple_, union_all
from sqlalchemy.orm import Session

from cluster.executors.base import Dispatch
from cluster.messages import TaskMessage
from cluster.metastore.models import TASK_INSTANCE, SlotPool, TaskInstance
from cluster.metastore.transitions import NEXT_TRY, TaskKey, set_task_state, set_task_states
from cluster.policy.fit import (
    DagLoad,
    FitDecision,
    PoolSnapshot,
    QueueCandidate,
    TaskLoads,
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
    readable = _readable_pools(pools)
    if free <= 0 or not readable:
        return []
    starved = _starved_dags(session, dags, by_dag)
    limit = max(4 * free, MIN_CANDIDATES)
    rows = _scheduled(session, limit, pools=readable, starved=starved)
    decision = _decide(session, dags, rows, pools, by_dag, free, now)
    if not decision.to_queue and len(rows) == limit:
        # only tries needing more slots than their pool has left: look further down
        rows = _scheduled(session, None, pools=readable, starved=starved)
        decision = _decide(session, dags, rows, pools, by_dag, free, now)
    for unrunnable in decision.never_fits:
        _fail_unrunnable(session, unrunnable.candidate, unrunnable.reason, now)
    by_key = {(r.dag_id, r.run_id, r.task_id, r.map_index): r for r in rows}
    chosen = [by_key[(c.dag_id, c.run_id, c.task_id, c.map_index)] for c in decision.to_queue]
    return _move_to_queued(session, dags, chosen, now=now, epoch=epoch)


def _readable_pools(pools: dict[str, PoolSnapshot]) -> list[str]:
    """The pools whose scheduled tries are read: those with a free slot, and those of no
    slots at all (every try there can never run and is failed).

    A full pool's tries cannot be queued now, so they are not read (Airflow's starved
    pools); one too big for its pool is failed once the pool has a free slot. A pool
    missing from ``slot_pool`` is not read either: its tries wait for it, as in Airflow.
    """
    return sorted(name for name, pool in pools.items() if pool.free > 0 or pool.slots == 0)


def _starved_dags(session: Session, dags: DagCache, by_dag: dict[str, int]) -> list[str]:
    """The DAGs at their ``max_active_tasks``: none of their tries can be queued now."""
    starved = []
    for dag_id, active in by_dag.items():
        dag = dags.get(session, dag_id)
        if dag is not None and active >= dag.max_active_tasks:
            starved.append(dag_id)
    return sorted(starved)


_COLUMNS = (
    TASK_INSTANCE.c.dag_id,
    TASK_INSTANCE.c.run_id,
    TASK_INSTANCE.c.task_id,
    TASK_INSTANCE.c.map_index,
    TASK_INSTANCE.c.try_number,
    TASK_INSTANCE.c.priority_weight,
    TASK_INSTANCE.c.pool,
    TASK_INSTANCE.c.pool_slots,
    TASK_INSTANCE.c.queue,
    TASK_INSTANCE.c.run_logical_date.label("run_date"),
)


def _pool_query(pool: Any) -> Any:
    """One pool's scheduled tries outside the starved DAGs, best first: highest weight,
    ties to the oldest run (Airflow's order). ``idx_ti_state_pool_priority`` holds them
    in this order with the DAG id (migration 0011), so the database walks it, passes
    over a starved DAG's tries on the index and stops at the limit."""
    ti = TASK_INSTANCE.c
    return (
        select(*_COLUMNS)
        .where(ti.state == TaskState.SCHEDULED, ti.pool == pool)
        .where(ti.dag_id.not_in(bindparam("starved", expanding=True)))
        .order_by(ti.priority_weight.desc(), ti.run_logical_date)
    )


@cache
def scheduled_statement(pools: int) -> Any:
    """The best ``:limit`` scheduled tries of ``pools`` pools (``:pool_0`` …): each
    pool's best ``:limit`` read on the index, then the best of those (a sort of at most
    ``pools * limit`` rows, never of the backlog). Built once per number of pools (the
    loop runs it many times a second) and in Core, whose execution path costs less than
    the ORM's."""
    if pools == 1:
        return _pool_query(bindparam("pool_0")).limit(bindparam("limit"))
    parts = [
        _pool_query(bindparam(f"pool_{i}")).limit(bindparam("limit")).subquery()
        for i in range(pools)
    ]
    best = union_all(*(select(*part.c) for part in parts)).subquery()
    return (
        select(*best.c)
        .order_by(best.c.priority_weight.desc(), best.c.run_date)
        .limit(bindparam("limit"))
    )


#: the loop's queries run many times a second: built once, in Core (the ORM's execution
#: path costs more than these queries), they cost only their execution
_SCHEDULED_ALL = (
    select(*_COLUMNS)
    .where(
        TASK_INSTANCE.c.state == TaskState.SCHEDULED,
        TASK_INSTANCE.c.pool.in_(bindparam("pools", expanding=True)),
        TASK_INSTANCE.c.dag_id.not_in(bindparam("starved", expanding=True)),
    )
    .order_by(TASK_INSTANCE.c.priority_weight.desc(), TASK_INSTANCE.c.run_logical_date)
)
#: queued and running tries by DAG and pool (``dag_id`` set), then every pool with its
#: slots (``dag_id`` null): one round trip where two ran each iteration
_OCCUPANCY = union_all(
    select(
        TASK_INSTANCE.c.dag_id,
        TASK_INSTANCE.c.pool,
        func.count(),
        func.sum(TASK_INSTANCE.c.pool_slots),
    )
    .where(TASK_INSTANCE.c.state.in_(_OCCUPYING))
    .group_by(TASK_INSTANCE.c.dag_id, TASK_INSTANCE.c.pool),
    select(null(), SlotPool.pool, null(), SlotPool.slots),
)


def _scheduled(
    session: Session, limit: int | None, *, pools: Sequence[str], starved: Sequence[str] = ()
) -> Sequence[Any]:
    """The best ``limit`` scheduled tries of ``pools`` outside the ``starved`` DAGs, in
    queueing order (``None``: all of them)."""
    connection = session.connection()
    if limit is None:
        params: dict[str, Any] = {"pools": list(pools), "starved": list(starved)}
        return connection.execute(_SCHEDULED_ALL, params).all()
    params = {f"pool_{i}": pool for i, pool in enumerate(pools)}
    params.update(limit=limit, starved=list(starved))
    return connection.execute(scheduled_statement(len(pools)), params).all()


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
    candidates = [_candidate(session, dags, r, now) for r in rows]
    return select_to_queue(
        candidates,
        pools=pools,
        dag_loads=loads,
        free_executor_slots=free,
        task_loads=_task_loads(session, candidates),
    )


def _candidate(session: Session, dags: DagCache, row: Any, now: datetime) -> QueueCandidate:
    dag = dags.get(session, row.dag_id)
    task = dag.tasks.get(row.task_id) if dag is not None else None
    return QueueCandidate(
        dag_id=row.dag_id,
        run_id=row.run_id,
        task_id=row.task_id,
        logical_date=row.run_date or now,
        priority_weight=row.priority_weight,
        pool=row.pool,
        pool_slots=row.pool_slots,
        map_index=row.map_index,
        max_active_tis_per_dag=task.max_active_tis_per_dag if task is not None else None,
        max_active_tis_per_dagrun=task.max_active_tis_per_dagrun if task is not None else None,
    )


_TASK_LOADS = (
    select(
        TASK_INSTANCE.c.dag_id,
        TASK_INSTANCE.c.run_id,
        TASK_INSTANCE.c.task_id,
        func.count(),
    )
    .where(
        TASK_INSTANCE.c.state.in_(_OCCUPYING),
        tuple_(TASK_INSTANCE.c.dag_id, TASK_INSTANCE.c.task_id).in_(
            bindparam("tasks", expanding=True)
        ),
    )
    .group_by(TASK_INSTANCE.c.dag_id, TASK_INSTANCE.c.run_id, TASK_INSTANCE.c.task_id)
)


def _task_loads(session: Session, candidates: Sequence[QueueCandidate]) -> TaskLoads | None:
    """The queued + running instances of the candidates' tasks that have a per-task
    limit, per task and per (run, task), as Airflow's ``ConcurrencyMap`` (deferred ones
    do not count there either). ``None``, and no query, when no candidate has a limit."""
    limited = sorted({(c.dag_id, c.task_id) for c in candidates if c.has_task_limit})
    if not limited:
        return None
    per_dag: dict[tuple[str, str], int] = defaultdict(int)
    per_run: dict[tuple[str, str, str], int] = {}
    params = {"tasks": limited}
    for dag_id, run_id, task_id, count in session.connection().execute(_TASK_LOADS, params):
        per_dag[(dag_id, task_id)] += int(count)
        per_run[(dag_id, run_id, task_id)] = int(count)
    return TaskLoads(per_dag=dict(per_dag), per_run=per_run)


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
            "try_number": NEXT_TRY,
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
    sizes: dict[str, Any] = {}
    for dag_id, pool, count, slots in session.connection().execute(_OCCUPANCY):
        if dag_id is None:
            sizes[pool] = slots
            continue
        by_pool[pool] += int(slots or 0)
        by_dag[dag_id] += int(count)
        total += int(count)
    pools = {name: PoolSnapshot(name, slots, by_pool.get(name, 0)) for name, slots in sizes.items()}
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
