"""DAG-level callback requests: recorded by the scheduler, claimed and closed by the
DAG processor that runs them (:mod:`cluster.dagfiles.callbacks`).

A request is recorded in the same fenced transaction that ends its run (exactly once:
the run's end is itself a compare-and-set), and claimed with a compare-and-set
(``pending → running``), so two processors, or a new leader's, never both run it. A
processor that dies while running one leaves it ``running``: at most once, never twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from cluster.metastore.models import CallbackRequest


@dataclass(frozen=True)
class ClaimedCallback:
    id: int
    dag_id: str
    run_id: str
    kind: str
    reason: str


def request_callback(
    session: Session, dag_id: str, run_id: str, *, success: bool, reason: str, now: datetime
) -> None:
    """Record that ``dag_id``'s success or failure callback must run for ``run_id``."""
    session.execute(
        insert(CallbackRequest).values(
            dag_id=dag_id,
            run_id=run_id,
            kind="on_success_callback" if success else "on_failure_callback",
            reason=reason,
            state="pending",
            created_at=now,
        )
    )


def pending_ids(session: Session, limit: int = 20) -> list[int]:
    return list(
        session.scalars(
            select(CallbackRequest.id)
            .where(CallbackRequest.state == "pending")
            .order_by(CallbackRequest.id)
            .limit(limit)
        )
    )


def claim(session: Session, request_id: int, *, host: str, now: datetime) -> ClaimedCallback | None:
    """Take one pending request; ``None`` when someone else took it first."""
    result = session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.state == "pending")
        .values(state="running", claimed_by=host, claimed_at=now)
    )
    if not getattr(result, "rowcount", 0):
        return None
    row = session.get(CallbackRequest, request_id)
    assert row is not None
    return ClaimedCallback(row.id, row.dag_id, row.run_id, row.kind, row.reason)


def finish(session: Session, request_id: int, *, ok: bool, message: str, now: datetime) -> None:
    session.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.state == "running")
        .values(state="success" if ok else "failed", finished_at=now, message=message[:1000])
    )


def request_sla_callback(session: Session, dag_id: str, *, now: datetime) -> None:
    """Record that ``dag_id``'s new SLA misses must be reported (callback and email).

    The request names no run (``run_id`` is empty): the runner reports every miss of
    the DAG not yet reported, as Airflow's processor does.
    """
    session.execute(
        insert(CallbackRequest).values(
            dag_id=dag_id,
            run_id="",
            kind="sla_miss_callback",
            reason="sla_miss",
            state="pending",
            created_at=now,
        )
    )
