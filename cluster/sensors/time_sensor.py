"""``TimeSensor``: wait until a time of day in the DAG's time zone."""

from __future__ import annotations

from datetime import time
from typing import Any

from cluster.sensors.base import BaseSensorOperator


class TimeSensor(BaseSensorOperator):
    """Done once the wall clock in the DAG's time zone is past ``target_time``."""

    def __init__(self, *, target_time: time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def poke(self, context: dict[str, Any]) -> bool:
        zone = self.dag.timezone if self.dag is not None else None
        now = self._clock().astimezone(zone)
        return now.time().replace(tzinfo=None) > self.target_time.replace(tzinfo=None)
