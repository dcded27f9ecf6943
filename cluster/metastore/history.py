"""``task_instance_history``: one row per try, whoever ends it.

The runner records a try's end here, and the scheduler's reaper records a zombie's:
both write the same row, so it lives in the metastore layer they both import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from cluster.metastore.models import TaskInstanceHistory
from cluster.metastore.transitions import TaskKey
from cluster.states import TaskState


def write_history(
    session: Session,
    key: TaskKey,
    try_number: int,
    state: TaskState,
    start: datetime | None,
    end: datetime,
    *,
    hostname: str | None,
    pid: int | None,
    operator: str | None,
) -> None:
    """One ``task_instance_history`` row per try (also for zombies and timeouts)."""
    session.execute(
        insert(TaskInstanceHistory).values(
            history_row(
                key, try_number, state, start, end, hostname=hostname, pid=pid, operator=operator
            )
        )
    )


def history_row(
    key: TaskKey,
    try_number: int,
    state: TaskState,
    start: datetime | None,
    end: datetime,
    *,
    hostname: str | None,
    pid: int | None,
    operator: str | None,
) -> dict[str, Any]:
    """The ``task_instance_history`` row of one try."""
    return {
        "dag_id": key.dag_id,
        "run_id": key.run_id,
        "task_id": key.task_id,
        "map_index": key.map_index,
        "try_number": try_number,
        "state": str(state),
        "start_date": start,
        "end_date": end,
        "duration": (end - start).total_seconds() if start else None,
        "hostname": hostname,
        "pid": pid,
        "operator": operator,
    }
