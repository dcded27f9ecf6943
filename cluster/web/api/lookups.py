"""Finding the rows an API path names, and paging through lists.

Each ``require_*`` raises :class:`cluster.errors.NotFoundError` (a 404 problem) naming
what is missing, so views read as the happy path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cluster.actions import Actor
from cluster.errors import NotFoundError
from cluster.metastore import audit
from cluster.metastore.models import Dag, DagRun, TaskInstance
from cluster.web.api.schemas import Page
from cluster.web.context import require_user

T = TypeVar("T")

#: the audit log's source of actions taken through the REST API
API_SOURCE = "api"


def api_actor() -> Actor:
    """The signed-in user, as the audit log records API actions."""
    return Actor(require_user().username, source=API_SOURCE)


def audit_api(event: str, *, session: Session, **extra: object) -> None:
    """Record ``api.<event>`` by the signed-in user, in the request's transaction."""
    actor = api_actor()
    audit.record_event(
        f"{actor.source}.{event}", session=session, username=actor.username, extra=extra
    )


def require_dag(session: Session, dag_id: str) -> Dag:
    row = session.get(Dag, dag_id)
    if row is None:
        raise NotFoundError(f"DAG '{dag_id}' not found")
    return row


def require_run(session: Session, dag_id: str, run_id: str) -> DagRun:
    require_dag(session, dag_id)
    row = session.scalar(
        select(DagRun)
        .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFoundError(f"DAG run '{run_id}' of DAG '{dag_id}' not found")
    return row


def require_task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> TaskInstance:
    require_run(session, dag_id, run_id)
    row = session.scalar(
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFoundError(
            f"task instance '{task_id}' (map index {map_index}) of run '{run_id}' not found"
        )
    return row


def runs_around(
    session: Session,
    dag_id: str,
    run: DagRun | None,
    *,
    low: datetime | None = None,
    high: datetime | None = None,
    past: bool = False,
    future: bool = False,
) -> list[str]:
    """The run ids an action names, oldest first: ``run``, with every run before it
    (``past``) or after it (``future``) by logical date; without ``run``, the runs whose
    logical date is from ``low`` to ``high`` (``past`` drops ``low``, ``future`` ``high``).
    """
    statement = select(DagRun.run_id).where(DagRun.dag_id == dag_id)
    if run is not None:
        if not (past or future) or run.logical_date is None:
            return [run.run_id]
        low = high = run.logical_date
    if past:
        low = None
    if future:
        high = None
    if low is not None:
        statement = statement.where(DagRun.logical_date >= low)
    if high is not None:
        statement = statement.where(DagRun.logical_date <= high)
    return list(session.scalars(statement.order_by(DagRun.id)))


def paginate(session: Session, statement: Select[T], page: Page) -> tuple[Sequence[T], int]:
    """One page of ``statement``'s rows and the total number of rows it matches."""
    total = count_matches(session, statement)
    rows = session.scalars(statement.limit(page.limit).offset(page.offset)).all()
    return rows, total


def count_matches(session: Session, statement: Select[Any]) -> int:
    """How many rows ``statement`` matches."""
    total_query: Select[Any] = select(func.count()).select_from(statement.order_by(None).subquery())
    return session.scalar(total_query) or 0
