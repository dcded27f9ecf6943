"""Airflow's DAG detail endpoints: ``/dags/{dag_id}/details``, ``/dags/{dag_id}/tasks``,
``/dagSources/{file_token}`` and ``/dagStats``.

Details and tasks come from the serialized DAG (the webserver never imports DAG files);
a DAG row without one yet is a 404 naming what to run.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from sqlalchemy import func, select

from cluster import actions
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.errors import NotFoundError
from cluster.metastore.models import DagCode, DagRun, ImportErrorRow
from cluster.states import DagRunState
from cluster.web.api.dags import dag_fields, only_fields
from cluster.web.api.detail_schemas import (
    ClassReference,
    DagDetail,
    DagSource,
    DagStateCount,
    DagStats,
    DagStatsCollection,
    DagStatsQuery,
    DagWarningCollection,
    DagWarningQuery,
    Task,
    TaskCollection,
    TaskOrderQuery,
    TimeDelta,
)
from cluster.web.api.lookups import require_dag
from cluster.web.api.operations import JsonBody, Routes
from cluster.web.api.schemas import FieldsQuery
from cluster.web.context import db_session
from cluster.web.problems import ApiProblem

routes = Routes("DAG")
stats_routes = Routes("DagStats")
warning_routes = Routes("DagWarning")

#: the fields ``/dags/{dag_id}/tasks`` sorts by
TASK_ORDER = ("task_id", "owner", "retries", "pool", "priority_weight", "trigger_rule")


def airflow_params(params: dict[str, Any]) -> dict[str, Any]:
    """A DAG's params as Airflow serializes them: ``{"__class", "value", "description",
    "schema"}`` per name, from Tradewind's JSON-schema form with its ``default``."""
    result = {}
    for name, spec in params.items():
        schema = dict(spec) if isinstance(spec, dict) else {"default": spec}
        result[name] = {
            "__class": "airflow.models.param.Param",
            "value": schema.pop("default", None),
            "description": schema.pop("description", None),
            "schema": schema,
        }
    return result


@routes.operation("/dags/<dag_id>/details", "GET", query=FieldsQuery, response=DagDetail)
def get_dag_details(dag_id: str, *, query: FieldsQuery) -> DagDetail | JsonBody:
    """A DAG with its schedule, dates, params and documentation (Airflow's DAGDetail)."""
    session = db_session()
    row = require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    errors = select(ImportErrorRow.id).where(ImportErrorRow.filename == row.fileloc).limit(1)
    fields = dag_fields(row) | {
        "dag_display_name": dag.display_name or dag_id,
        "has_import_errors": session.scalar(errors) is not None,
        "timezone": dag.timezone,
        "catchup": dag.catchup,
        "concurrency": dag.max_active_tasks,
        "start_date": dag.start_date,
        "end_date": dag.end_date,
        "dag_run_timeout": TimeDelta.of_seconds(dag.dagrun_timeout),
        "doc_md": dag.doc_md,
        "params": airflow_params(dag.params),
        "last_parsed": row.last_parsed_at,
    }
    detail = DagDetail.model_validate(fields)
    if query.fields:
        written = detail.model_dump(mode="json", by_alias=True)
        return JsonBody(only_fields(written, query.fields, frozenset(written)))
    return detail


def task_model(dag: SerializedDag, task: SerializedTask) -> Task:
    # the serialized form keeps the class name only: no module path to give
    module, _, name = task.operator.rpartition(".")
    return Task(
        class_ref=ClassReference(module_path=module, class_name=name),
        task_id=task.task_id,
        task_display_name=dag.task_display_name(task.task_id),
        owner=task.owner,
        start_date=dag.start_date,
        end_date=dag.end_date,
        trigger_rule=task.trigger_rule,
        depends_on_past=task.depends_on_past,
        is_mapped=task.mapping is not None,
        retries=task.retries,
        queue=task.queue,
        pool=task.pool,
        pool_slots=task.pool_slots,
        execution_timeout=TimeDelta.of_seconds(task.execution_timeout),
        retry_delay=TimeDelta.of_seconds(task.retry_delay),
        retry_exponential_backoff=task.retry_exponential_backoff,
        priority_weight=task.priority_weight,
        weight_rule=task.weight_rule,
        template_fields=list(task.template_fields),
        downstream_task_ids=sorted(task.downstream_task_ids),
        doc_md=task.doc_md,
    )


@routes.operation("/dags/<dag_id>/tasks", "GET", query=TaskOrderQuery, response=TaskCollection)
def get_tasks(dag_id: str, *, query: TaskOrderQuery) -> TaskCollection:
    """A DAG's tasks, by ``task_id`` (or ``order_by``, ``-`` in front for descending)."""
    session = db_session()
    require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    name = query.order_by or "task_id"
    field = name.removeprefix("-")
    if field not in TASK_ORDER:
        raise ApiProblem(400, f"Ordering with '{field}' is disallowed; use one of {TASK_ORDER}")
    tasks = [task_model(dag, t) for t in dag.tasks.values()]
    tasks.sort(key=lambda t: (getattr(t, field), t.task_id), reverse=name.startswith("-"))
    return TaskCollection(tasks=tasks, total_entries=len(tasks))


@routes.operation("/dags/<dag_id>/tasks/<task_id>", "GET", response=Task)
def get_task(dag_id: str, task_id: str) -> Task:
    """One task of a DAG."""
    session = db_session()
    require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    task = dag.tasks.get(task_id)
    if task is None:
        raise NotFoundError(f"task '{task_id}' not found in DAG '{dag_id}'")
    return task_model(dag, task)


@routes.operation("/dagSources/<file_token>", "GET", response=DagSource, plain_text=True)
def get_dag_source(file_token: str) -> DagSource | Response:
    """A DAG file's source, named by a DAG's ``file_token``: plain text unless the
    client prefers JSON (``Accept: application/json``), as in Airflow."""
    row = db_session().get(DagCode, file_token)
    if row is None:
        raise NotFoundError(f"no DAG file has the token '{file_token}'")
    offered = ["text/plain", "application/json"]
    best = request.accept_mimetypes.best_match(offered) if request.accept_mimetypes else offered[0]
    if best is None:
        raise ApiProblem(406, "the source is served as text/plain or application/json")
    if best == "application/json":
        return DagSource(content=row.source_code)
    return Response(row.source_code, mimetype="text/plain")


@stats_routes.operation("/dagStats", "GET", query=DagStatsQuery, response=DagStatsCollection)
def get_dag_stats(*, query: DagStatsQuery) -> DagStatsCollection:
    """How many runs of each DAG named are in each state (every state, zeros too)."""
    dag_ids = list(dict.fromkeys(d.strip() for d in query.dag_ids.split(",") if d.strip()))
    counts: dict[tuple[str, str], int] = {}
    if dag_ids:
        statement = (
            select(DagRun.dag_id, DagRun.state, func.count())
            .where(DagRun.dag_id.in_(dag_ids))
            .group_by(DagRun.dag_id, DagRun.state)
        )
        counts = {(d, s): n for d, s, n in db_session().execute(statement)}
    items = [
        DagStats(
            dag_id=dag_id,
            stats=[DagStateCount(state=s, count=counts.get((dag_id, s), 0)) for s in DagRunState],
        )
        for dag_id in dag_ids
    ]
    return DagStatsCollection(dags=items, total_entries=len(items))


@warning_routes.operation(
    "/dagWarnings", "GET", query=DagWarningQuery, response=DagWarningCollection
)
def get_dag_warnings(*, query: DagWarningQuery) -> DagWarningCollection:
    """DAG warnings: always none. Airflow warns of a DAG naming a pool that does not exist;
    Tradewind's DAG processor reports that as the file's import error instead."""
    return DagWarningCollection(dag_warnings=[], total_entries=0)
