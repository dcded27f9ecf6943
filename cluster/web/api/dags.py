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
from cluster.dagfiles.storage import NEVER, path_hash
from cluster.errors import NotFoundError
from cluster.metastore.models import Dag as DagRow
from cluster.metastore.models import ImportErrorRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.states import TaskState
from cluster.web.api.admin_schemas import ImportErrorCollection, ImportErrorEntry
from cluster.web.api.lookups import api_actor, count_matches, paginate, require_dag
from cluster.web.api.operations import JsonBody, Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import (
    BulkPatchQuery,
    Dag,
    DagCollection,
    DagListQuery,
    DagPatch,
    FieldsQuery,
    Ordered,
    UpdateMaskQuery,
)
from cluster.web.context import db_session, web_context
from cluster.web.prepared import execute
from cluster.web.problems import ApiProblem
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

#: what ``order_by`` may name in the DAG list (Airflow's field names)
DAG_ORDER = {
    "dag_id": DagRow.dag_id,
    "fileloc": DagRow.fileloc,
    "is_paused": DagRow.is_paused,
    "is_active": DagRow.is_active,
    "owners": DagRow.owners,
    "description": DagRow.description,
    "timetable_description": DagRow.timetable_summary,
    "max_active_runs": DagRow.max_active_runs,
    "max_active_tasks": DagRow.max_active_tasks,
    "next_dagrun": DagRow.next_dagrun,
    "next_dagrun_create_after": DagRow.next_dagrun_create_after,
    "last_parsed_time": DagRow.last_parsed_at,
}
DAG_FIELDS = frozenset(Dag.model_fields)


def schedule_interval(summary: str | None) -> dict[str, str] | None:
    """Airflow's ``schedule_interval`` of a cron schedule (or preset); ``None`` for the rest
    (no schedule, time deltas, datasets), which Airflow's clients accept."""
    if summary and (summary.startswith("@") or len(summary.split()) in (5, 6)):
        return {"__type": "CronExpression", "value": summary}
    return None


def only_fields(
    item: dict[str, Any], fields: list[str] | None, known: frozenset[str] = DAG_FIELDS
) -> dict[str, Any]:
    """``item`` cut to Airflow's ``fields`` parameter.

    :raises ApiProblem: 400 naming a field that is not ``known``.
    """
    if not fields:
        return item
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ApiProblem(400, f"unknown fields: {', '.join(unknown)}")
    return {key: value for key, value in item.items() if key in fields}


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
        "dag_display_name": dag_id,
        "root_dag_id": None,
        "is_subdag": False,
        "last_pickled": None,
        "last_expired": None,
        "scheduler_lock": None,
        "pickle_id": None,
        "default_view": "grid",
        "file_token": path_hash(fileloc),
        "schedule_interval": schedule_interval(timetable),
        "has_task_concurrency_limits": None,
        "has_import_errors": None,
        "max_consecutive_failed_dag_runs": 0,
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
        # never due (no schedule, or max_active_runs reached): null, as Airflow says
        "next_dagrun_create_after": None if create_after == NEVER else create_after,
        "last_parsed_time": last_parsed_at,
        "fingerprint": fingerprint,
    }


def dag_model(row: DagRow) -> Dag:
    return Dag.model_validate(dag_fields(row))


def dag_collection(
    rows: Sequence[Row[Any]], total: int, fields: list[str] | None = None
) -> JsonBody:
    """One page of DAGs as a :class:`DagCollection` would write it."""
    items = [only_fields(dag_fields(r), fields) for r in rows]
    return JsonBody({"dags": items, "total_entries": total})


@routes.operation("/dags", "GET", query=DagListQuery, response=DagCollection)
def get_dags(*, query: DagListQuery) -> JsonBody:
    """List DAGs, filtered by tags, paused state and id, sorted by ``order_by`` (``dag_id``).

    Tags are stored as JSON text, so the tag filter runs here rather than in SQL
    (nothing dialect-specific outside the metastore package); the DAG table is small.
    """
    paged = not query.tags
    shape = {
        "only_active": query.only_active,
        "paused": query.paused,
        "pattern": query.dag_id_pattern or None,
        "order_by": query.order_by or "dag_id",
    }
    only_fields({}, query.fields)  # a bad field is a 400 even on an empty page
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
        body = dag_collection(rows, rows[0].total_entries, query.fields)
    else:
        wanted = set(query.tags or ())
        matching = [r for r in rows if wanted & set(r.tags or [])]
        page = matching[query.offset : query.offset + query.limit]
        body = dag_collection(page, len(matching), query.fields)
    written = body.encoded()
    views.put(key, (stamp_of_rows(rows, paged=paged),), written)
    return JsonBody(written)


@lru_cache(maxsize=64)
def list_statements(
    *,
    only_active: bool,
    paused: bool | None,
    pattern: str | None,
    paged: bool,
    order_by: str = "dag_id",
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
    order = order_clauses(order_by, DAG_ORDER, default="dag_id", tiebreak=DagRow.dag_id)
    coded = select(*DAG_COLUMNS, row_code(*DAG_COLUMNS)).where(*filters).order_by(*order)
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


@routes.operation("/dags/<dag_id>", "GET", query=FieldsQuery, response=Dag)
def get_dag(dag_id: str, *, query: FieldsQuery) -> Dag | JsonBody:
    """One DAG (only the ``fields`` asked for, when given)."""
    fields = dag_fields(require_dag(db_session(), dag_id))
    if query.fields:
        return JsonBody(only_fields(fields, query.fields))
    return Dag.model_validate(fields)


@routes.operation("/dags/<dag_id>", "PATCH", query=UpdateMaskQuery, body=DagPatch, response=Dag)
def patch_dag(dag_id: str, *, query: UpdateMaskQuery, body: DagPatch) -> Dag:
    """Pause or unpause a DAG (``{"is_paused": true}``); a paused DAG gets no new runs.

    As in Airflow, ``is_paused`` is the one field that can change, and an
    ``update_mask`` naming any other field is a 400.
    """
    if query.update_mask and set(query.update_mask) != {"is_paused"}:
        raise ApiProblem(400, "only is_paused can be updated (update_mask=is_paused)")
    session = db_session()
    require_dag(session, dag_id)
    actions.set_paused(session, dag_id, body.is_paused, actor=api_actor())
    row = session.scalar(
        select(DagRow).where(DagRow.dag_id == dag_id).execution_options(populate_existing=True)
    )
    assert row is not None
    return dag_model(row)


@routes.operation("/dags", "PATCH", query=BulkPatchQuery, body=DagPatch, response=DagCollection)
def patch_dags(*, query: BulkPatchQuery, body: DagPatch) -> DagCollection:
    """Pause or unpause every DAG whose id contains ``dag_id_pattern`` (``~`` for all),
    narrowed by ``tags`` and ``only_active``; answers with the DAGs changed, by id."""
    if query.update_mask and set(query.update_mask) != {"is_paused"}:
        raise ApiProblem(400, "only is_paused can be updated (update_mask=is_paused)")
    session = db_session()
    statement = select(DagRow).order_by(DagRow.dag_id)
    if query.only_active:
        statement = statement.where(DagRow.is_active.is_(True))
    if query.dag_id_pattern != "~":
        statement = statement.where(DagRow.dag_id.contains(query.dag_id_pattern, autoescape=True))
    rows = list(session.scalars(statement))
    if query.tags:
        rows = [r for r in rows if set(query.tags) & set(r.tags or [])]
    page = rows[query.offset : query.offset + query.limit]
    for row in page:
        actions.set_paused(session, row.dag_id, body.is_paused, actor=api_actor())
    session.flush()
    changed = session.scalars(
        select(DagRow)
        .where(DagRow.dag_id.in_([r.dag_id for r in page]))
        .order_by(DagRow.dag_id)
        .execution_options(populate_existing=True)
    )
    return DagCollection(dags=[dag_model(r) for r in changed], total_entries=len(rows))


@routes.operation("/dags/<dag_id>", "DELETE", status=204)
def delete_dag(dag_id: str) -> None:
    """Delete every record of a DAG: runs, task instances, XComs (its file stays, so the
    next parse brings the DAG back). A DAG with a running task instance is a 409, as in
    Airflow."""
    session = db_session()
    require_dag(session, dag_id)
    running = select(TaskInstanceRow.task_id).where(
        TaskInstanceRow.dag_id == dag_id, TaskInstanceRow.state == TaskState.RUNNING
    )
    if session.scalar(running.limit(1)) is not None:
        raise ApiProblem(409, f"task instances of DAG '{dag_id}' are still running")
    actions.delete_dag(session, dag_id, actor=api_actor())


import_error_routes = Routes("ImportError")


def import_error_model(row: ImportErrorRow) -> ImportErrorEntry:
    return ImportErrorEntry(
        import_error_id=row.id,
        timestamp=row.timestamp,
        filename=row.filename,
        message=row.message,
        stack_trace=row.stacktrace or row.message,
    )


IMPORT_ERROR_ORDER = {
    "import_error_id": ImportErrorRow.id,
    "id": ImportErrorRow.id,
    "timestamp": ImportErrorRow.timestamp,
    "filename": ImportErrorRow.filename,
}


@import_error_routes.operation(
    "/importErrors", "GET", query=Ordered, response=ImportErrorCollection
)
def get_import_errors(*, query: Ordered) -> ImportErrorCollection:
    """List the DAG files that failed to import, oldest first (or by ``order_by``)."""
    order = order_clauses(
        query.order_by, IMPORT_ERROR_ORDER, default="id", tiebreak=ImportErrorRow.id
    )
    statement = select(ImportErrorRow).order_by(*order)
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
