"""``/dags``: list, read and pause DAGs; ``/importErrors``: why DAG files failed to load.

The list is the API's busiest call (dashboards poll it), so it reads plain columns
rather than ORM objects, counts the matches in the same query, and hands the page to
the JSON writer as plain data (:class:`~cluster.web.api.operations.JsonBody`) instead
of a hundred validated models. The JSON written is kept per query
(:mod:`cluster.web.view_cache`) and sent again while the rows' stamp
(:mod:`cluster.web.stamps`) is unchanged: then a call reads one short field instead of
a hundred rows of sixteen columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, func, select

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
from cluster.web.context import db_session, web_context
from cluster.web.prepared import execute
from cluster.web.stamps import AnySelect, Stamp, read_stamp, row_code, stamp_of, stamp_statement

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
    paged = not query.tags
    shape = {
        "only_active": query.only_active,
        "paused": query.paused,
        "pattern": query.dag_id_pattern or None,
    }
    statement, stamp_query = list_statements(**shape, paged=paged)
    params = {"limit": query.limit, "offset": query.offset} if paged else {}
    session = db_session()
    views = web_context().dag_list_views
    key = query.model_dump_json()
    cached = views.get(key)
    if cached is not None and (read_stamp(session, stamp_query, params),) == cached.stamps:
        return JsonBody(cached.value)
    rows = execute(session, statement, params).all()
    if paged and not rows:  # past the end: nothing to reuse, count the matches
        return dag_collection([], count_matches(session, list_statements(**shape, paged=False)[0]))
    if paged:
        body = dag_collection(rows, rows[0].total_entries)
    else:
        wanted = set(query.tags or ())
        matching = [r for r in rows if wanted & set(r.tags or [])]
        body = dag_collection(matching[query.offset : query.offset + query.limit], len(matching))
    written = body.encoded()
    views.put(key, (stamp_of_rows(rows, paged=paged),), written)
    return JsonBody(written)


@lru_cache(maxsize=64)
def list_statements(
    *, only_active: bool, paused: bool | None, pattern: str | None, paged: bool
) -> tuple[AnySelect, AnySelect]:
    """The DAG list query and its stamp query (:mod:`cluster.web.stamps`).

    Paged, it reads one page (bound parameters ``limit`` and ``offset``) with the
    number of matches as a window count (the DAG table is small, so counting with the
    page is cheaper than a second query). The stamp query reads the page's codes and
    the number of matches as a plain count beside them: the window count inside the
    stamp's subquery cost MariaDB as much again as the rest of it. Unpaged (the tag
    filter runs here), it reads every match. Built once per shape: building and keying
    the statement cost about as much as running it.
    """
    filters: list[ColumnElement[bool]] = []
    if only_active:
        filters.append(DagRow.is_active.is_(True))
    if paused is not None:
        filters.append(DagRow.is_paused.is_(paused))
    if pattern:
        filters.append(DagRow.dag_id.contains(pattern, autoescape=True))
    coded = select(*DAG_COLUMNS, row_code(*DAG_COLUMNS)).where(*filters).order_by(DagRow.dag_id)
    if not paged:
        return coded, stamp_statement(coded)
    page = coded.limit(bindparam("limit")).offset(bindparam("offset"))
    statement = page.add_columns(func.count().over().label("total_entries"))
    matches = select(func.count()).select_from(DagRow).where(*filters).scalar_subquery()
    return statement, stamp_statement(page, matches)


def stamp_of_rows(rows: Sequence[Row[Any]], *, paged: bool) -> Stamp:
    """The stamp of rows read with :func:`list_statements`: what its stamp query reads
    while they are unchanged."""
    codes = (r.row_code for r in rows)
    return stamp_of(codes, (rows[0].total_entries,) if paged and rows else ())


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
