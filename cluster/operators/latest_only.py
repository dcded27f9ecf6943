"""``LatestOnlyOperator``: let only the most recent scheduled run go on downstream.

Airflow's rule: a run triggered by hand always proceeds. Otherwise the operator asks the
DAG's timetable for the run after this one (start date, end date and catchup ignored);
this run is the latest when *now* falls in that next run's data interval
(``start < now <= end``), or when the timetable has no next run. A run that is not the
latest skips every direct downstream task (and so, through trigger rules, what follows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from cluster.operators.branch import BaseBranchOperator
from cluster.sdk.dates import utcnow
from cluster.sdk.timetables import DataInterval, TimeRestriction, next_dagrun_info

log = logging.getLogger("tradewind.task")


class LatestOnlyOperator(BaseBranchOperator):
    """Skip the direct downstream tasks unless this is the latest scheduled run."""

    ui_color = "#e9ffdb"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clock: Callable[[], datetime] = utcnow

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        everything = sorted(self.get_direct_relative_ids(upstream=False))
        dag_run = context["dag_run"]
        if dag_run.external_trigger:
            log.info("Externally triggered DAG_Run: allowing execution to proceed.")
            return everything
        this = DataInterval(dag_run.data_interval_start, dag_run.data_interval_end)
        following = next_dagrun_info(
            self._require_dag().timetable,
            last_automated_data_interval=this,
            restriction=TimeRestriction(None, None, True),
            now=None,
        )
        if following is None:
            log.info("Last scheduled execution: allowing execution to proceed.")
            return everything
        left, right = following.data_interval
        now = self._clock()
        log.info(
            "Checking latest only with left_window: %s right_window: %s now: %s", left, right, now
        )
        if not left < now <= right:
            log.info("Not latest execution, skipping downstream.")
            return []
        log.info("Latest, allowing execution to proceed.")
        return everything
