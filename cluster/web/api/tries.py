"""Airflow's ``/tries`` endpoints: every try of a task instance, as ``TaskInstanceHistory``.

Past tries come from ``task_instance_history``, the current one from the instance's row
(:func:`cluster.web.tries.list_tries`); the fields a try does not record (pool, queue,
operator) are the instance's.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from cluster.errors import NotFoundError
from cluster.states import TaskState
from cluster.web.api.instance_models import task_instance_models
from cluster.web.api.lookups import require_task_instance
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import Page
from cluster.web.context import db_session
from cluster.web.problems import ApiProblem
from cluster.web.tries import Try, list_tries

routes = Routes("TaskInstance")

_TASK = "/dags/<dag_id>/dagRuns/<dag_run_id>/taskInstances/<task_id>"
_MAPPED = _TASK + "/<int(max=2147483647):map_index>"
_NUMBER = "/tries/<int(max=2147483647):task_try_number>"


class TaskInstanceTry(BaseModel):
    task_id: str
    task_display_name: str
    dag_id: str
    dag_run_id: str
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    duration: float | None
    state: TaskState
    try_number: int
    map_index: int
    max_tries: int
    hostname: str
    unixname: str = ""
    pool: str
    pool_slots: int
    queue: str | None
    priority_weight: int | None
    operator: str | None
    queued_when: AwareDatetime | None
    pid: int | None
    executor: str | None = None
    executor_config: str = "{}"


class TaskInstanceTryCollection(BaseModel):
    task_instances_history: list[TaskInstanceTry]
    total_entries: int


class TriesQuery(Page):
    order_by: str | None = Field(None, max_length=100, description="try_number or -try_number.")


def tries_of(dag_id: str, run_id: str, task_id: str, map_index: int) -> list[TaskInstanceTry]:
    """Every try of the instance, oldest first."""
    session = db_session()
    row = require_task_instance(session, dag_id, run_id, task_id, map_index)
    current = task_instance_models(session, [row])[0].model_dump()
    return [try_model(current, attempt) for attempt in list_tries(session, row)]


def try_model(current: dict[str, object], attempt: Try) -> TaskInstanceTry:
    return TaskInstanceTry.model_validate(
        current
        | {
            "try_number": attempt.try_number,
            "state": TaskState(attempt.state),
            "start_date": attempt.start_date,
            "end_date": attempt.end_date,
            "duration": attempt.duration,
            "hostname": attempt.hostname or "",
            "pid": attempt.pid,
        }
    )


def page_of(tries: list[TaskInstanceTry], query: TriesQuery) -> TaskInstanceTryCollection:
    order = query.order_by or "try_number"
    if order.removeprefix("-") != "try_number":
        raise ApiProblem(400, f"Ordering with '{order}' is disallowed; use try_number")
    if order.startswith("-"):
        tries = tries[::-1]
    page = tries[query.offset : query.offset + query.limit]
    return TaskInstanceTryCollection(task_instances_history=page, total_entries=len(tries))


def one_try(tries: list[TaskInstanceTry], number: int) -> TaskInstanceTry:
    found = next((t for t in tries if t.try_number == number), None)
    if found is None:
        raise NotFoundError(f"task instance has no try {number}")
    return found


@routes.operation(_TASK + "/tries", "GET", query=TriesQuery, response=TaskInstanceTryCollection)
def get_task_instance_tries(
    dag_id: str, dag_run_id: str, task_id: str, *, query: TriesQuery
) -> TaskInstanceTryCollection:
    """Every try of a task instance, by try number."""
    return page_of(tries_of(dag_id, dag_run_id, task_id, -1), query)


@routes.operation(_TASK + _NUMBER, "GET", response=TaskInstanceTry)
def get_task_instance_try_details(
    dag_id: str, dag_run_id: str, task_id: str, task_try_number: int
) -> TaskInstanceTry:
    """One try of a task instance."""
    return one_try(tries_of(dag_id, dag_run_id, task_id, -1), task_try_number)


@routes.operation(_MAPPED + "/tries", "GET", query=TriesQuery, response=TaskInstanceTryCollection)
def get_mapped_task_instance_tries(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, *, query: TriesQuery
) -> TaskInstanceTryCollection:
    """Every try of one instance of a mapped task."""
    return page_of(tries_of(dag_id, dag_run_id, task_id, map_index), query)


@routes.operation(_MAPPED + _NUMBER, "GET", response=TaskInstanceTry)
def get_mapped_task_instance_try_details(
    dag_id: str, dag_run_id: str, task_id: str, map_index: int, task_try_number: int
) -> TaskInstanceTry:
    """One try of one instance of a mapped task."""
    return one_try(tries_of(dag_id, dag_run_id, task_id, map_index), task_try_number)
