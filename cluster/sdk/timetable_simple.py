"""The timetables that are not periodic: ``None``, ``@once`` and ``@continuous``
(Airflow's ``airflow.timetables.simple``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from cluster.sdk.cron import to_utc
from cluster.sdk.timetable_base import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    current_time,
)


@dataclass(frozen=True)
class NullTimetable(Timetable):
    """``schedule=None``: never scheduled, only triggered."""

    can_be_scheduled: ClassVar[bool] = False
    periodic: ClassVar[bool] = False

    @property
    def summary(self) -> str | None:
        return None

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        return None


@dataclass(frozen=True)
class OnceTimetable(Timetable):
    """``@once``: one run at the start date, whatever ``catchup`` says."""

    periodic: ClassVar[bool] = False

    @property
    def summary(self) -> str | None:
        return "@once"

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None or restriction.earliest is None:
            return None
        run_after = to_utc(restriction.earliest)
        if restriction.latest is not None and run_after > to_utc(restriction.latest):
            return None
        return DagRunInfo.exact(run_after)


@dataclass(frozen=True)
class ContinuousTimetable(Timetable):
    """``@continuous``: a new run as soon as the previous one ends, one at a time."""

    active_runs_limit: ClassVar[int | None] = 1
    periodic: ClassVar[bool] = False

    @property
    def summary(self) -> str | None:
        return "@continuous"

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        if restriction.earliest is None:
            return None
        current = current_time(now)
        earliest = to_utc(restriction.earliest)
        last = last_automated_data_interval
        if last is None:
            start, end = earliest, max(earliest, current)
        elif to_utc(last.end) > current:  # the start date lies in the future
            start = earliest
            end = start + (to_utc(last.end) - to_utc(last.start))
        else:
            start, end = to_utc(last.end), current
        if restriction.latest is not None and end > to_utc(restriction.latest):
            return None
        return DagRunInfo.interval(start, end)
