"""``/dags``: list, read and pause DAGs; ``/importErrors``: why DAG files failed to load.

The list is the API's busiest call (dashboards poll it), so it reads plain columns
rather than ORM objects, counts the matches in the same query, and hands the page to
the JSON writer as plain data (:class:`~cluster.web.api.operations.JsonBody`) instead
of a hundred validated models: together well under half the CPU of the plain way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, func, select

from cluster import actions
from cluster.errors import NotFoundError
from cluster.metastore.models import Dag as DagRow
from cluster.metastore.models import ImportErrorRow
from cluster.web.api.admin_schemas import ImportErrorCollection, ImportErrorEntry
from cluster.web.api.lookups import api_actor, count_matches, paginate, require_dag
from cluster.web.api.operations import JsonBody, Routes
from cluster.web.api.schemas import (
    Dag,
    DagCollection,
    DagListQuery,
    DagPatch,
    Page,
)
from cluster.web.context import db_session

routes = Routes("DAG")

#: the ``dag`` columns a :class:`Dag` is made of
DAG_COLUMNS = (
    DagRow.dag_id,
    DagRow.description,
    DagRow.fileloc,
    DagRow.is_paused,
    DagRow.is_active,
    DagRow.owners,
    DagRow.tags,
    DagRow.timetable_summary,
    DagRow.max_active_runs,
    DagRow.max_active_tasks,
    DagRow.next_dagrun,
    DagRow.next_dagrun_data_interval_start,
    DagRow.next_dagrun_data_interval_end,
    DagRow.next_dagrun_create_after,
    DagRow.last_parsed_at,
    DagRow.fingerprint,
)


def dag_fields(row: DagRow | Row[Any]) -> dict[str, Any]:
    """The fields of a :class:`Dag` from a ``dag`` row: an ORM object, or the
    :data:`DAG_COLUMNS` in their order (read by position: much cheaper than by name)."""
    values = (
        tuple(getattr(row, column.key) for column in DAG_COLUMNS)
        if isinstance(row, DagRow)
        else tuple(row)
    )
    (
        dag_id, description, fileloc, is_paused, is_active, owners, tags, timetable,
        max_active_runs, max_active_tasks, next_dagrun, interval_start, interval_end,
        create_after, last_parsed_at, fingerprint, *_,
    ) = values  # fmt: skip
    return {
        "dag_id": dag_id,
        "description": description,
        "fileloc": fileloc,
        "is_paused": bool(is_paused),
        "is_active": bool(is_active),
        "owners": [o.strip() for o in (owners or "").split(",") if o.strip()],
        "tags": [{"name": str(t)} for t in tags or []],
        "timetable_description": timetable,
        "max_active_runs": max_active_runs,
        "max_active_tasks": max_active_tasks,
        "next_dagrun": next_dagrun,
        "next_dagrun_data_interval_start": interval_start,
        "next_dagrun_data_interval_end": interval_end,
        "next_dagrun_create_after": create_after,
        "last_parsed_time": last_parsed_at,
        "fingerprint": fingerprint,
    }


def dag_model(row: DagRow) -> Dag:
    return Dag.model_validate(dag_fields(row))


def dag_collection(rows: Sequence[Row[Any]], total: int) -> JsonBody:
    """One page of DAGs as a :class:`DagCollection` would write it."""
    return JsonBody({"dags": [dag_fields(r) for r in rows], "total_entries": total})


@routes.operation("/dags", "GET", query=DagListQuery, response=DagCollection)
def get_dags(*, query: DagListQuery) -> JsonBody:
    """List DAGs, filtered by tags, paused state and id, sorted by id.

    Tags are stored as JSON text, so the tag filter runs here rather than in SQL
    (nothing dialect-specific outside the metastore package); the DAG table is small.
    """
    statement = select(*DAG_COLUMNS).order_by(DagRow.dag_id)
    if query.only_active:
        statement = statement.where(DagRow.is_active.is_(True))
    if query.paused is not None:
        statement = statement.where(DagRow.is_paused.is_(query.paused))
    if query.dag_id_pattern:
        statement = statement.where(DagRow.dag_id.contains(query.dag_id_pattern, autoescape=True))
    session = db_session()
    if query.tags:
        wanted = set(query.tags)
        matching = [r for r in session.execute(statement) if wanted & set(r.tags or [])]
        return dag_collection(matching[query.offset : query.offset + query.limit], len(matching))
    return dag_collection(*_page_with_total(statement, query))


def _page_with_total(statement: Select[Any], page: Page) -> tuple[Sequence[Row[Any]], int]:
    """One page of DAG rows and the number of matches, in one query while the page has
    rows (a window count: the DAG table is small, so counting with the page is cheaper
    than a second query); a page past the end falls back to a count."""
    session = db_session()
    counted = statement.add_columns(func.count().over().label("total_entries"))
    rows = session.execute(counted.limit(page.limit).offset(page.offset)).all()
    if rows:
        return rows, rows[0].total_entries
    return [], count_matches(session, statement)


@routes.operation("/dags/<dag_id>", "GET", response=Dag)
def get_dag(dag_id: str) -> Dag:
    """One DAG."""
    return dag_model(require_dag(db_session(), dag_id))


@routes.operation("/dags/<dag_id>", "PATCH", body=DagPatch, response=Dag)
def patch_dag(dag_id: str, *, body: DagPatch) -> Dag:
    """Pause or unpause a DAG (``{"is_paused": true}``); a paused DAG gets no new runs."""
    session = db_session()
    require_dag(session, dag_id)
    actions.set_paused(session, dag_id, body.is_paused, actor=api_actor())
    row = session.scalar(
        select(DagRow).where(DagRow.dag_id == dag_id).execution_options(populate_existing=True)
    )
    assert row is not None
    return dag_model(row)


import_error_routes = Routes("ImportError")


def import_error_model(row: ImportErrorRow) -> ImportErrorEntry:
    return ImportErrorEntry(
        import_error_id=row.id,
        timestamp=row.timestamp,
        filename=row.filename,
        message=row.message,
        stack_trace=row.stacktrace or row.message,
    )


@import_error_routes.operation("/importErrors", "GET", query=Page, response=ImportErrorCollection)
def get_import_errors(*, query: Page) -> ImportErrorCollection:
    """List the DAG files that failed to import, oldest first."""
    statement = select(ImportErrorRow).order_by(ImportErrorRow.id)
    rows, total = paginate(db_session(), statement, query)
    return ImportErrorCollection(
        import_errors=[import_error_model(r) for r in rows], total_entries=total
    )


@import_error_routes.operation(
    "/importErrors/<int(max=2147483647):import_error_id>", "GET", response=ImportErrorEntry
)
def get_import_error(import_error_id: int) -> ImportErrorEntry:
    """One import error."""
    row = db_session().get(ImportErrorRow, import_error_id)
    if row is None:
        raise NotFoundError(f"import error {import_error_id} not found")
    return import_error_model(row)
