"""Timetables: when a DAG runs and which data interval each run covers, under Airflow's
names, and how a DAG's ``schedule`` becomes one and its serialized form is kept.

The semantics are Airflow's (2.10): an interval timetable (cron or timedelta) creates
the run for ``[start, end)`` once ``end`` has passed, and the run's logical date is
``start``; ``catchup=False`` jumps to the latest complete interval; ``@once`` runs once
at the start date; the trigger timetable runs *at* each cron time; the events
timetable at each listed time. A user's own :class:`Timetable` subclass (registered by
a plugin, see :mod:`cluster.sdk.plugins`) is serialized as its import path and its
:meth:`~Timetable.serialize` data.

This module and its parts import only the standard library, croniter and
:mod:`cluster.errors`, because every DAG file imports them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cluster.errors import DagDefinitionError, PluginError
from cluster.sdk.datasets import BaseDataset, condition_from_dict
from cluster.sdk.plugins import class_path, find_timetable_class
from cluster.sdk.timetable_base import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    next_dagrun_info,
    plain_utc,
)
from cluster.sdk.timetable_datasets import DatasetOrTimeSchedule, DatasetTriggeredTimetable
from cluster.sdk.timetable_events import EventsTimetable
from cluster.sdk.timetable_interval import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
)
from cluster.sdk.timetable_simple import ContinuousTimetable, NullTimetable, OnceTimetable

__all__ = [
    "ContinuousTimetable",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DagRunInfo",
    "DataInterval",
    "DatasetOrTimeSchedule",
    "DatasetTriggeredTimetable",
    "DeltaDataIntervalTimetable",
    "EventsTimetable",
    "NullTimetable",
    "OnceTimetable",
    "TimeRestriction",
    "Timetable",
    "next_dagrun_info",
    "timetable_from_dict",
    "timetable_from_schedule",
    "timetable_to_dict",
]


def timetable_from_schedule(schedule: Any, *, timezone: str) -> Timetable:
    """Turn a DAG's ``schedule`` argument into a timetable.

    :raises DagDefinitionError: for a malformed cron expression, an unknown preset, an
        unknown timezone or a non-positive timedelta; the message says which.
    """
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, BaseDataset | list | tuple | set):
        return DatasetTriggeredTimetable(schedule)
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, timedelta):
        return DeltaDataIntervalTimetable(schedule)
    if isinstance(schedule, str):
        if schedule == "@once":
            return OnceTimetable()
        if schedule == "@continuous":
            return ContinuousTimetable()
        return CronDataIntervalTimetable(schedule, timezone)
    raise DagDefinitionError(
        f"schedule must be a cron string, a preset, a timedelta, a Timetable, datasets or None, "
        f"not {schedule!r}"
    )


def timetable_to_dict(tt: Timetable) -> dict[str, Any]:
    """A JSON-safe form of ``tt``; :func:`timetable_from_dict` restores it exactly."""
    if isinstance(tt, DatasetOrTimeSchedule):
        return {
            "type": "datasets_or_time",
            "condition": tt.condition,
            "timetable": timetable_to_dict(tt.timetable),
        }
    if isinstance(tt, DatasetTriggeredTimetable):
        return {"type": "datasets", "condition": tt.condition}
    if isinstance(tt, NullTimetable):
        return {"type": "null"}
    if isinstance(tt, OnceTimetable):
        return {"type": "once"}
    if isinstance(tt, ContinuousTimetable):
        return {"type": "continuous"}
    if isinstance(tt, CronDataIntervalTimetable):
        return {"type": "cron", "expression": tt.cron, "timezone": tt.timezone}
    if isinstance(tt, DeltaDataIntervalTimetable):
        return {"type": "delta", "delta": _delta_to_list(tt.delta)}
    if isinstance(tt, CronTriggerTimetable):
        return {
            "type": "cron_trigger",
            "expression": tt.cron,
            "timezone": tt.timezone,
            "interval": _delta_to_list(tt.interval),
        }
    if isinstance(tt, EventsTimetable):
        return {"type": "events", "data": tt.serialize()}
    return {"type": "custom", "class": class_path(type(tt)), "data": tt.serialize()}


def timetable_from_dict(data: dict[str, Any]) -> Timetable:
    """Rebuild a timetable from :func:`timetable_to_dict` output.

    :raises DagDefinitionError: for an unknown ``type``; re-serialize the DAG.
    """
    kind = data.get("type")
    if kind == "null":
        return NullTimetable()
    if kind == "once":
        return OnceTimetable()
    if kind == "continuous":
        return ContinuousTimetable()
    if kind == "cron":
        return CronDataIntervalTimetable(data["expression"], data["timezone"])
    if kind == "delta":
        return DeltaDataIntervalTimetable(_delta_from_list(data["delta"]))
    if kind == "cron_trigger":
        return CronTriggerTimetable(
            data["expression"], data["timezone"], _delta_from_list(data["interval"])
        )
    if kind == "events":
        return EventsTimetable.deserialize(data["data"])
    if kind == "custom":
        return _custom(data)
    if kind == "datasets":
        return DatasetTriggeredTimetable(condition_from_dict(data["condition"]))
    if kind == "datasets_or_time":
        return DatasetOrTimeSchedule(
            timetable=timetable_from_dict(data["timetable"]),
            datasets=condition_from_dict(data["condition"]),
        )
    raise DagDefinitionError(f"unknown timetable type {kind!r}: re-serialize the DAG")


def _custom(data: dict[str, Any]) -> Timetable:
    """A user's timetable, behind :class:`UserTimetable` so callers may pass ``now``.

    :raises DagDefinitionError: when its class cannot be found (see ``find_timetable_class``).
    """
    try:
        cls = find_timetable_class(data["class"])
    except PluginError as exc:
        raise DagDefinitionError(str(exc)) from exc
    return UserTimetable(cls.deserialize(data.get("data") or {}))


class UserTimetable(Timetable):
    """A user's timetable as the scheduler asks it: Airflow's signature takes no ``now``,
    and its answers may be pendulum datetimes (given back as UTC stdlib ones)."""

    def __init__(self, inner: Timetable) -> None:
        self.inner = inner
        self.periodic = inner.periodic  # type: ignore[misc]
        self.can_be_scheduled = inner.can_be_scheduled  # type: ignore[misc]
        self.active_runs_limit = inner.active_runs_limit  # type: ignore[misc]
        self.description = inner.description

    @property
    def summary(self) -> str | None:
        return self.inner.summary

    def serialize(self) -> dict[str, Any]:
        return self.inner.serialize()

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        start, end = self.inner.infer_manual_data_interval(run_after=run_after)
        return DataInterval(plain_utc(start), plain_utc(end))

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        return next_dagrun_info(
            self.inner,
            last_automated_data_interval=last_automated_data_interval,
            restriction=restriction,
            now=now,
        )


# --- time arithmetic -------------------------------------------------------------------


def _delta_to_list(delta: timedelta) -> list[int]:
    return [delta.days, delta.seconds, delta.microseconds]


def _delta_from_list(parts: list[int]) -> timedelta:
    days, seconds, microseconds = parts
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)
