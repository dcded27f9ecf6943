"""Feeds the scheduler's Prometheus metrics from its events, outside the loop's code.

The service calls these hooks; the loop itself knows nothing of metrics. Counting task
instances by state reads only the instances of running DAG runs, so its cost does not
grow with history, and it runs at most every ``census_interval`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.processor import ProcessReport
from cluster.errors import MetastoreError
from cluster.metastore.engine import transaction
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metrics.scheduler import SchedulerMetrics
from cluster.states import DagRunState


class SchedulerObserver:
    """The hooks :class:`~cluster.scheduler.service.SchedulerService` calls."""

    def __init__(
        self,
        metrics: SchedulerMetrics,
        *,
        sessions: sessionmaker[Session],
        census_interval: float = 15.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metrics = metrics
        self._sessions = sessions
        self._census_interval = census_interval
        self._monotonic = monotonic
        self._next_census = 0.0

    def iteration(self, seconds: float, *, leading: bool) -> None:
        """After each loop iteration: its duration, and now and then the state census."""
        self.metrics.observe_loop(seconds)
        if leading and self._monotonic() >= self._next_census:
            self._next_census = self._monotonic() + self._census_interval
            try:
                counts = transaction(self._sessions, running_run_states, retries=1)
            except MetastoreError:
                return  # the loop reports the outage; the census waits for the next turn
            self.metrics.set_state_counts(counts)

    def processed(self, report: ProcessReport) -> None:
        for path, seconds in report.seconds.items():
            self.metrics.observe_parse(path, seconds)

    def leadership(self, leading: bool) -> None:
        self.metrics.leader_changed(leading)


def running_run_states(session: Session) -> dict[str, int]:
    """``state → count`` of the task instances of running DAG runs."""
    rows = session.execute(
        select(TaskInstance.state, func.count())
        .join(
            DagRun,
            (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id),
        )
        .where(DagRun.state == DagRunState.RUNNING)
        .group_by(TaskInstance.state)
    ).all()
    return {str(state): int(count) for state, count in rows}
