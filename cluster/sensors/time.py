"""``TimeSensor`` under the standard provider's module name (``airflow.providers.standard.sensors.time``)."""

from __future__ import annotations

from cluster.sensors.time_sensor import TimeSensor

__all__ = ["TimeSensor"]
