"""The audit log: who changed what through the CLI, the UI or the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.coltypes import utcnow
from cluster.metastore.models import AuditLog

#: the event each new scheduler epoch writes (``extra``: epoch, host, pid), so the
#: history of leaders outlives ``scheduler_lease``, which holds only the latest
LEADER_EVENT = "scheduler_leader"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    ts: datetime
    event: str
    username: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    extra: Any


def record_event(
    event: str,
    *,
    session: Session,
    username: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    extra: Any = None,
    now: datetime | None = None,
) -> None:
    """Add one row in the caller's transaction, so the event commits with the change."""
    session.add(
        AuditLog(
            ts=now or utcnow(),
            event=event,
            username=username,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            extra=extra,
        )
    )
    session.flush()


def list_events(
    *,
    session: Session,
    limit: int = 100,
    dag_id: str | None = None,
    event: str | None = None,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    statement = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if dag_id is not None:
        statement = statement.where(AuditLog.dag_id == dag_id)
    if event is not None:
        statement = statement.where(AuditLog.event == event)
    if before_id is not None:
        statement = statement.where(AuditLog.id < before_id)
    return [
        AuditEvent(r.id, r.ts, r.event, r.username, r.dag_id, r.run_id, r.task_id, r.extra)
        for r in session.scalars(statement)
    ]
