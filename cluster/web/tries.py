"""The tries of one task instance, for the task instance page and the API's logs.

Past tries live in ``task_instance_history``, the current one in ``task_instance``;
both record the host that ran the try, which is where its log is
(:func:`cluster.web.logs.fetch_log`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.models import TaskInstance, TaskInstanceHistory
from cluster.web.logs import TryRef


@dataclass(frozen=True)
class Try:
    """One try as the page lists it, from the history table or the current row."""

    try_number: int
    state: str
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None


def list_tries(session: Session, row: TaskInstance) -> list[Try]:
    """Every try, oldest first: past ones from ``task_instance_history``, the current row last."""
    history = session.scalars(
        select(TaskInstanceHistory)
        .where(
            TaskInstanceHistory.dag_id == row.dag_id,
            TaskInstanceHistory.run_id == row.run_id,
            TaskInstanceHistory.task_id == row.task_id,
            TaskInstanceHistory.map_index == row.map_index,
        )
        .order_by(TaskInstanceHistory.try_number, TaskInstanceHistory.id)
    )
    tries = {
        h.try_number: Try(
            h.try_number, h.state, h.start_date, h.end_date, h.duration, h.hostname, h.pid
        )
        for h in history
    }
    if row.try_number > 0:
        tries[row.try_number] = Try(
            row.try_number,
            row.state,
            row.start_date,
            row.end_date,
            row.duration,
            row.hostname,
            row.pid,
        )
    return [tries[n] for n in sorted(tries)]


def find_try(tries: list[Try], try_number: int | None) -> Try | None:
    """Try ``try_number``, or the latest when it is ``None``; ``None`` if there is no such try."""
    if try_number is None:
        return tries[-1] if tries else None
    return next((t for t in tries if t.try_number == try_number), None)


def try_ref(row: TaskInstance, attempt: Try) -> TryRef:
    """What :func:`cluster.web.logs.fetch_log` needs to find ``attempt``'s log."""
    return TryRef(
        row.dag_id, row.run_id, row.task_id, attempt.try_number, row.map_index, attempt.hostname
    )


def is_live(row: TaskInstance, attempt: Try) -> bool:
    """Whether ``attempt`` is the current try and may still write to its log."""
    return attempt.try_number == row.try_number and row.state in ("running", "queued")
