"""``BranchDateTimeOperator``: follow one branch inside a time window, the other outside.

Airflow's rules: the moment compared is now (UTC), or the run's logical date with
``use_task_logical_date``. A target given as a ``time`` is put on that moment's date; a
naive target is read in the DAG's time zone; when both targets are times and the upper
one is earlier, the window runs past midnight. Inside ``[target_lower, target_upper]``
(either bound may be ``None``) the ``if_true`` tasks run.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from cluster.errors import TradewindError
from cluster.operators.branch import BaseBranchOperator
from cluster.sdk.dates import utcnow

Target = dt.datetime | dt.time | None


class BranchDateTimeOperator(BaseBranchOperator):
    """Follow ``follow_task_ids_if_true`` when the moment is inside the window.

    :raises TradewindError: (``AirflowException``) when both targets are ``None``.
    """

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: Target,
        target_upper: Target,
        use_task_logical_date: bool = False,
        use_task_execution_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            raise TradewindError(
                "Both target_upper and target_lower are None. At least one "
                "must be defined to be compared to the current datetime"
            )
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.use_task_logical_date = use_task_logical_date or use_task_execution_date
        if use_task_execution_date:
            warnings.warn(
                "Parameter ``use_task_execution_date`` is deprecated. Use ``use_task_logical_date``.",
                DeprecationWarning,
                stacklevel=2,
            )
        self._clock: Callable[[], dt.datetime] = utcnow

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        now = context["logical_date"] if self.use_task_logical_date else self._clock()
        zone = self.dag.timezone if self.dag is not None else dt.UTC
        lower, upper = target_times_as_dates(now, self.target_lower, self.target_upper)
        lower_at = _aware(lower, zone)
        upper_at = _aware(upper, zone)
        if upper_at is not None and upper_at < now:
            return self.follow_task_ids_if_false
        if lower_at is not None and lower_at > now:
            return self.follow_task_ids_if_false
        return self.follow_task_ids_if_true


def target_times_as_dates(
    base_date: dt.datetime, lower: Target, upper: Target
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Airflow's helper: put ``time`` targets on ``base_date``'s date; a window whose
    upper time is before its lower one ends on the next day."""
    if isinstance(lower, dt.datetime) and isinstance(upper, dt.datetime):
        return lower, upper
    low = dt.datetime.combine(base_date, lower) if isinstance(lower, dt.time) else lower
    high = dt.datetime.combine(base_date, upper) if isinstance(upper, dt.time) else upper
    if low is None or high is None:
        return low, high
    if high < low:
        high += dt.timedelta(days=1)
    return low, high


def _aware(value: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)
