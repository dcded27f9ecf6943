"""``DateTimeSensor``: wait until a (templated) point in time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cluster.sdk.dates import normalize_datetime
from cluster.sensors.base import BaseSensorOperator


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
        target = self.target_time
        moment = target if isinstance(target, datetime) else datetime.fromisoformat(str(target))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return bool(self._clock() > moment)
