"""``TimeDeltaSensor``: wait until ``delta`` after the run's data interval ends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cluster.sensors.base import BaseSensorOperator


class TimeDeltaSensor(BaseSensorOperator):
    """Done once the clock passes ``data_interval_end + delta``."""

    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def poke(self, context: dict[str, Any]) -> bool:
        target = context["data_interval_end"] + self.delta
        return bool(self._clock() >= target)
