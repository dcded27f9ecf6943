"""Task instances of a run: list, read, mark, clear; and the XComs they pushed."""

from __future__ import annotations

from sqlalchemy import select

from cluster import actions
from cluster.errors import NotFoundError
from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.metastore.models import XCom
from cluster.policy.mapping import needs_expansion
from cluster.states import TaskState
from cluster.web.api.dag_runs import ANY_DAG, references
from cluster.web.api.lookups import (
    api_actor,
    paginate,
    require_dag,
    require_run,
    require_task_instance,
)
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import (
    ClearTaskInstances,
    LogQuery,
    MapIndexQuery,
    TaskInstance,
    TaskInstanceCollection,
    TaskInstanceListQuery,
    TaskInstanceLog,
    TaskInstancePatch,
    TaskInstanceReferenceCollection,
    XComCollection,
    XComEntry,
    XComEntryWithValue,
    XComListQuery,
)
from cluster.web.context import db_session, web_context
from cluster.web.logs import fetch_log
from cluster.web.tries import find_try, list_tries, try_ref

routes = Routes("TaskInstance")
xcom_routes = Routes("XCom")

_RUN = "/dags/<dag_id>/dagRuns/<dag_run_id>"
_TASK = _RUN + "/taskInstances/<task_id>"


def task_instance_model(row: TaskInstanceRow) -> TaskInstance:
    return TaskInstance(
        task_id=row.task_id,
        dag_id=row.dag_id,
        dag_run_id=row.run_id,
        map_index=row.map_index,
        state=TaskState(row.state),
        try_number=row.try_number,
        max_tries=row.max_tries,
        start_date=row.start_date,
        end_date=row.end_date,
        duration=row.duration,
        hostname=row.hostname,
        pid=row.pid,
        pool=row.pool,
        pool_slots=row.pool_slots,
        queue=row.queue,
        priority_weight=row.priority_weight,
        operator=row.operator,
        queued_when=row.queued_at,
        next_try_at=row.next_try_at,
        rendered_fields=row.rendered_fields if isinstance(row.rendered_fields, dict) else None,
        rendered_map_index=row.rendered_map_index,
    )


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
    if query.state:
        statement = statement.where(TaskInstanceRow.state.in_([str(s) for s in query.state]))
    rows, total = paginate(session, statement, query)
    items = [task_instance_model(r) for r in rows]
    return TaskInstanceCollection(task_instances=items, total_entries=total)


@routes.operation(_TASK, "GET", query=MapIndexQuery, response=TaskInstance)
def get_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, *, query: MapIndexQuery
) -> TaskInstance:
    """One task instance."""
    row = require_task_instance(db_session(), dag_id, dag_run_id, task_id, query.map_index)
    return task_instance_model(row)


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
    statement = (
        select(TaskInstanceRow)
        .where(
            TaskInstanceRow.dag_id == dag_id,
            TaskInstanceRow.run_id == dag_run_id,
            TaskInstanceRow.task_id == task_id,
            TaskInstanceRow.map_index >= 0,
        )
        .order_by(TaskInstanceRow.map_index)
    )
    if query.state:
        statement = statement.where(TaskInstanceRow.state.in_([str(s) for s in query.state]))
    rows, total = paginate(session, statement, query)
    items = [task_instance_model(r) for r in rows]
    return TaskInstanceCollection(task_instances=items, total_entries=total)


@routes.operation(_TASK + "/<int(max=2147483647):map_index>", "GET", response=TaskInstance)
def get_mapped_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int
) -> TaskInstance:
    """One instance of a mapped task."""
    row = require_task_instance(db_session(), dag_id, dag_run_id, task_id, map_index)
    return task_instance_model(row)


@routes.operation(_TASK, "PATCH", body=TaskInstancePatch, response=TaskInstance)
def patch_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, *, body: TaskInstancePatch
) -> TaskInstance:
    """Mark a task instance success, failed or skipped (a running one is stopped)."""
    session = db_session()
    require_task_instance(session, dag_id, dag_run_id, task_id)
    if not body.dry_run:
        actions.mark(
            session,
            dag_id,
            dag_run_id,
            {task_id},
            TaskState(body.new_state),
            actor=api_actor(),
            now=web_context().clock(),
        )
    return task_instance_model(require_task_instance(session, dag_id, dag_run_id, task_id))


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

    Relatives come along with ``include_upstream`` / ``include_downstream``; by default
    only failed instances are cleared and ``dry_run`` only lists them, as in Airflow.
    """
    session = db_session()
    require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    task_ids = actions.select_task_ids(
        dag,
        task_ids=body.task_ids,
        upstream=body.include_upstream,
        downstream=body.include_downstream,
    )
    if body.dag_run_id is not None:
        run_ids = [require_run(session, dag_id, body.dag_run_id).run_id]
    else:
        statement = select(DagRunRow.run_id).where(DagRunRow.dag_id == dag_id)
        if body.start_date is not None:
            statement = statement.where(DagRunRow.logical_date >= body.start_date)
        if body.end_date is not None:
            statement = statement.where(DagRunRow.logical_date <= body.end_date)
        run_ids = list(session.scalars(statement))
    keys = actions.clear(
        session,
        dag_id,
        run_ids,
        task_ids,
        actor=api_actor(),
        only_failed=body.only_failed,
        dry_run=body.dry_run,
    )
    return references(keys)


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
    attempt = find_try(list_tries(session, row), task_try_number)
    if attempt is None:
        raise NotFoundError(f"task instance '{task_id}' has no try {task_try_number}")
    chunk = fetch_log(web_context().settings, try_ref(row, attempt), offset=query.offset)
    return TaskInstanceLog(
        try_number=attempt.try_number,
        content=chunk.text,
        offset=chunk.offset,
        next_offset=chunk.next_offset,
        source=chunk.source,
        message=chunk.message,
        host=chunk.host,
    )


def xcom_model(row: XCom) -> XComEntry:
    return XComEntry(
        key=row.key,
        timestamp=row.timestamp,
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
    require_run(session, dag_id, dag_run_id)
    statement = (
        select(XCom)
        .where(XCom.dag_id == dag_id, XCom.run_id == dag_run_id, XCom.task_id == task_id)
        .order_by(XCom.map_index, XCom.key)
    )
    if query.map_index is not None:
        statement = statement.where(XCom.map_index == query.map_index)
    rows, total = paginate(session, statement, query)
    return XComCollection(xcom_entries=[xcom_model(r) for r in rows], total_entries=total)


@xcom_routes.operation(
    _TASK + "/xcomEntries/<xcom_key>", "GET", query=MapIndexQuery, response=XComEntryWithValue
)
def get_xcom_entry(
    dag_id: str, dag_run_id: str, task_id: str, xcom_key: str, *, query: MapIndexQuery
) -> XComEntry:
    """One XCom with its value (JSON text)."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    row = session.get(XCom, (dag_id, dag_run_id, task_id, query.map_index, xcom_key))
    if row is None:
        raise NotFoundError(
            f"XCom '{xcom_key}' of task '{task_id}' in run '{dag_run_id}' not found"
        )
    return XComEntryWithValue(**xcom_model(row).model_dump(), value=row.value)
