"""Marking task instances by hand, as Airflow's API does: one instance (mapped or not),
or one task with its relatives across runs (``updateTaskInstancesState``).

Every form goes through :func:`cluster.actions.set_task_instances_state`, Airflow's
``DAG.set_task_instance_state``: instances already in the state are left alone, and
failed instances downstream are cleared so the run resumes. ``dry_run`` defaults to
true, as in Airflow: a request without it only says what would change.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster import actions
from cluster.errors import NotFoundError
from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.states import TaskState
from cluster.web.api.dag_runs import references
from cluster.web.api.instance_models import logical_dates
from cluster.web.api.lookups import (
    api_actor,
    require_dag,
    require_run,
    require_task_instance,
    runs_around,
)
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import (
    TaskInstance,
    TaskInstancePatch,
    TaskInstanceReferenceCollection,
    UpdateTaskInstancesState,
)
from cluster.web.api.task_instances import one_model
from cluster.web.context import db_session, web_context
from cluster.web.problems import ApiProblem

routes = Routes("TaskInstance")
dag_routes = Routes("DAG")

_TASK = "/dags/<dag_id>/dagRuns/<dag_run_id>/taskInstances/<task_id>"


def mark_one(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, body: TaskInstancePatch
) -> TaskInstance:
    """Mark one instance; the answer is the instance as it is afterwards (as it is now,
    with ``dry_run``)."""
    session = db_session()
    require_task_instance(session, dag_id, dag_run_id, task_id, map_index)
    actions.set_task_instances_state(
        session,
        actions.load_dag(session, dag_id),
        [dag_run_id],
        {task_id},
        TaskState(body.new_state),
        origin=task_id,
        actor=api_actor(),
        map_indexes={map_index},
        dry_run=body.dry_run,
        now=web_context().clock(),
    )
    return one_model(require_task_instance(session, dag_id, dag_run_id, task_id, map_index))


@routes.operation(_TASK, "PATCH", body=TaskInstancePatch, response=TaskInstance)
def patch_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, *, body: TaskInstancePatch
) -> TaskInstance:
    """Mark a task instance success, failed or skipped (a running one is stopped), and
    clear the failed ones downstream so the run resumes. ``dry_run`` defaults to true."""
    return mark_one(dag_id, dag_run_id, task_id, -1, body)


@routes.operation(
    _TASK + "/<int(max=2147483647):map_index>",
    "PATCH",
    body=TaskInstancePatch,
    response=TaskInstance,
)
def patch_mapped_task_instance(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, *, body: TaskInstancePatch
) -> TaskInstance:
    """Mark one instance of a mapped task, as ``PATCH`` on a task instance does."""
    return mark_one(dag_id, dag_run_id, task_id, map_index, body)


@dag_routes.operation(
    "/dags/<dag_id>/updateTaskInstancesState",
    "POST",
    body=UpdateTaskInstancesState,
    response=TaskInstanceReferenceCollection,
)
def post_set_task_instances_state(
    dag_id: str, *, body: UpdateTaskInstancesState
) -> TaskInstanceReferenceCollection:
    """Mark every instance of a task in a run success, failed or skipped, with its upstream
    and downstream tasks and the runs before or after it when asked.

    The run is named by exactly one of ``dag_run_id`` and ``execution_date`` (else 400).
    The answer lists the instances marked, or with ``dry_run`` (the default) those that
    would be; instances already in the state are not listed.
    """
    if (body.dag_run_id is None) == (body.execution_date is None):
        raise ApiProblem(400, "Exactly one of execution_date or dag_run_id must be provided")
    session = db_session()
    require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    task_ids = actions.relatives(
        dag, body.task_id, upstream=body.include_upstream, downstream=body.include_downstream
    )
    run = named_run(session, dag_id, body)
    run_ids = runs_around(session, dag_id, run, past=body.include_past, future=body.include_future)
    keys = actions.set_task_instances_state(
        session,
        dag,
        run_ids,
        task_ids,
        TaskState(body.new_state),
        origin=body.task_id,
        actor=api_actor(),
        dry_run=body.dry_run,
        now=web_context().clock(),
    )
    dates = logical_dates(session, {(dag_id, run_id) for run_id in run_ids})
    return references(keys, {run_id: date for (_, run_id), date in dates.items()})


def named_run(session: Session, dag_id: str, body: UpdateTaskInstancesState) -> DagRunRow:
    """The run ``dag_run_id`` or ``execution_date`` names, which must have an instance of
    the task (404 otherwise, as in Airflow)."""
    if body.dag_run_id is not None:
        run = require_run(session, dag_id, body.dag_run_id)
    else:
        found = session.scalar(
            select(DagRunRow).where(
                DagRunRow.dag_id == dag_id, DagRunRow.logical_date == body.execution_date
            )
        )
        if found is None:
            raise NotFoundError(f"DAG '{dag_id}' has no run on {body.execution_date}")
        run = found
    has_instance = session.scalar(
        select(TaskInstanceRow.map_index)
        .where(
            TaskInstanceRow.dag_id == dag_id,
            TaskInstanceRow.run_id == run.run_id,
            TaskInstanceRow.task_id == body.task_id,
        )
        .limit(1)
    )
    if has_instance is None:
        raise NotFoundError(f"task '{body.task_id}' has no instance in run '{run.run_id}'")
    return run
