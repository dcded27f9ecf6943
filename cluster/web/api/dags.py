"""``/dags``: list, read and pause DAGs; ``/importErrors``: why DAG files failed to load."""

from __future__ import annotations

from sqlalchemy import select

from cluster import actions
from cluster.errors import NotFoundError
from cluster.metastore.models import Dag as DagRow
from cluster.metastore.models import ImportErrorRow
from cluster.web.api.admin_schemas import ImportErrorCollection, ImportErrorEntry
from cluster.web.api.lookups import api_actor, paginate, require_dag
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import (
    Dag,
    DagCollection,
    DagListQuery,
    DagPatch,
    DagTag,
    Page,
)
from cluster.web.context import db_session

routes = Routes("DAG")


def dag_model(row: DagRow) -> Dag:
    owners = [o.strip() for o in (row.owners or "").split(",") if o.strip()]
    return Dag(
        dag_id=row.dag_id,
        description=row.description,
        fileloc=row.fileloc,
        is_paused=row.is_paused,
        is_active=row.is_active,
        owners=owners,
        tags=[DagTag(name=str(t)) for t in row.tags or []],
        timetable_description=row.timetable_summary,
        max_active_runs=row.max_active_runs,
        max_active_tasks=row.max_active_tasks,
        next_dagrun=row.next_dagrun,
        next_dagrun_data_interval_start=row.next_dagrun_data_interval_start,
        next_dagrun_data_interval_end=row.next_dagrun_data_interval_end,
        next_dagrun_create_after=row.next_dagrun_create_after,
        last_parsed_time=row.last_parsed_at,
        fingerprint=row.fingerprint,
    )


@routes.operation("/dags", "GET", query=DagListQuery, response=DagCollection)
def get_dags(*, query: DagListQuery) -> DagCollection:
    """List DAGs, filtered by tags, paused state and id, sorted by id.

    Tags are stored as JSON text, so the tag filter runs here rather than in SQL
    (nothing dialect-specific outside the metastore package); the DAG table is small.
    """
    statement = select(DagRow).order_by(DagRow.dag_id)
    if query.only_active:
        statement = statement.where(DagRow.is_active.is_(True))
    if query.paused is not None:
        statement = statement.where(DagRow.is_paused.is_(query.paused))
    if query.dag_id_pattern:
        statement = statement.where(DagRow.dag_id.contains(query.dag_id_pattern, autoescape=True))
    session = db_session()
    if query.tags:
        wanted = set(query.tags)
        matching = [r for r in session.scalars(statement) if wanted & set(r.tags or [])]
        page = matching[query.offset : query.offset + query.limit]
        return DagCollection(dags=[dag_model(r) for r in page], total_entries=len(matching))
    rows, total = paginate(session, statement, query)
    return DagCollection(dags=[dag_model(r) for r in rows], total_entries=total)


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
