"""What the DAGs page lists: the matching DAGs and every tag.

The list costs a fixed number of queries whatever the number of DAGs, and each reads
only what it shows: the DAG columns of the list, not whole ORM objects (each DAG's
last runs come from :mod:`cluster.web.pages.recent_runs`). Whether what the page
showed a moment ago is still what the metastore holds is told by the change counters
(:mod:`cluster.metastore.change_counters`), whose triggers watch these columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, bindparam, func, select
from sqlalchemy.orm import Session

from cluster.metastore.models import Dag, DagRun
from cluster.metastore.sql_functions import hex_text
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
    #: how many DAGs match in all (``dags`` may be one page of them)
    total: int = 0


def _summaries(rows: Iterable[Any]) -> list[DagSummary]:
    return [
        DagSummary(dag_id, bool(paused), [str(t) for t in tags or []], owners, summary, next_run)
        for dag_id, paused, tags, owners, summary, next_run in rows
    ]


def list_dags(
    session: Session, wanted: DagFilter, *, page: int = 1, per_page: int | None = None
) -> DagListing:
    """The active DAGs matching ``wanted`` (page ``page`` of ``per_page``, or all), how
    many match, and the sorted tags of all active DAGs.

    Without a tag filter, the page is read with ``LIMIT``/``OFFSET`` and counted apart,
    and the tags are the distinct tag lists: a page of a few thousand DAGs reads a
    hundred rows. Tags are JSON text, so a tag filter runs here rather than in SQL
    (nothing dialect-specific outside the metastore): then every matching row is read.
    """
    sort = wanted.sort if wanted.sort in SORTS else "dag_id"
    statements = listing_statements(wanted.search, wanted.state, sort, wanted.descending)
    if per_page is not None and not wanted.tag:
        window = {"limit": per_page, "offset": (page - 1) * per_page}
        shown = _summaries(execute(session, statements[2], window))
        total = execute(session, statements[3]).scalar_one()
        distinct = execute(session, statements[4]).all()
        tags = sorted_tags(_from_hex(value) for (value,) in distinct)
        return DagListing(shown, tags, int(total))
    rows = _summaries(execute(session, statements[0]))
    if wanted.narrows_in_sql:
        every = execute(session, statements[1]).all()
        tags = sorted_tags([str(t) for t in value or []] for (value,) in every)
    else:
        tags = sorted_tags(r.tags for r in rows)
    if wanted.tag:
        rows = [r for r in rows if wanted.tag in r.tags]
    if per_page is None:
        return DagListing(rows, tags, len(rows))
    return DagListing(rows[(page - 1) * per_page : page * per_page], tags, len(rows))


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
) -> tuple[AnySelect, AnySelect, AnySelect, AnySelect, AnySelect]:
    """The active DAGs matching ``search`` and ``state`` in the order ``sort`` asks
    (``NULL`` last either way); every active DAG's tags; a page of the first (bound
    ``limit`` and ``offset``); how many match; and the distinct tag lists."""
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
    page = statement.limit(bindparam("limit", type_=Integer)).offset(
        bindparam("offset", type_=Integer)
    )
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    # distinct by their bytes: MariaDB's collation would take ["t"] and ["T"] for one list
    distinct = select(hex_text(Dag.tags)).where(Dag.is_active.is_(True)).distinct()
    return statement, tags, page, count, distinct


def _from_hex(value: str | None) -> list[str]:
    """A tag list read as the hex digits of its JSON text."""
    return [str(t) for t in json.loads(bytes.fromhex(value).decode()) or []] if value else []


def sorted_tags(tag_lists: Iterable[list[str]]) -> list[str]:
    return sorted({tag for tags in tag_lists for tag in tags})
