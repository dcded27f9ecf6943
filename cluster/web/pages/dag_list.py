"""What the DAGs page lists: the matching DAGs and every tag.

The list costs a fixed number of queries whatever the number of DAGs, and each reads
only what it shows: the DAG columns of the list, not whole ORM objects (each DAG's
last runs come from :mod:`cluster.web.pages.recent_runs`). Whether what the page
showed a moment ago is still what the metastore holds is told by the change counters
(:mod:`cluster.metastore.change_counters`), whose triggers watch these columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from cluster.metastore.models import Dag, DagRun
from cluster.web.prepared import AnySelect, execute

#: the columns the list sorts by (``?sort=``); the DAG id breaks ties
SORTS = ("dag_id", "owner", "schedule", "next_run", "last_run")


@dataclass(frozen=True)
class DagFilter:
    search: str | None
    tag: str | None
    state: str | None  # "active" (unpaused) or "paused"
    sort: str = "dag_id"
    descending: bool = False

    @property
    def narrows_in_sql(self) -> bool:
        return bool(self.search) or self.state in ("active", "paused")


@dataclass(frozen=True, slots=True)
class DagSummary:
    """The columns of one DAG that the list shows."""

    dag_id: str
    is_paused: bool
    tags: list[str]
    owners: str | None
    timetable_summary: str | None
    next_dagrun: datetime | None


_COLUMNS = (Dag.dag_id, Dag.is_paused, Dag.tags, Dag.owners, Dag.timetable_summary, Dag.next_dagrun)


@dataclass(frozen=True)
class DagListing:
    """What :func:`list_dags` found."""

    dags: list[DagSummary]
    tags: list[str]


def list_dags(session: Session, wanted: DagFilter) -> DagListing:
    """The active DAGs matching ``wanted`` by id, and the sorted tags of all active DAGs.

    Tags are JSON text, so the tag filter runs here rather than in SQL (nothing
    dialect-specific outside the metastore). When no SQL filter applies, the tags come
    from the same rows instead of a second query.
    """
    sort = wanted.sort if wanted.sort in SORTS else "dag_id"
    statements = listing_statements(wanted.search, wanted.state, sort, wanted.descending)
    rows = [
        DagSummary(dag_id, bool(paused), [str(t) for t in tags or []], owners, summary, next_run)
        for dag_id, paused, tags, owners, summary, next_run in execute(session, statements[0])
    ]
    if wanted.narrows_in_sql:
        every = execute(session, statements[1]).all()
        tags = sorted_tags([str(t) for t in value or []] for (value,) in every)
    else:
        tags = sorted_tags(r.tags for r in rows)
    if wanted.tag:
        rows = [r for r in rows if wanted.tag in r.tags]
    return DagListing(rows, tags)


def _sort_key(sort: str) -> ColumnElement[Any]:
    """What ``sort`` orders by; the last run is one index dive per DAG
    (``idx_dag_run_dag_id_logical_date``), however long its history."""
    if sort == "last_run":
        return (
            select(func.max(DagRun.logical_date))
            .where(DagRun.dag_id == Dag.dag_id)
            .scalar_subquery()
        )
    columns: dict[str, ColumnElement[Any]] = {
        "owner": Dag.owners.expression,
        "schedule": Dag.timetable_summary.expression,
        "next_run": Dag.next_dagrun.expression,
    }
    return columns.get(sort, Dag.dag_id.expression)


@lru_cache(maxsize=64)
def listing_statements(
    search: str | None, state: str | None, sort: str = "dag_id", descending: bool = False
) -> tuple[AnySelect, AnySelect]:
    """The active DAGs matching ``search`` and ``state`` in the order ``sort`` asks
    (``NULL`` last either way), and every active DAG's tags."""
    key = _sort_key(sort)
    order: list[ColumnElement[Any]] = [key.desc() if descending else key.asc()]
    if sort != "dag_id":
        order = [key.is_(None), *order, Dag.dag_id.desc() if descending else Dag.dag_id.asc()]
    statement = select(*_COLUMNS).where(Dag.is_active.is_(True)).order_by(*order)
    if search:
        statement = statement.where(Dag.dag_id.contains(search, autoescape=True))
    if state in ("active", "paused"):
        statement = statement.where(Dag.is_paused.is_(state == "paused"))
    tags = select(Dag.tags).where(Dag.is_active.is_(True))
    return statement, tags


def sorted_tags(tag_lists: Iterable[list[str]]) -> list[str]:
    return sorted({tag for tags in tag_lists for tag in tags})
