"""``TimeSensor``: wait until a time of day in the DAG's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from cluster.sensors.base import BaseSensorOperator
from cluster.triggers.temporal import DateTimeTrigger


class TimeSensor(BaseSensorOperator):
    """Done once the wall clock in the DAG's time zone is past ``target_time``."""

    def __init__(self, *, target_time: time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def poke(self, context: dict[str, Any]) -> bool:
        zone = self.dag.timezone if self.dag is not None else None
        now = self._clock().astimezone(zone)
        return now.time().replace(tzinfo=None) > self.target_time.replace(tzinfo=None)


class TimeSensorAsync(BaseSensorOperator):
    """Wait until ``target_time`` (of the day the DAG file was parsed, in the DAG's time
    zone, as Airflow computes it) by deferring to a :class:`DateTimeTrigger`.

    As in Airflow, ``timeout`` does not apply while it is deferred.
    """

    def __init__(
        self,
        *,
        target_time: time,
        start_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_from_trigger = start_from_trigger
        self.end_from_trigger = end_from_trigger
        self.target_time = target_time
        zone = self.dag.timezone if self.dag is not None else UTC
        today = datetime.now(zone).date()
        self.target_datetime = datetime.combine(today, target_time, tzinfo=zone).astimezone(UTC)

    def execute(self, context: dict[str, Any]) -> Any:
        trigger = DateTimeTrigger(
            moment=self.target_datetime, end_from_trigger=self.end_from_trigger
        )
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        """The trigger fired: the time has come."""
        return None
