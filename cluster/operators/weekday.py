"""``BranchDayOfWeekOperator``: follow one branch on given days of the week, the other else.

The day is today's in the DAG's time zone, or the run's logical date's with
``use_task_logical_date`` (as Airflow: that one is not converted to the DAG's zone).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from cluster.operators.branch import BaseBranchOperator
from cluster.sdk.dates import utcnow
from cluster.sdk.weekday import WeekDay


class BranchDayOfWeekOperator(BaseBranchOperator):
    """Follow ``follow_task_ids_if_true`` on one of ``week_day`` (a name, a
    :class:`~cluster.sdk.WeekDay`, or a collection of them)."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date or use_task_execution_day
        if use_task_execution_day:
            warnings.warn(
                "Parameter ``use_task_execution_day`` is deprecated. Use ``use_task_logical_date``.",
                DeprecationWarning,
                stacklevel=2,
            )
        self._week_day_num = WeekDay.validate_week_day(week_day)
        self._clock: Callable[[], datetime] = utcnow

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        if self.use_task_logical_date:
            now = context["logical_date"]
        else:
            now = self._clock().astimezone(self.dag.timezone if self.dag is not None else UTC)
        if now.isoweekday() in self._week_day_num:
            return self.follow_task_ids_if_true
        return self.follow_task_ids_if_false
