"""Periodic timetables on a cron expression or a ``timedelta``: Airflow's
``airflow.timetables.interval`` (runs that each cover one interval and start when it
has ended) and ``airflow.timetables.trigger`` (runs *at* each cron time).

Cron times are computed on the wall clock of the DAG's timezone, so a daily 02:30 job
still runs once on a DST day, and every returned datetime is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from typing import Any, ClassVar

from cluster.errors import DagDefinitionError
from cluster.sdk.cron import CronSchedule, to_utc, validate_cron, zone
from cluster.sdk.dates import normalize_timezone, timezone_name
from cluster.sdk.timetable_base import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    current_time,
)


class _DataIntervalTimetable(Timetable):
    """Runs that each cover one interval and start when the interval has ended.

    Subclasses say how to step (``_next``, ``_prev``), how to snap an arbitrary time
    onto the schedule (``_align_to_next``, ``_align_to_prev``) and where
    ``catchup=False`` starts (``_skip_to_latest``).
    """

    periodic: ClassVar[bool] = True

    def _next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_next(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _align_to_prev(self, current: datetime) -> datetime:
        raise NotImplementedError

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        raise NotImplementedError

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        earliest = to_utc(restriction.earliest) if restriction.earliest is not None else None
        if not restriction.catchup:
            earliest = self._skip_to_latest(earliest, current_time(now))
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last_automated_data_interval is None:
            if earliest is None:
                return None
            start = earliest
        else:
            # Aligning copes with a schedule that changed since the last run.
            start = self._align_to_prev(to_utc(last_automated_data_interval.end))
            if earliest is not None:
                start = max(start, earliest)
        if restriction.latest is not None and start > to_utc(restriction.latest):
            return None
        return DagRunInfo.interval(start, self._next(start))


class _OnCron:
    """What both cron timetables share: a checked expression stepped in a timezone."""

    cron: str
    timezone: str

    def __post_init__(self) -> None:
        given: Any = self.timezone
        if isinstance(given, tzinfo):  # Airflow accepts a pendulum Timezone too
            object.__setattr__(self, "timezone", timezone_name(normalize_timezone(given)))
        validate_cron(self.cron)
        zone(self.timezone)

    @cached_property
    def _schedule(self) -> CronSchedule:
        return CronSchedule(self.cron, self.timezone)

    @property
    def summary(self) -> str | None:
        return self.cron


@dataclass(frozen=True)
class CronDataIntervalTimetable(_OnCron, _DataIntervalTimetable):
    """A cron expression (or preset) whose runs cover the span between two fires."""

    cron: str
    timezone: str = "UTC"

    def _next(self, current: datetime) -> datetime:
        return self._schedule.next(current)

    def _prev(self, current: datetime) -> datetime:
        return self._schedule.prev(current)

    def _align_to_next(self, current: datetime) -> datetime:
        return self._schedule.align_to_next(current)

    def _align_to_prev(self, current: datetime) -> datetime:
        return self._schedule.align_to_prev(current)

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        # The latest interval that has ended; when ``now`` is exactly on a fire time
        # the interval ending now is complete and is the one to run.
        last_start = self._prev(now)
        next_start = self._next(last_start)
        new_start = last_start if next_start == now else self._prev(last_start)
        if earliest is None:
            return new_start
        return max(new_start, self._align_to_next(earliest))

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        # The last complete interval: triggered at 01:00 on the 25th, a daily DAG
        # covers the 24th.
        end = self._align_to_prev(to_utc(run_after))
        return DataInterval(self._prev(end), end)


@dataclass(frozen=True)
class DeltaDataIntervalTimetable(_DataIntervalTimetable):
    """A fixed ``timedelta`` between runs, counted from the start date."""

    delta: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.delta, timedelta):
            raise DagDefinitionError(f"schedule interval must be a timedelta, not {self.delta!r}")
        if self.delta <= timedelta(0):
            raise DagDefinitionError(
                f"schedule interval must be positive, not {self.delta!r}: use a timedelta > 0"
            )
        # pendulum Durations are timedeltas; keep a plain one so equality is exact.
        plain = timedelta(self.delta.days, self.delta.seconds, self.delta.microseconds)
        object.__setattr__(self, "delta", plain)

    @property
    def summary(self) -> str | None:
        return str(self.delta)

    def _next(self, current: datetime) -> datetime:
        return current + self.delta

    def _prev(self, current: datetime) -> datetime:
        return current - self.delta

    def _align_to_next(self, current: datetime) -> datetime:
        return current

    def _align_to_prev(self, current: datetime) -> datetime:
        return current

    def _skip_to_latest(self, earliest: datetime | None, now: datetime) -> datetime:
        # Airflow rounds ``now`` down to a multiple of the delta since the epoch.
        seconds = now.timestamp()
        rounded = datetime.fromtimestamp(seconds - seconds % self.delta.total_seconds(), UTC)
        new_start = self._prev(rounded)
        return new_start if earliest is None else max(new_start, earliest)

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        end = to_utc(run_after)
        return DataInterval(self._prev(end), end)


@dataclass(frozen=True)
class CronTriggerTimetable(_OnCron, Timetable):
    """Airflow's ``CronTriggerTimetable``: run *at* each cron time, logical date = it.

    ``interval`` optionally gives each run a data interval ending at the fire time.
    """

    cron: str
    timezone: str = "UTC"
    interval: timedelta = field(default=timedelta(0))

    periodic: ClassVar[bool] = True

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        at = to_utc(run_after)
        return DataInterval(at - self.interval, at)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        current = current_time(now)
        earliest = to_utc(restriction.earliest) if restriction.earliest is not None else None
        last = last_automated_data_interval
        candidates: list[datetime] = []
        if not restriction.catchup:
            candidates.append(self._schedule.align_to_prev(current))
        if last is not None:
            candidates.append(self._schedule.next(to_utc(last.end)))
        elif earliest is None:
            candidates.append(self._first_run(current))
        if earliest is not None and (not restriction.catchup or last is None):
            candidates.append(self._schedule.align_to_next(earliest))
        fire = max(candidates)
        if restriction.latest is not None and to_utc(restriction.latest) < fire:
            return None
        return DagRunInfo(fire, DataInterval(fire - self.interval, fire))

    def _first_run(self, now: datetime) -> datetime:
        # Without a start date Airflow runs the past fire time only when it is
        # recent: within a tenth of the period, and at least five minutes.
        past = self._schedule.align_to_prev(now)
        following = self._schedule.align_to_next(now)
        buffer = max((following - past) / 10, timedelta(minutes=5))
        return past if now - past <= buffer else following
