"""Timetables: when a DAG runs and which data interval each run covers.

The semantics are Airflow's (2.10): an interval timetable (cron or timedelta) creates
the run for ``[start, end)`` once ``end`` has passed, and the run's logical date is
``start``; ``catchup=False`` jumps to the latest complete interval; ``@once`` runs once
at the start date; the trigger timetable runs *at* each cron time. Cron times are
computed on the wall clock of the DAG's timezone, so a daily 02:30 job still runs once
on a DST day, and every returned datetime is timezone-aware UTC.

This module imports only the standard library, croniter and :mod:`cluster.errors`,
because every DAG file imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

from cluster.errors import DagDefinitionError
from cluster.sdk.cron import (
    CronSchedule,
    to_utc,
    validate_cron,
    zone,
)


class DataInterval(NamedTuple):
    """The span of data a run covers: ``[start, end)``."""

    start: datetime
    end: datetime

    @classmethod
    def exact(cls, at: datetime) -> DataInterval:
        return cls(at, at)


class TimeRestriction(NamedTuple):
    """Bounds set by the DAG: ``earliest`` is its start date, ``latest`` its end date."""

    earliest: datetime | None
    latest: datetime | None
    catchup: bool


class DagRunInfo(NamedTuple):
    """One run to create: not before ``run_after``, covering ``data_interval``."""

    run_after: datetime
    data_interval: DataInterval

    @property
    def logical_date(self) -> datetime:
        return self.data_interval.start

    @classmethod
    def interval(cls, start: datetime, end: datetime) -> DagRunInfo:
        return cls(end, DataInterval(start, end))

    @classmethod
    def exact(cls, at: datetime) -> DagRunInfo:
        return cls(at, DataInterval.exact(at))


class Timetable:
    """What every timetable offers the DAG and the scheduler."""

    #: ``False`` only for ``schedule=None``: such a DAG runs only when triggered
    can_be_scheduled: ClassVar[bool] = True
    #: whether runs repeat on a schedule (cron, timedelta) rather than once or on demand
    periodic: ClassVar[bool] = False
    #: a cap on active runs imposed by the timetable itself (``@continuous``: one)
    active_runs_limit: ClassVar[int | None] = None

    @property
    def summary(self) -> str | None:
        raise NotImplementedError

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        """The data interval of a run triggered by hand at ``run_after``."""
        return DataInterval.exact(to_utc(run_after))

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        """The next automated run after ``last_automated_data_interval``, or ``None``.

        :param now: the current time; injected so that callers and tests control it
            (``catchup=False`` and ``@continuous`` depend on it). Defaults to the clock.
        """
        raise NotImplementedError


# --- trivial timetables ----------------------------------------------------------------


@dataclass(frozen=True)
class NullTimetable(Timetable):
    """``schedule=None``: never scheduled, only triggered."""

    can_be_scheduled: ClassVar[bool] = False

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
        current = _now(now)
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


# --- data-interval timetables ----------------------------------------------------------


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
            earliest = self._skip_to_latest(earliest, _now(now))
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
        current = _now(now)
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


# --- construction and serialization ----------------------------------------------------


def timetable_from_schedule(
    schedule: str | timedelta | Timetable | None, *, timezone: str
) -> Timetable:
    """Turn a DAG's ``schedule`` argument into a timetable.

    :raises DagDefinitionError: for a malformed cron expression, an unknown preset, an
        unknown timezone or a non-positive timedelta; the message says which.
    """
    if isinstance(schedule, Timetable):
        return schedule
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
        f"schedule must be a cron string, a preset, a timedelta, a Timetable or None, "
        f"not {schedule!r}"
    )


def timetable_to_dict(tt: Timetable) -> dict[str, Any]:
    """A JSON-safe form of ``tt``; :func:`timetable_from_dict` restores it exactly."""
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
    raise DagDefinitionError(f"cannot serialize timetable {type(tt).__name__}: not built in")


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
    raise DagDefinitionError(f"unknown timetable type {kind!r}: re-serialize the DAG")


# --- time arithmetic -------------------------------------------------------------------


def _delta_to_list(delta: timedelta) -> list[int]:
    return [delta.days, delta.seconds, delta.microseconds]


def _delta_from_list(parts: list[int]) -> timedelta:
    days, seconds, microseconds = parts
    return timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _now(now: datetime | None) -> datetime:
    return to_utc(now) if now is not None else datetime.now(UTC)
