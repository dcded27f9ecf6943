"""Registry of running processes (schedulers, webservers, workers) and their heartbeats.

Each process upserts its own row every few seconds; ``/health`` and ``tradewind
status`` list them and judge liveness from ``heartbeat_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cluster.errors import UsageError
from cluster.metastore.models import Component

KINDS = ("scheduler", "webserver", "worker")


@dataclass(frozen=True, slots=True)
class ComponentRecord:
    id: int
    kind: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    state: str
    extra: Any


def heartbeat_component(
    kind: str,
    host: str,
    pid: int,
    *,
    session: Session,
    now: datetime,
    state: str = "running",
    extra: Any = None,
) -> int:
    """Create or refresh this process's row and return its id.

    Only the process itself writes its row (unique on kind, host, pid), so the
    read-then-write here does not race.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown component kind '{kind}' (one of {', '.join(KINDS)})")
    row = session.scalars(
        select(Component).where(
            Component.kind == kind, Component.host == host, Component.pid == pid
        )
    ).first()
    if row is None:
        row = Component(kind=kind, host=host, pid=pid, started_at=now)
        session.add(row)
    row.heartbeat_at = now
    row.state = state
    if extra is not None:
        row.extra = extra
    session.flush()
    return row.id


def list_components(*, session: Session, kind: str | None = None) -> list[ComponentRecord]:
    """Every registered process, newest heartbeat first."""
    statement = select(Component).order_by(Component.heartbeat_at.desc())
    if kind is not None:
        statement = statement.where(Component.kind == kind)
    return [
        ComponentRecord(r.id, r.kind, r.host, r.pid, r.started_at, r.heartbeat_at, r.state, r.extra)
        for r in session.scalars(statement)
    ]


def remove_stale_components(*, session: Session, older_than: datetime) -> int:
    """Forget processes whose last heartbeat is older than ``older_than``."""
    result = session.execute(delete(Component).where(Component.heartbeat_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
