"""``/dags/{dag_id}/dagRuns``: list, read, trigger, mark, clear and delete DAG runs.

Every change goes through :mod:`cluster.actions`, which writes the audit log; the
scheduler picks the change up from the metastore.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from cluster import actions
from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.transitions import TaskKey
from cluster.states import DagRunState
from cluster.web.api.dags import only_fields
from cluster.web.api.instance_models import task_instance_models
from cluster.web.api.lookups import (
    api_actor,
    audit_api,
    paginate,
    require_dag,
    require_run,
    require_task_instance,
)
from cluster.web.api.operations import JsonBody, Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import (
    ClearDagRun,
    ClearedRun,
    DagRun,
    DagRunCollection,
    DagRunListQuery,
    DagRunPatch,
    FieldsQuery,
    RunDates,
    SetNote,
    TaskInstanceCollection,
    TaskInstanceReference,
    TaskInstanceReferenceCollection,
    TriggerDagRun,
)
from cluster.web.context import db_session, web_context
from cluster.web.problems import ApiProblem

routes = Routes("DAGRun")

#: ``/dags/~/dagRuns`` lists the runs of every DAG, as in Airflow
ANY_DAG = "~"

#: what ``order_by`` may name in run lists: Airflow's field names (``execution_date`` is
#: Airflow 2's name of the logical date)
RUN_ORDER: dict[str, Any] = {
    "id": DagRunRow.id,
    "dag_id": DagRunRow.dag_id,
    "dag_run_id": DagRunRow.run_id,
    "run_id": DagRunRow.run_id,
    "logical_date": DagRunRow.logical_date,
    "execution_date": DagRunRow.logical_date,
    "data_interval_start": DagRunRow.data_interval_start,
    "data_interval_end": DagRunRow.data_interval_end,
    "queued_at": DagRunRow.queued_at,
    "start_date": DagRunRow.start_date,
    "end_date": DagRunRow.end_date,
    "last_scheduling_decision": DagRunRow.last_scheduling_decision,
    "state": DagRunRow.state,
    "run_type": DagRunRow.run_type,
}


def filter_run_dates(statement: Select[Any], dates: RunDates) -> Select[Any]:
    """``statement`` narrowed by Airflow's run date ranges (execution = logical date)."""
    bounds = (
        (DagRunRow.logical_date, dates.execution_date_gte, dates.execution_date_lte),
        (DagRunRow.start_date, dates.start_date_gte, dates.start_date_lte),
        (DagRunRow.end_date, dates.end_date_gte, dates.end_date_lte),
        (DagRunRow.updated_at, dates.updated_at_gte, dates.updated_at_lte),
    )
    for column, low, high in bounds:
        if low is not None:
            statement = statement.where(column >= low)
        if high is not None:
            statement = statement.where(column <= high)
    return statement


def dag_run_model(row: DagRunRow) -> DagRun:
    return DagRun(
        dag_run_id=row.run_id,
        dag_id=row.dag_id,
        logical_date=row.logical_date,
        execution_date=row.logical_date,
        data_interval_start=row.data_interval_start,
        data_interval_end=row.data_interval_end,
        queued_at=row.queued_at,
        start_date=row.start_date,
        end_date=row.end_date,
        last_scheduling_decision=row.last_scheduling_decision,
        state=DagRunState(row.state),
        run_type=row.run_type,
        external_trigger=row.run_type == "manual",
        conf=row.conf if isinstance(row.conf, dict) else {},
        clear_number=row.clear_number,
        note=row.note,
    )


def trigger_logical_date(body: TriggerDagRun) -> Any:
    """``logical_date`` or Airflow 2's ``execution_date``; both, differing, is a 400."""
    if body.logical_date and body.execution_date and body.logical_date != body.execution_date:
        raise ApiProblem(400, "logical_date and execution_date differ; give one of them")
    return body.logical_date or body.execution_date


def references(keys: list[TaskKey], dates: dict[str, Any]) -> TaskInstanceReferenceCollection:
    """``keys`` as Airflow's references; ``dates`` maps run ids to their logical dates."""
    items = [
        TaskInstanceReference(
            task_id=k.task_id,
            dag_id=k.dag_id,
            dag_run_id=k.run_id,
            map_index=k.map_index,
            execution_date=dates.get(k.run_id),
        )
        for k in keys
    ]
    return TaskInstanceReferenceCollection(task_instances=items, total_entries=len(items))


@routes.operation("/dags/<dag_id>/dagRuns", "GET", query=DagRunListQuery, response=DagRunCollection)
def get_dag_runs(dag_id: str, *, query: DagRunListQuery) -> DagRunCollection | JsonBody:
    """List a DAG's runs (``~`` for every DAG), filtered by state and dates, sorted by
    ``order_by`` (default ``id``; Airflow's names, e.g. ``-execution_date``)."""
    session = db_session()
    order = order_clauses(query.order_by, RUN_ORDER, default="id", tiebreak=DagRunRow.id)
    statement = filter_run_dates(select(DagRunRow).order_by(*order), query)
    if dag_id != ANY_DAG:
        require_dag(session, dag_id)
        statement = statement.where(DagRunRow.dag_id == dag_id)
    if query.state:
        statement = statement.where(DagRunRow.state.in_([str(s) for s in query.state]))
    if query.logical_date_gte is not None:
        statement = statement.where(DagRunRow.logical_date >= query.logical_date_gte)
    if query.logical_date_lte is not None:
        statement = statement.where(DagRunRow.logical_date <= query.logical_date_lte)
    rows, total = paginate(session, statement, query)
    if query.fields:
        items = [run_fields(dag_run_model(r), query.fields) for r in rows]
        return JsonBody({"dag_runs": items, "total_entries": total})
    return DagRunCollection(dag_runs=[dag_run_model(r) for r in rows], total_entries=total)


#: what ``fields`` may name in a run (Airflow's field names)
RUN_FIELDS = frozenset(DagRun.model_fields)


def run_fields(run: DagRun, fields: list[str]) -> dict[str, Any]:
    """``run`` cut to Airflow's ``fields`` (400 for a field a run does not have)."""
    return only_fields(run.model_dump(by_alias=True), fields, RUN_FIELDS)


@routes.operation("/dags/<dag_id>/dagRuns/<dag_run_id>", "GET", query=FieldsQuery, response=DagRun)
def get_dag_run(dag_id: str, dag_run_id: str, *, query: FieldsQuery) -> DagRun | JsonBody:
    """One DAG run (only the ``fields`` asked for, when given)."""
    run = dag_run_model(require_run(db_session(), dag_id, dag_run_id))
    return JsonBody(run_fields(run, query.fields)) if query.fields else run


@routes.operation("/dags/<dag_id>/dagRuns", "POST", body=TriggerDagRun, response=DagRun)
def post_dag_run(dag_id: str, *, body: TriggerDagRun) -> DagRun:
    """Trigger a run: it is created ``queued`` and the scheduler starts it.

    ``conf`` is checked against the DAG's params (400 when it breaks them); a taken
    ``dag_run_id`` is a 409. ``data_interval_start`` and ``data_interval_end`` given
    together set the run's data interval (else the timetable infers it), as in Airflow.
    """
    session = db_session()
    require_dag(session, dag_id)
    start, end = body.data_interval_start, body.data_interval_end
    run = actions.trigger(
        session,
        dag_id,
        actor=api_actor(),
        conf=body.conf,
        run_id=body.dag_run_id,
        logical_date=trigger_logical_date(body),
        now=web_context().clock(),
        data_interval=(start, end) if start is not None and end is not None else None,
    )
    if body.note:
        run.note = body.note
    session.flush()
    return dag_run_model(run)


@routes.operation("/dags/<dag_id>/dagRuns/<dag_run_id>", "PATCH", body=DagRunPatch, response=DagRun)
def patch_dag_run(dag_id: str, dag_run_id: str, *, body: DagRunPatch) -> DagRun:
    """Mark a run success or failed, with all its unfinished task instances."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    actions.mark_run(session, dag_id, dag_run_id, DagRunState(body.state), actor=api_actor())
    return dag_run_model(require_run(session, dag_id, dag_run_id))


@routes.operation("/dags/<dag_id>/dagRuns/<dag_run_id>", "DELETE", status=204)
def delete_dag_run(dag_id: str, dag_run_id: str) -> None:
    """Delete a run with its task instances, their history and XComs."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    actions.delete_run(session, dag_id, dag_run_id, actor=api_actor())


@routes.operation(
    "/dags/<dag_id>/dagRuns/<dag_run_id>/clear", "POST", body=ClearDagRun, response=ClearedRun
)
def clear_dag_run(dag_id: str, dag_run_id: str, *, body: ClearDagRun) -> ClearedRun:
    """Clear a run's task instances so they run again.

    As in Airflow, a ``dry_run`` (the default) answers with the task instances it would
    clear, a real clear with the run (now queued).
    """
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    dag = actions.load_dag(session, dag_id)
    keys = actions.clear(
        session,
        dag_id,
        [dag_run_id],
        set(dag.tasks),
        actor=api_actor(),
        only_failed=body.only_failed,
        dry_run=body.dry_run,
    )
    if not body.dry_run:
        return ClearedRun(dag_run_model(require_run(session, dag_id, dag_run_id)))
    rows = [
        require_task_instance(session, k.dag_id, k.run_id, k.task_id, k.map_index) for k in keys
    ]
    items = task_instance_models(session, rows)
    return ClearedRun(TaskInstanceCollection(task_instances=items, total_entries=len(items)))


@routes.operation(
    "/dags/<dag_id>/dagRuns/<dag_run_id>/setNote", "PATCH", body=SetNote, response=DagRun
)
def set_dag_run_note(dag_id: str, dag_run_id: str, *, body: SetNote) -> DagRun:
    """Write (or with ``null`` / ``""`` remove) a run's note; the audit log records who."""
    session = db_session()
    run = require_run(session, dag_id, dag_run_id)
    run.note = body.note or None
    audit_api("runs.note", session=session, dag_id=dag_id, run_id=dag_run_id)
    session.flush()
    return dag_run_model(run)
