"""Reads and writes of ``sla_miss``, for the DAG processor's SLA check, the callback
runner that notifies, the REST API and the CLI.

A miss is inserted unless present (its key is Airflow's: task, DAG, logical date), so
two checkers, or an old and a new leader's, record it once; the request to notify is
written in the same transaction only by the checker that inserted something.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Select, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from cluster.metastore.models import Dag, DagRun, SerializedDagRow, SlaMiss, TaskInstance, table_of

#: what a successful check needs of a task's latest instance
DONE = ("success", "skipped")
#: the kind of the callback request that notifies a DAG's new misses
SLA_CALLBACK = "sla_miss_callback"


@dataclass(frozen=True)
class Miss:
    """One SLA miss, as plain data (the callback's ``slas`` and the API's rows)."""

    dag_id: str
    task_id: str
    execution_date: datetime
    timestamp: datetime | None
    email_sent: bool = False
    notification_sent: bool = False
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "execution_date": self.execution_date,
            "timestamp": self.timestamp,
            "email_sent": self.email_sent,
            "notification_sent": self.notification_sent,
            "description": self.description,
        }


def dags_with_slas(session: Session) -> list[tuple[str, str]]:
    """``(dag_id, serialized JSON)`` of the active, unpaused DAGs with a task ``sla``.

    The filter is a substring of the JSON (``"sla":`` is written only when set), so
    DAGs without SLAs cost the database a scan, never a decode here.
    """
    rows = session.execute(
        select(Dag.dag_id, SerializedDagRow.data)
        .join(SerializedDagRow, SerializedDagRow.dag_id == Dag.dag_id)
        .where(Dag.is_active, Dag.is_paused.is_(False), SerializedDagRow.data.contains('"sla":'))
    ).all()
    return [(dag_id, data) for dag_id, data in rows]


def latest_done(
    session: Session, dag_id: str, task_ids: Sequence[str]
) -> dict[str, tuple[datetime, datetime]]:
    """``task_id → data interval`` of the run of its latest successful or skipped
    instance (by logical date, as Airflow's ``max(execution_date)``)."""
    latest = (
        select(TaskInstance.task_id, func.max(DagRun.logical_date).label("at"))
        .join(
            DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id)
        )
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.task_id.in_(list(task_ids)),
            TaskInstance.state.in_(DONE),
        )
        .group_by(TaskInstance.task_id)
        .subquery()
    )
    rows = session.execute(
        select(latest.c.task_id, DagRun.data_interval_start, DagRun.data_interval_end).join(
            DagRun, and_(DagRun.dag_id == dag_id, DagRun.logical_date == latest.c.at)
        )
    ).all()
    return {t: (s, e) for t, s, e in rows if s is not None and e is not None}


def recorded_dates(session: Session, dag_id: str) -> dict[str, set[datetime]]:
    """``task_id → logical dates`` already recorded as misses."""
    out: dict[str, set[datetime]] = {}
    rows = session.execute(
        select(SlaMiss.task_id, SlaMiss.execution_date).where(SlaMiss.dag_id == dag_id)
    )
    for task_id, when in rows:
        out.setdefault(task_id, set()).add(when)
    return out


def record_misses(
    session: Session, dag_id: str, misses: Iterable[tuple[str, datetime]], *, now: datetime
) -> int:
    """Insert the misses not yet recorded; returns how many this call inserted."""
    rows = [
        {
            "dag_id": dag_id,
            "task_id": task_id,
            "execution_date": when,
            "timestamp": now,
            "email_sent": False,
            "notification_sent": False,
        }
        for task_id, when in misses
    ]
    inserted = 0
    statement = _insert_unless_present(session)
    for row in rows:  # one at a time: each insert says whether its row was new
        result = session.execute(statement, row)
        if session.get_bind().dialect.name == "postgresql":
            inserted += len(result.all())  # psycopg gives no row count here: RETURNING does
        else:
            inserted += max(int(getattr(result, "rowcount", 0) or 0), 0)
    return inserted


def _insert_unless_present(session: Session) -> Insert:
    table = table_of(SlaMiss)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().returning(table.c.task_id)
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    return insert(table).prefix_with("OR IGNORE")


def unnotified(session: Session, dag_id: str) -> list[Miss]:
    """The DAG's misses no callback or email has reported yet (Airflow's ``slas``)."""
    query = _query().where(SlaMiss.dag_id == dag_id, ~SlaMiss.notification_sent)
    return _misses(session, query.order_by(SlaMiss.execution_date, SlaMiss.task_id))


def blocking(
    session: Session, dag_id: str, dates: Sequence[datetime]
) -> list[tuple[str, datetime]]:
    """``(task_id, logical date)`` of the instances of those runs not yet successful."""
    rows = session.execute(
        select(TaskInstance.task_id, DagRun.logical_date)
        .join(
            DagRun, and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id)
        )
        .where(
            TaskInstance.dag_id == dag_id,
            DagRun.logical_date.in_(list(dates)),
            TaskInstance.state.is_distinct_from("success"),
        )
        .order_by(DagRun.logical_date, TaskInstance.task_id)
    ).all()
    return [(t, d) for t, d in rows if d is not None]


def mark_notified(
    session: Session, misses: Sequence[Miss], *, email_sent: bool, notification_sent: bool
) -> None:
    """Record that ``misses`` were reported (Airflow sets both flags only on success)."""
    for miss in misses:
        session.execute(
            update(SlaMiss)
            .where(
                SlaMiss.dag_id == miss.dag_id,
                SlaMiss.task_id == miss.task_id,
                SlaMiss.execution_date == miss.execution_date,
            )
            .values(email_sent=email_sent, notification_sent=notification_sent)
        )


def list_misses(
    session: Session, *, dag_id: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[Miss], int]:
    """Misses newest first, and how many there are in all (for the API and the CLI)."""
    query = _query()
    total = select(func.count()).select_from(SlaMiss)
    if dag_id is not None:
        query = query.where(SlaMiss.dag_id == dag_id)
        total = total.where(SlaMiss.dag_id == dag_id)
    query = query.order_by(SlaMiss.execution_date.desc(), SlaMiss.task_id)
    found = _misses(session, query.limit(limit).offset(offset))
    return found, int(session.scalar(total) or 0)


def _query() -> Select[Any]:
    return select(SlaMiss)


def _misses(session: Session, query: Select[Any]) -> list[Miss]:
    return [
        Miss(
            dag_id=row.dag_id,
            task_id=row.task_id,
            execution_date=row.execution_date,
            timestamp=row.timestamp,
            email_sent=bool(row.email_sent),
            notification_sent=bool(row.notification_sent),
            description=row.description,
        )
        for row in session.scalars(query)
    ]
