"""``DateTimeSensor``: wait until a (templated) point in time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cluster.sdk.dates import normalize_datetime
from cluster.sensors.base import BaseSensorOperator
from cluster.triggers.temporal import DateTimeTrigger


class DateTimeSensor(BaseSensorOperator):
    """Done once the clock passes ``target_time``: a datetime or an ISO string template,
    e.g. ``"{{ data_interval_end + macros.timedelta(minutes=5) }}"``."""

    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, datetime):
            self.target_time: str | datetime = normalize_datetime(target_time).isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise TypeError(
                f"Expected str or datetime.datetime type for target_time. Got {type(target_time)}"
            )

    def poke(self, context: dict[str, Any]) -> bool:
        return bool(self._clock() > self._moment())

    def _moment(self) -> datetime:
        target = self.target_time
        moment = target if isinstance(target, datetime) else datetime.fromisoformat(str(target))
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DateTimeSensorAsync(DateTimeSensor):
    """A :class:`DateTimeSensor` that defers instead of holding a slot while it waits.

    :param end_from_trigger: end the task from the trigger without resuming it.
    """

    def __init__(
        self,
        *,
        start_from_trigger: bool = False,
        end_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Airflow's start_from_trigger starts the task in the triggerer; Tradewind starts
        # it on a worker, which defers at once: the same states, one short try more
        self.start_from_trigger = start_from_trigger
        self.end_from_trigger = end_from_trigger

    def execute(self, context: dict[str, Any]) -> Any:
        trigger = DateTimeTrigger(moment=self._moment(), end_from_trigger=self.end_from_trigger)
        self.defer(method_name="execute_complete", trigger=trigger)

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        """The trigger fired: the time has come."""
        return None
