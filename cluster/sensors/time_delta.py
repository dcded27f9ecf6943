"""``TimeDeltaSensor``: wait until ``delta`` after the run's data interval ends; its
``Async`` form defers to a :class:`~cluster.triggers.temporal.DateTimeTrigger`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cluster.errors import TaskSkipped
from cluster.sensors.base import BaseSensorOperator
from cluster.triggers.temporal import DateTimeTrigger


class TimeDeltaSensor(BaseSensorOperator):
    """Done once the clock passes ``data_interval_end + delta``."""

    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def poke(self, context: dict[str, Any]) -> bool:
        target = context["data_interval_end"] + self.delta
        return bool(self._clock() >= target)


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """A :class:`TimeDeltaSensor` that defers instead of holding a slot while it waits.

    :param end_from_trigger: end the task from the trigger without resuming it.
    """

    def __init__(self, *, end_from_trigger: bool = False, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(delta=delta, **kwargs)
        self.end_from_trigger = end_from_trigger

    def execute(self, context: dict[str, Any]) -> Any:
        target = context["data_interval_end"] + self.delta
        if self._clock() > target:
            return True  # already past: no need to defer
        try:
            trigger = DateTimeTrigger(moment=target, end_from_trigger=self.end_from_trigger)
        except (TypeError, ValueError) as exc:
            if self.soft_fail:
                raise TaskSkipped("Skipping due to soft_fail is set to True.") from exc
            raise
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        """The trigger fired: the time has come."""
        return None
