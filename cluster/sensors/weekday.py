"""``DayOfWeekSensor``: wait until a given day of the week."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.sdk.weekday import WeekDay
from cluster.sensors.base import BaseSensorOperator


class DayOfWeekSensor(BaseSensorOperator):
    """Done on one of ``week_day`` (a name, a :class:`WeekDay`, or a collection of them).

    :param use_task_logical_date: compare the run's logical date instead of today.
    """

    def __init__(
        self,
        *,
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: dict[str, Any]) -> bool:
        moment = context["logical_date"] if self.use_task_logical_date else self._clock()
        return moment.isoweekday() in self._week_day_num
