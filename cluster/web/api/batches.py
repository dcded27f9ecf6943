"""Airflow's batch lists: ``POST /dags/~/dagRuns/list`` and
``POST /dags/~/dagRuns/~/taskInstances/list``, whose filters come in the body so a
client can name many DAGs, runs and tasks at once."""

from __future__ import annotations

from sqlalchemy import select

from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.web.api.dag_runs import RUN_ORDER, dag_run_model, filter_run_dates
from cluster.web.api.detail_schemas import ListDagRunsForm, ListTaskInstanceForm
from cluster.web.api.instance_models import task_instance_models
from cluster.web.api.lookups import paginate
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import (
    DagRunCollection,
    Page,
    RunDates,
    TaskInstanceCollection,
)
from cluster.web.api.task_instances import filter_instances
from cluster.web.context import db_session

run_routes = Routes("DAGRun")
instance_routes = Routes("TaskInstance")


@run_routes.operation(
    "/dags/~/dagRuns/list", "POST", body=ListDagRunsForm, response=DagRunCollection
)
def get_dag_runs_batch(*, body: ListDagRunsForm) -> DagRunCollection:
    """Runs of many DAGs at once, filtered by the body (``order_by`` as in the GET list)."""
    order = order_clauses(body.order_by, RUN_ORDER, default="id", tiebreak=DagRunRow.id)
    dates = RunDates.model_validate(body.model_dump(include=set(RunDates.model_fields)))
    statement = filter_run_dates(select(DagRunRow).order_by(*order), dates)
    if body.dag_ids:
        statement = statement.where(DagRunRow.dag_id.in_(body.dag_ids))
    if body.states:
        statement = statement.where(DagRunRow.state.in_([str(s) for s in body.states]))
    page = Page(limit=body.page_limit, offset=body.page_offset)
    rows, total = paginate(db_session(), statement, page)
    return DagRunCollection(dag_runs=[dag_run_model(r) for r in rows], total_entries=total)


@instance_routes.operation(
    "/dags/~/dagRuns/~/taskInstances/list",
    "POST",
    body=ListTaskInstanceForm,
    response=TaskInstanceCollection,
)
def get_task_instances_batch(*, body: ListTaskInstanceForm) -> TaskInstanceCollection:
    """Task instances of many DAGs, runs and tasks at once, filtered by the body."""
    statement = select(TaskInstanceRow).order_by(
        TaskInstanceRow.dag_id,
        TaskInstanceRow.run_id,
        TaskInstanceRow.task_id,
        TaskInstanceRow.map_index,
    )
    if body.dag_ids:
        statement = statement.where(TaskInstanceRow.dag_id.in_(body.dag_ids))
    if body.dag_run_ids:
        statement = statement.where(TaskInstanceRow.run_id.in_(body.dag_run_ids))
    if body.task_ids:
        statement = statement.where(TaskInstanceRow.task_id.in_(body.task_ids))
    session = db_session()
    page = Page(limit=body.page_limit, offset=body.page_offset)
    rows, total = paginate(session, filter_instances(statement, body), page)
    return TaskInstanceCollection(
        task_instances=task_instance_models(session, rows), total_entries=total
    )
