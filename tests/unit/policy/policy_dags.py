"""Little serialized DAGs for the policy tests, built from edge lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.sdk.timetables import timetable_from_schedule, timetable_to_dict


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_dag(
    edges: Iterable[tuple[str, str]] = (),
    *,
    tasks: Iterable[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    dag_id: str = "example",
    schedule: str | timedelta | None = None,
    **dag_fields: Any,
) -> SerializedDag:
    """A DAG whose tasks are ``tasks`` plus every edge end, in first-seen order.

    :param options: per task id, extra :class:`SerializedTask` fields
        (``trigger_rule``, ``retries``, ...).
    """
    edge_list = list(edges)
    ids = list(dict.fromkeys([*tasks, *(t for edge in edge_list for t in edge)]))
    options = options or {}
    serialized = {
        task_id: SerializedTask(
            task_id=task_id,
            operator="EmptyOperator",
            upstream_task_ids=tuple(u for u, d in edge_list if d == task_id),
            downstream_task_ids=tuple(d for u, d in edge_list if u == task_id),
            **options.get(task_id, {}),
        )
        for task_id in ids
    }
    timetable = timetable_from_schedule(schedule, timezone=dag_fields.get("timezone", "UTC"))
    return SerializedDag(
        dag_id=dag_id,
        fileloc=f"/dags/{dag_id}.py",
        timetable=timetable_to_dict(timetable),
        schedule=timetable.summary,
        tasks=serialized,
        **dag_fields,
    )
