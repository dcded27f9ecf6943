"""Task instances of a run: list, read, mark, clear; and the XComs they pushed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cluster import actions
from cluster.errors import NotFoundError
from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.metastore.models import XCom
from cluster.policy.mapping import needs_expansion
from cluster.web.api.dag_runs import ANY_DAG, references
from cluster.web.api.instance_models import logical_dates, task_instance_models
from cluster.web.api.lookups import (
    api_actor,
    audit_api,
    paginate,
    require_dag,
    require_run,
    require_task_instance,
    runs_around,
)
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import (
    ClearTaskInstances,
    LogQuery,
    MapIndexQuery,
    SetNote,
    TaskInstance,
    TaskInstanceCollection,
    TaskInstanceFilters,
    TaskInstanceListQuery,
    TaskInstanceLog,
    TaskInstanceReferenceCollection,
    XComCollection,
    XComEntry,
    XComEntryQuery,
    XComEntryWithValue,
    XComListQuery,
)
from cluster.web.context import db_session, web_context
from cluster.web.logs import fetch_log
from cluster.web.problems import ApiProblem
from cluster.web.tries import find_try, list_tries, try_ref

routes = Routes("TaskInstance")
xcom_routes = Routes("XCom")

_RUN = "/dags/<dag_id>/dagRuns/<dag_run_id>"
_TASK = _RUN + "/taskInstances/<task_id>"


#: what ``order_by`` may name in task-instance lists (Airflow's field names)
TI_ORDER: dict[str, Any] = {
    "map_index": TaskInstanceRow.map_index,
    "task_id": TaskInstanceRow.task_id,
    "state": TaskInstanceRow.state,
    "start_date": TaskInstanceRow.start_date,
    "end_date": TaskInstanceRow.end_date,
    "duration": TaskInstanceRow.duration,
    "try_number": TaskInstanceRow.try_number,
    "pool": TaskInstanceRow.pool,
    "queue": TaskInstanceRow.queue,
    "priority_weight": TaskInstanceRow.priority_weight,
    "hostname": TaskInstanceRow.hostname,
    "queued_when": TaskInstanceRow.queued_at,
    "rendered_map_index": TaskInstanceRow.rendered_map_index,
}


def filter_instances(statement: Select[Any], query: TaskInstanceFilters) -> Select[Any]:
    """``statement`` narrowed by Airflow's task-instance filters.

    Run dates filter through the instance's run; ``executor`` matches nothing, because
    Tradewind records no executor per instance (Airflow's column is null by default too).
    """
    if query.state:
        statement = statement.where(TaskInstanceRow.state.in_([str(s) for s in query.state]))
    if query.pool:
        statement = statement.where(TaskInstanceRow.pool.in_(query.pool))
    if query.queue:
        statement = statement.where(TaskInstanceRow.queue.in_(query.queue))
    if query.executor:
        statement = statement.where(TaskInstanceRow.task_id.is_(None))
    if query.duration_gte is not None:
        statement = statement.where(TaskInstanceRow.duration >= query.duration_gte)
    if query.duration_lte is not None:
        statement = statement.where(TaskInstanceRow.duration <= query.duration_lte)
    if query.start_date_gte is not None:
        statement = statement.where(TaskInstanceRow.start_date >= query.start_date_gte)
    if query.start_date_lte is not None:
        statement = statement.where(TaskInstanceRow.start_date <= query.start_date_lte)
    if query.end_date_gte is not None:
        statement = statement.where(TaskInstanceRow.end_date >= query.end_date_gte)
    if query.end_date_lte is not None:
        statement = statement.where(TaskInstanceRow.end_date <= query.end_date_lte)
    if query.updated_at_gte is not None:
        statement = statement.where(TaskInstanceRow.updated_at >= query.updated_at_gte)
    if query.updated_at_lte is not None:
        statement = statement.where(TaskInstanceRow.updated_at <= query.updated_at_lte)
    low, high = query.execution_date_gte, query.execution_date_lte
    if low is not None or high is not None:
        runs = select(DagRunRow.run_id).where(DagRunRow.dag_id == TaskInstanceRow.dag_id)
        if low is not None:
            runs = runs.where(DagRunRow.logical_date >= low)
        if high is not None:
            runs = runs.where(DagRunRow.logical_date <= high)
        statement = statement.where(TaskInstanceRow.run_id.in_(runs.scalar_subquery()))
    return statement


def one_model(row: TaskInstanceRow) -> TaskInstance:
    return task_instance_models(db_session(), [row])[0]


@routes.operation(
    _RUN + "/taskInstances", "GET", query=TaskInstanceListQuery, response=TaskInstanceCollection
)
def get_task_instances(
    dag_id: str, dag_run_id: str, *, query: TaskInstanceListQuery
) -> TaskInstanceCollection:
    """List the task instances of a run (``~`` for the DAG or run lists across them)."""
    session = db_session()
    statement = select(TaskInstanceRow).order_by(
        TaskInstanceRow.dag_id,
        TaskInstanceRow.run_id,
        TaskInstanceRow.task_id,
        TaskInstanceRow.map_index,
    )
    if dag_id != ANY_DAG:
        require_dag(session, dag_id)
        statement = statement.where(TaskInstanceRow.dag_id == dag_id)
    if dag_run_id != ANY_DAG:
        if dag_id != ANY_DAG:
            require_run(session, dag_id, dag_run_id)
        statement = statement.where(TaskInstanceRow.run_id == dag_run_id)
    if query.order_by:
        order = order_clauses(
            query.order_by, TI_ORDER, default="task_id", tiebreak=TaskInstanceRow.map_index
        )
        statement = statement.order_by(None).order_by(*order, TaskInstanceRow.run_id)
    rows, total = paginate(session, filter_instances(statement, query), query)
    items = task_instance_models(session, rows)
    return TaskInstanceCollection(task_instances=items, total_entries=total)


@routes.operation(_TASK, "GET", query=MapIndexQuery, response=TaskInstance)
def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, *, query: MapIndexQuery
) -> TaskInstance:
    """One task instance."""
    row = require_task_instance(db_session(), dag_id, dag_run_id, task_id, query.map_index)
    return one_model(row)


@routes.operation(
    _TASK + "/listMapped", "GET", query=TaskInstanceListQuery, response=TaskInstanceCollection
)
def get_mapped_task_instances(
    dag_id: str, dag_run_id: str, task_id: str, *, query: TaskInstanceListQuery
) -> TaskInstanceCollection:
    """The instances of a mapped task, in map-index order (404 for a task not mapped)."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    dag = actions.load_dag(session, dag_id)
    if task_id not in dag.tasks:
        raise NotFoundError(f"Task id {task_id} not found")
    if not needs_expansion(dag, task_id):
        raise NotFoundError(f"Task id {task_id} is not mapped")
    statement = select(TaskInstanceRow).where(
        TaskInstanceRow.dag_id == dag_id,
        TaskInstanceRow.run_id == dag_run_id,
        TaskInstanceRow.task_id == task_id,
        TaskInstanceRow.map_index >= 0,
    )
    order = order_clauses(
        query.order_by, TI_ORDER, default="map_index", tiebreak=TaskInstanceRow.map_index
    )
    rows, total = paginate(session, filter_instances(statement.order_by(*order), query), query)
    items = task_instance_models(session, rows)
    return TaskInstanceCollection(task_instances=items, total_entries=total)


@routes.operation(_TASK + "/<int(max=2147483647):map_index>", "GET", response=TaskInstance)
def get_mapped_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int
) -> TaskInstance:
    """One instance of a mapped task."""
    row = require_task_instance(db_session(), dag_id, dag_run_id, task_id, map_index)
    return one_model(row)


def write_note(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, note: str | None
) -> TaskInstance:
    session = db_session()
    row = require_task_instance(session, dag_id, dag_run_id, task_id, map_index)
    row.note = note or None
    audit_api(
        "task_instances.note",
        session=session,
        dag_id=dag_id,
        run_id=dag_run_id,
        task_id=task_id,
        map_index=map_index,
    )
    session.flush()
    return one_model(row)


@routes.operation(_TASK + "/setNote", "PATCH", body=SetNote, response=TaskInstance)
def set_task_instance_note(
    dag_id: str, dag_run_id: str, task_id: str, *, body: SetNote
) -> TaskInstance:
    """Write (or with ``null`` / ``""`` remove) a task instance's note."""
    return write_note(dag_id, dag_run_id, task_id, -1, body.note)


@routes.operation(
    _TASK + "/<int(max=2147483647):map_index>/setNote", "PATCH", body=SetNote, response=TaskInstance
)
def set_mapped_task_instance_note(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, *, body: SetNote
) -> TaskInstance:
    """Write (or remove) the note of one instance of a mapped task."""
    return write_note(dag_id, dag_run_id, task_id, map_index, body.note)


@routes.operation(
    "/dags/<dag_id>/clearTaskInstances",
    "POST",
    body=ClearTaskInstances,
    response=TaskInstanceReferenceCollection,
)
def post_clear_task_instances(
    dag_id: str, *, body: ClearTaskInstances
) -> TaskInstanceReferenceCollection:
    """Clear task instances of one run or of the runs in a logical-date range.

    Relatives come along with ``include_upstream`` / ``include_downstream``, earlier and
    later runs with ``include_past`` / ``include_future``; by default only failed
    instances are cleared and ``dry_run`` only lists them, as in Airflow.
    ``only_running`` and ``reset_dag_runs: false`` are refused (400): Tradewind clears
    any instance the selection names and always puts its run back in the queue.
    """
    if body.only_running:
        raise ApiProblem(400, "only_running is not supported: select the tasks with task_ids")
    if not body.reset_dag_runs:
        raise ApiProblem(400, "reset_dag_runs false is not supported: cleared runs are queued")
    session = db_session()
    require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    task_ids = actions.select_task_ids(
        dag,
        task_ids=body.task_ids,
        upstream=body.include_upstream,
        downstream=body.include_downstream,
    )
    run_ids = runs_to_clear(session, dag_id, body)
    keys = actions.clear(
        session,
        dag_id,
        run_ids,
        task_ids,
        actor=api_actor(),
        only_failed=body.only_failed,
        dry_run=body.dry_run,
    )
    dates = logical_dates(session, {(dag_id, run_id) for run_id in run_ids})
    return references(keys, {run_id: date for (_, run_id), date in dates.items()})


def runs_to_clear(session: Session, dag_id: str, body: ClearTaskInstances) -> list[str]:
    """The run ids a clear names: one run (with those before or after it), or a range."""
    run = None if body.dag_run_id is None else require_run(session, dag_id, body.dag_run_id)
    return runs_around(
        session,
        dag_id,
        run,
        low=body.start_date,
        high=body.end_date,
        past=body.include_past,
        future=body.include_future,
    )


@routes.operation(
    _TASK + "/logs/<int(max=2147483647):task_try_number>",
    "GET",
    query=LogQuery,
    response=TaskInstanceLog,
)
def get_log(
    dag_id: str, dag_run_id: str, task_id: str, task_try_number: int, *, query: LogQuery
) -> TaskInstanceLog:
    """One try's log from byte ``offset``: from this machine or the worker's log server.

    A worker that cannot be reached is not an error: ``source`` is ``unreachable`` and
    ``message`` names the host and the reason.
    """
    session = db_session()
    row = require_task_instance(session, dag_id, dag_run_id, task_id, query.map_index)
    offset = query.offset
    if query.token:
        if not query.token.isdigit():
            raise ApiProblem(400, "token must be a continuation_token of an earlier answer")
        offset = int(query.token)
    attempt = find_try(list_tries(session, row), task_try_number)
    if attempt is None:
        raise NotFoundError(f"task instance '{task_id}' has no try {task_try_number}")
    chunk = fetch_log(web_context().settings, try_ref(row, attempt), offset=offset)
    return TaskInstanceLog(
        continuation_token=str(chunk.next_offset),
        try_number=attempt.try_number,
        content=chunk.text,
        offset=chunk.offset,
        next_offset=chunk.next_offset,
        source=chunk.source,
        message=chunk.message,
        host=chunk.host,
    )


def xcom_model(row: XCom, execution_date: datetime | None) -> XComEntry:
    return XComEntry(
        key=row.key,
        timestamp=row.timestamp,
        execution_date=execution_date,
        dag_id=row.dag_id,
        dag_run_id=row.run_id,
        task_id=row.task_id,
        map_index=row.map_index,
    )


@xcom_routes.operation(_TASK + "/xcomEntries", "GET", query=XComListQuery, response=XComCollection)
def get_xcom_entries(
    dag_id: str, dag_run_id: str, task_id: str, *, query: XComListQuery
) -> XComCollection:
    """List the XComs a task instance pushed (keys and times, not values)."""
    session = db_session()
    run = require_run(session, dag_id, dag_run_id)
    statement = (
        select(XCom)
        .where(XCom.dag_id == dag_id, XCom.run_id == dag_run_id, XCom.task_id == task_id)
        .order_by(XCom.map_index, XCom.key)
    )
    if query.map_index is not None:
        statement = statement.where(XCom.map_index == query.map_index)
    if query.xcom_key is not None:
        statement = statement.where(XCom.key == query.xcom_key)
    rows, total = paginate(session, statement, query)
    items = [xcom_model(r, run.logical_date) for r in rows]
    return XComCollection(xcom_entries=items, total_entries=total)


@xcom_routes.operation(
    _TASK + "/xcomEntries/<xcom_key>", "GET", query=XComEntryQuery, response=XComEntryWithValue
)
def get_xcom_entry(
    dag_id: str, dag_run_id: str, task_id: str, xcom_key: str, *, query: XComEntryQuery
) -> XComEntry:
    """One XCom with its value as stored: JSON text (Airflow's ``stringify`` form).

    XComs are JSON, never pickles, so ``deserialize`` changes nothing.
    """
    session = db_session()
    run = require_run(session, dag_id, dag_run_id)
    row = session.get(XCom, (dag_id, dag_run_id, task_id, query.map_index, xcom_key))
    if row is None:
        raise NotFoundError(
            f"XCom '{xcom_key}' of task '{task_id}' in run '{dag_run_id}' not found"
        )
    return XComEntryWithValue(**xcom_model(row, run.logical_date).model_dump(), value=row.value)
