"""Task-instance rows as the API's :class:`~cluster.web.api.schemas.TaskInstance`.

Airflow's task instance carries its run's ``execution_date`` and the task's display
name, which live in other rows (the run, the serialized DAG): :func:`task_instance_models`
reads them once per page, for the runs and DAGs on it, not once per instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster import actions
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError
from cluster.metastore.models import DagRun as DagRunRow
from cluster.metastore.models import TaskInstance as TaskInstanceRow
from cluster.states import TaskState
from cluster.web.api.schemas import TaskInstance

RunKey = tuple[str, str]


def logical_dates(session: Session, keys: Iterable[RunKey]) -> dict[RunKey, datetime | None]:
    """``(dag_id, run_id) → logical date`` of the runs named, one query per DAG."""
    by_dag: dict[str, set[str]] = {}
    for dag_id, run_id in keys:
        by_dag.setdefault(dag_id, set()).add(run_id)
    dates: dict[RunKey, datetime | None] = {}
    for dag_id, run_ids in by_dag.items():
        rows = session.execute(
            select(DagRunRow.run_id, DagRunRow.logical_date).where(
                DagRunRow.dag_id == dag_id, DagRunRow.run_id.in_(sorted(run_ids))
            )
        )
        dates.update({(dag_id, run_id): date for run_id, date in rows})
    return dates


def serialized_dags(session: Session, dag_ids: Iterable[str]) -> dict[str, SerializedDag]:
    """The serialized form of each DAG named that has one."""
    found = {}
    for dag_id in set(dag_ids):
        try:
            found[dag_id] = actions.load_dag(session, dag_id)
        except NotFoundError:
            continue
    return found


def task_instance_models(session: Session, rows: Sequence[TaskInstanceRow]) -> list[TaskInstance]:
    """``rows`` as API models, with their runs' dates and their tasks' display names."""
    dates = logical_dates(session, {(r.dag_id, r.run_id) for r in rows})
    dags = serialized_dags(session, {r.dag_id for r in rows})
    return [
        task_instance_model(
            row,
            execution_date=dates.get((row.dag_id, row.run_id)),
            display_name=display_name(dags.get(row.dag_id), row.task_id),
        )
        for row in rows
    ]


def display_name(dag: SerializedDag | None, task_id: str) -> str:
    return dag.task_display_name(task_id) if dag is not None else task_id


def task_instance_model(
    row: TaskInstanceRow, *, execution_date: datetime | None, display_name: str
) -> TaskInstance:
    return TaskInstance(
        task_id=row.task_id,
        task_display_name=display_name,
        dag_id=row.dag_id,
        dag_run_id=row.run_id,
        execution_date=execution_date,
        map_index=row.map_index,
        state=TaskState(row.state),
        try_number=row.try_number,
        max_tries=row.max_tries,
        start_date=row.start_date,
        end_date=row.end_date,
        duration=row.duration,
        hostname=row.hostname or "",
        pid=row.pid,
        pool=row.pool,
        pool_slots=row.pool_slots,
        queue=row.queue,
        priority_weight=row.priority_weight,
        operator=row.operator,
        queued_when=row.queued_at,
        next_try_at=row.next_try_at,
        rendered_fields=row.rendered_fields if isinstance(row.rendered_fields, dict) else {},
        rendered_map_index=row.rendered_map_index,
        note=row.note,
    )
