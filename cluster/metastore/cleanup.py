"""Purge old history (``tradewind db clean``): finished runs and what hangs off them.

Only DAG runs that finished (``success``/``failed``) before the cut-off go, together
with their task instances, tries, and XComs; a run still holding a queued or running
task instance is kept whatever its state says. Dataset events stamped before the
cut-off go too (as Airflow's ``dataset_event``), with their links to the runs they fed
and the consumers' queue rows queued before it (an event that is gone triggers
nothing). Work is done in batches so that each statement stays small and no lock is
held for long.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, tuple_
from sqlalchemy.orm import Session

from cluster.metastore.dataset_models import DagRunDatasetEvent, DatasetDagRunQueue, DatasetEvent
from cluster.metastore.models import (
    AuditLog,
    CallbackRequest,
    DagRun,
    TaskInstance,
    TaskInstanceHistory,
    TaskMap,
    XCom,
)
from cluster.states import OCCUPYING, DagRunState

BATCH = 500
_FINISHED_RUNS = [str(DagRunState.SUCCESS), str(DagRunState.FAILED)]
#: children first: deleting in this order never violates a foreign key
RUN_CHILDREN: tuple[type[Any], ...] = (
    XCom,
    TaskMap,
    TaskInstanceHistory,
    TaskInstance,
    CallbackRequest,
)
#: the tables ``clean`` may be limited to
TABLES = ("dag_run", *(m.__tablename__ for m in RUN_CHILDREN), "audit_log", "dataset_event")


def clean(
    *,
    session: Session,
    before: datetime,
    dry_run: bool = False,
    tables: Collection[str] | None = None,
) -> dict[str, int]:
    """Delete (or with ``dry_run`` only count) history older than ``before``.

    :param tables: only these of :data:`TABLES` (Airflow's ``db clean --tables``); a run
        leaves with all its rows, so ``dag_run`` implies its children, as the foreign keys'
        cascade does in Airflow. ``None`` cleans them all.
    :return: rows per table cleaned: ``dag_run``, ``task_instance``,
        ``task_instance_history``, ``xcom``, ``task_map``, ``callback_request``, ``audit_log``,
        ``dataset_event`` (and ``dataset_dag_run_queue``, cleaned with it).
    """
    chosen = set(TABLES if tables is None else tables)
    children = [m for m in RUN_CHILDREN if "dag_run" in chosen or m.__tablename__ in chosen]
    counts = {m.__tablename__: 0 for m in children}
    if "dag_run" in chosen:
        counts["dag_run"] = 0
    last_id = 0
    while True:
        batch = _old_runs(session, before, after_id=last_id)
        if not batch:
            break
        last_id = batch[-1][0]
        pairs = [(dag_id, run_id) for _, dag_id, run_id in batch]
        for model in children:
            counts[model.__tablename__] += _purge(session, model, pairs, dry_run)
        if "dag_run" in chosen:
            counts["dag_run"] += _purge(session, DagRun, pairs, dry_run)
    if "audit_log" in chosen:
        counts["audit_log"] = _purge_audit(session, before, dry_run)
    if "dataset_event" in chosen:
        counts.update(_purge_dataset_events(session, before, dry_run))
    session.flush()
    return counts


def delete_runs(session: Session, dag_id: str, run_ids: list[str]) -> None:
    """Delete runs of ``dag_id`` with their instances, tries, XComs and task maps."""
    if not run_ids:
        return
    for model in RUN_CHILDREN:  # children first: no foreign key is violated
        session.execute(delete(model).where(model.dag_id == dag_id, model.run_id.in_(run_ids)))
    session.execute(delete(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids)))


def _old_runs(session: Session, before: datetime, *, after_id: int) -> list[tuple[int, str, str]]:
    busy = exists().where(
        TaskInstance.dag_id == DagRun.dag_id,
        TaskInstance.run_id == DagRun.run_id,
        TaskInstance.state.in_([str(s) for s in OCCUPYING]),
    )
    statement = (
        select(DagRun.id, DagRun.dag_id, DagRun.run_id)
        .where(
            DagRun.id > after_id,
            DagRun.state.in_(_FINISHED_RUNS),
            DagRun.end_date < before,
            ~busy,
        )
        .order_by(DagRun.id)
        .limit(BATCH)
    )
    return [(row.id, row.dag_id, row.run_id) for row in session.execute(statement)]


def _purge(session: Session, model: type[Any], pairs: list[tuple[str, str]], dry_run: bool) -> int:
    condition = tuple_(model.dag_id, model.run_id).in_(pairs)
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(model).where(condition)) or 0)
    result = session.execute(
        delete(model).where(condition).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _purge_audit(session: Session, before: datetime, dry_run: bool) -> int:
    condition = and_(AuditLog.ts < before)
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(AuditLog).where(condition)) or 0)
    result = session.execute(delete(AuditLog).where(condition))
    return int(getattr(result, "rowcount", 0) or 0)


def _purge_dataset_events(session: Session, before: datetime, dry_run: bool) -> dict[str, int]:
    """Events stamped before ``before`` with their run links, and queue rows queued before it.

    The links are deleted first, explicitly: SQLite enforces no foreign-key cascade here.
    """
    queued = DatasetDagRunQueue.created_at < before
    if dry_run:
        old = select(func.count()).select_from(DatasetEvent).where(DatasetEvent.timestamp < before)
        waiting = select(func.count()).select_from(DatasetDagRunQueue).where(queued)
        return {
            "dataset_event": int(session.scalar(old) or 0),
            "dataset_dag_run_queue": int(session.scalar(waiting) or 0),
        }
    events = 0
    while True:
        ids = list(
            session.scalars(
                select(DatasetEvent.id)
                .where(DatasetEvent.timestamp < before)
                .order_by(DatasetEvent.id)
                .limit(BATCH)
            )
        )
        if not ids:
            break
        session.execute(delete(DagRunDatasetEvent).where(DagRunDatasetEvent.event_id.in_(ids)))
        result = session.execute(delete(DatasetEvent).where(DatasetEvent.id.in_(ids)))
        events += int(getattr(result, "rowcount", 0) or 0)
    result = session.execute(delete(DatasetDagRunQueue).where(queued))
    return {
        "dataset_event": events,
        "dataset_dag_run_queue": int(getattr(result, "rowcount", 0) or 0),
    }
