"""The rows the DAG charts draw, read from the metastore along its indexes.

Each reader's cost follows what the chart shows, never the DAG's whole history: the
Gantt chart reads one run's instances (primary key prefix) and their earlier tries
(``idx_tih_dag_run_task``); the across-runs charts read the last N runs
(``idx_dag_run_dag_id_logical_date``) and their instances by primary key; the
calendar reads one year of runs along the same date index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.models import DagRun, TaskInstance, TaskInstanceHistory
from cluster.web.charts.across_runs import RunColumn, Series
from cluster.web.charts.gantt import Attempt

#: most runs an across-runs chart may show
MAX_RUNS = 365


def load_attempts(session: Session, dag_id: str, run_id: str) -> list[Attempt]:
    """Every try of the run: the current one of each instance and the recorded earlier ones."""
    current = [
        Attempt(*row)
        for row in session.execute(
            select(
                TaskInstance.task_id,
                TaskInstance.map_index,
                TaskInstance.try_number,
                TaskInstance.state,
                TaskInstance.queued_at,
                TaskInstance.start_date,
                TaskInstance.end_date,
            ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        )
    ]
    seen = {(a.task_id, a.map_index, a.try_number) for a in current}
    earlier = [
        Attempt(task_id, map_index, try_number, state, None, start, end)
        for task_id, map_index, try_number, state, start, end in session.execute(
            select(
                TaskInstanceHistory.task_id,
                TaskInstanceHistory.map_index,
                TaskInstanceHistory.try_number,
                TaskInstanceHistory.state,
                TaskInstanceHistory.start_date,
                TaskInstanceHistory.end_date,
            ).where(TaskInstanceHistory.dag_id == dag_id, TaskInstanceHistory.run_id == run_id)
        )
        if (task_id, map_index, try_number) not in seen
    ]
    return current + earlier


def recent_run_ids(session: Session, dag_id: str, limit: int = 50) -> list[str]:
    """The DAG's newest runs' ids, newest first (the Gantt chart's run menu)."""
    return list(
        session.scalars(
            select(DagRun.run_id)
            .where(DagRun.dag_id == dag_id)
            .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True, slots=True)
class AcrossRuns:
    """The last runs, oldest first, and per task its duration, tries and landing time."""

    runs: list[RunColumn]
    durations: list[Series]
    tries: list[Series]
    landing: list[Series]


def load_across_runs(
    session: Session, dag_id: str, count: int, order: Sequence[str] = ()
) -> AcrossRuns:
    """Per task, per run of the last ``count``: the longest instance's duration (s), the
    most tries, and how long after the run's data interval ended its last instance
    finished (Airflow's landing time, in seconds). Mapped instances count as one task."""
    runs = list(
        session.execute(
            select(DagRun.run_id, DagRun.logical_date, DagRun.data_interval_end)
            .where(DagRun.dag_id == dag_id)
            .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
            .limit(max(1, min(count, MAX_RUNS)))
        )
    )[::-1]
    column = {run_id: i for i, (run_id, _, _) in enumerate(runs)}
    interval_end = {run_id: end for run_id, _, end in runs}
    duration: dict[str, dict[int, float]] = defaultdict(dict)
    tries: dict[str, dict[int, float]] = defaultdict(dict)
    landing: dict[str, dict[int, float]] = defaultdict(dict)
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.run_id,
            TaskInstance.try_number,
            TaskInstance.start_date,
            TaskInstance.end_date,
        ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(list(column)))
    )
    for task_id, run_id, try_number, start, end in rows:
        at = column[run_id]
        if try_number:
            tries[task_id][at] = max(tries[task_id].get(at, 0), float(try_number))
        if start is not None and end is not None:
            took = (end - start).total_seconds()
            duration[task_id][at] = max(duration[task_id].get(at, 0.0), took)
        finish_line = interval_end[run_id]
        if end is not None and finish_line is not None:
            late = (end - finish_line).total_seconds()
            landing[task_id][at] = max(landing[task_id].get(at, late), late)
    columns = [RunColumn(run_id, _run_label(when, run_id)) for run_id, when, _ in runs]
    return AcrossRuns(
        columns,
        _series(duration, len(runs), order),
        _series(tries, len(runs), order),
        _series(landing, len(runs), order),
    )


def _run_label(when: datetime | None, run_id: str) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when is not None else run_id


def _series(values: dict[str, dict[int, float]], width: int, order: Sequence[str]) -> list[Series]:
    position = {task_id: i for i, task_id in enumerate(order)}
    names = sorted(values, key=lambda t: (position.get(t, len(position)), t))
    return [Series(name, tuple(values[name].get(i) for i in range(width))) for name in names]


def load_calendar(session: Session, dag_id: str, year: int) -> dict[date, dict[str, int]]:
    """``{day: {state: runs}}`` of the DAG's runs whose logical date falls in ``year`` (UTC)."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    days: dict[date, dict[str, int]] = defaultdict(dict)
    for when, state in session.execute(
        select(DagRun.logical_date, DagRun.state).where(
            DagRun.dag_id == dag_id, DagRun.logical_date >= start, DagRun.logical_date < end
        )
    ):
        if when is None:
            continue
        counts = days[when.astimezone(UTC).date()]
        counts[state] = counts.get(state, 0) + 1
    return dict(days)


def years_with_runs(session: Session, dag_id: str) -> tuple[int, int] | None:
    """The years of the DAG's first and last logical dates (two index dives)."""
    dated = select(DagRun.logical_date).where(
        DagRun.dag_id == dag_id, DagRun.logical_date.is_not(None)
    )
    first = session.scalar(dated.order_by(DagRun.logical_date).limit(1))
    last = session.scalar(dated.order_by(DagRun.logical_date.desc()).limit(1))
    if first is None or last is None:
        return None
    return first.year, last.year
