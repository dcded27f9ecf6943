"""Which DAG runs to create, which queued runs may start, which ran out of time.

Creation follows the DAG's timetable (:mod:`cluster.sdk.timetables`) with Airflow's
rules: nothing for a paused DAG, never more active (queued + running) runs than
``max_active_runs`` (and the timetable's own limit: one for ``@continuous``), only
runs whose ``run_after`` has passed. The plan also says when the DAG next needs a
look (``next_dagrun_create_after``), so the loop can skip every other DAG cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy.changes import StateChange, instance_key
from cluster.sdk.timetables import DagRunInfo, DataInterval, TimeRestriction, timetable_from_dict
from cluster.states import FINISHED, DagRunState, TaskState


@dataclass(frozen=True)
class RunToCreate:
    """A scheduled run to insert as ``queued``, with its task instances in ``none``."""

    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_after: datetime


@dataclass(frozen=True)
class RunPlan:
    """The runs to create now, and when to look at this DAG again.

    :ivar next_dagrun_create_after: ``run_after`` of the next run to create; ``None``
        when none can be created until something changes: the DAG is paused or has
        ``max_active_runs`` active runs (re-plan when one of its runs ends or it is
        unpaused), or its timetable has no further run.
    :ivar next_run: the next run the timetable gives, even while blocked; the loop
        may store its data interval for display.
    """

    create: tuple[RunToCreate, ...]
    next_dagrun_create_after: datetime | None
    next_run: DagRunInfo | None


@dataclass(frozen=True)
class RunSnapshot:
    """One active run of a DAG."""

    run_id: str
    state: DagRunState
    logical_date: datetime | None
    #: when it moved to ``running``; ``None`` while queued
    start_date: datetime | None = None


def scheduled_run_id(logical_date: datetime) -> str:
    """Airflow's run id for a scheduled run: ``scheduled__<ISO logical date>``."""
    return f"scheduled__{logical_date.isoformat()}"


def plan_runs(
    dag: SerializedDag,
    *,
    paused: bool,
    last_automated_data_interval: DataInterval | None,
    active_runs: int,
    now: datetime,
    max_create: int = 16,
) -> RunPlan:
    """The scheduled runs to create for ``dag`` now.

    :param last_automated_data_interval: of the latest scheduled (not manual) run;
        ``None`` before the first one. ``@once`` stops after it.
    :param active_runs: its queued + running runs, of any type.
    :param max_create: a cap per call so a long catch-up is spread over loops.
    """
    timetable = timetable_from_dict(dag.timetable)
    restriction = TimeRestriction(dag.start_date, dag.end_date, dag.catchup)
    limit = dag.max_active_runs
    if timetable.active_runs_limit is not None:
        limit = min(limit, timetable.active_runs_limit)
    created: list[RunToCreate] = []
    last = last_automated_data_interval
    while True:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=now
        )
        blocked = paused or active_runs + len(created) >= limit or len(created) >= max_create
        if info is None or blocked or info.run_after > now:
            break
        created.append(_to_create(info))
        last = info.data_interval
    next_after = (
        None if info is None or paused or active_runs + len(created) >= limit else (info.run_after)
    )
    return RunPlan(tuple(created), next_after, info)


def _to_create(info: DagRunInfo) -> RunToCreate:
    return RunToCreate(
        run_id=scheduled_run_id(info.logical_date),
        logical_date=info.logical_date,
        data_interval_start=info.data_interval.start,
        data_interval_end=info.data_interval.end,
        run_after=info.run_after,
    )


def runs_to_start(dag: SerializedDag, runs: Iterable[RunSnapshot]) -> list[str]:
    """The queued runs to move to ``running``, oldest logical date first.

    Only ``running`` runs count against ``max_active_runs`` here, as in Airflow.
    """
    listed = list(runs)
    running = sum(1 for r in listed if r.state is DagRunState.RUNNING)
    limit = dag.max_active_runs
    active_limit = timetable_from_dict(dag.timetable).active_runs_limit
    if active_limit is not None:
        limit = min(limit, active_limit)
    queued = [r for r in listed if r.state is DagRunState.QUEUED]
    oldest = datetime.min.replace(tzinfo=UTC)
    queued.sort(key=lambda r: (r.logical_date or oldest, r.run_id))
    return [r.run_id for r in queued[: max(limit - running, 0)]]


def timed_out_runs(dag: SerializedDag, runs: Iterable[RunSnapshot], *, now: datetime) -> list[str]:
    """Running runs that started more than ``dagrun_timeout`` seconds ago: to fail."""
    if dag.dagrun_timeout is None:
        return []
    timeout = timedelta(seconds=dag.dagrun_timeout)
    return [
        r.run_id
        for r in runs
        if r.state is DagRunState.RUNNING
        and r.start_date is not None
        and r.start_date + timeout < now
    ]


def timeout_changes(ti_states: Mapping[Any, TaskState]) -> list[StateChange]:
    """For a run failed by its timeout, Airflow marks every unfinished instance skipped.

    Running and queued instances are included: their runner sees the change at its
    next heartbeat and stops.
    """
    keyed = sorted((instance_key(k), s) for k, s in ti_states.items())
    return [
        StateChange(task_id, state, TaskState.SKIPPED, "DAG run timed out", map_index)
        for (task_id, map_index), state in keyed
        if state not in FINISHED
    ]
