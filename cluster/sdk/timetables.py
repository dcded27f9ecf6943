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
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from cluster.errors import DagDefinitionError

#: Airflow's cron presets; ``@once`` and ``@continuous`` are timetables of their own
CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


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
        return DataInterval.exact(_utc(run_after))

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
        run_after = _utc(restriction.earliest)
        if restriction.latest is not None and run_after > _utc(restriction.latest):
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
        earliest = _utc(restriction.earliest)
        last = last_automated_data_interval
        if last is None:
            start, end = earliest, max(earliest, current)
        elif _utc(last.end) > current:  # the start date lies in the future
            start = earliest
            end = start + (_utc(last.end) - _utc(last.start))
        else:
            start, end = _utc(last.end), current
        if restriction.latest is not None and end > _utc(restriction.latest):
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
        earliest = _utc(restriction.earliest) if restriction.earliest is not None else None
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
            start = self._align_to_prev(_utc(last_automated_data_interval.end))
            if earliest is not None:
                start = max(start, earliest)
        if restriction.latest is not None and start > _utc(restriction.latest):
            return None
        return DagRunInfo.interval(start, self._next(start))


class _CronSchedule:
    """Steps along a cron expression on the wall clock of a timezone.

    Airflow's DST rules: a wall time that does not exist (spring forward) moves to
    the same distance after the gap (02:30 becomes 03:30), an ambiguous one (fall
    back) is taken the second time it occurs; expressions that fire every hour step
    in real elapsed time instead, so that no hour is run twice or lost.
    """

    def __init__(self, expression: str, timezone: str) -> None:
        self.expression = CRON_PRESETS.get(expression, expression)
        self.tz = _zone(timezone)
        self.every_hour = croniter(self.expression).expanded[1] == ["*"]

    def next(self, current: datetime) -> datetime:
        naive = current.astimezone(self.tz).replace(tzinfo=None)
        scheduled = croniter(self.expression, naive).get_next(datetime)
        if not self.every_hour:
            return _localize(scheduled, self.tz)
        return _shift(current, scheduled - naive, self.tz)

    def prev(self, current: datetime) -> datetime:
        naive = current.astimezone(self.tz).replace(tzinfo=None)
        scheduled = croniter(self.expression, naive).get_prev(datetime)
        if not self.every_hour:
            return _localize(scheduled, self.tz)
        return _shift(current, scheduled - naive, self.tz)

    def align_to_next(self, current: datetime) -> datetime:
        """``current`` when it is on the schedule, else the next scheduled time."""
        following = self.next(current)
        return current if self.prev(following) == current else following

    def align_to_prev(self, current: datetime) -> datetime:
        """``current`` when it is on the schedule, else the previous scheduled time."""
        preceding = self.prev(current)
        return current if self.next(preceding) == current else preceding


@dataclass(frozen=True)
class CronDataIntervalTimetable(_DataIntervalTimetable):
    """A cron expression (or preset) whose runs cover the span between two fires."""

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        validate_cron(self.cron)
        _zone(self.timezone)

    @cached_property
    def _schedule(self) -> _CronSchedule:
        return _CronSchedule(self.cron, self.timezone)

    @property
    def summary(self) -> str | None:
        return self.cron

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
        end = self._align_to_prev(_utc(run_after))
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
        end = _utc(run_after)
        return DataInterval(self._prev(end), end)


@dataclass(frozen=True)
class CronTriggerTimetable(Timetable):
    """Airflow's ``CronTriggerTimetable``: run *at* each cron time, logical date = it.

    ``interval`` optionally gives each run a data interval ending at the fire time.
    """

    cron: str
    timezone: str = "UTC"
    interval: timedelta = field(default=timedelta(0))

    periodic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        validate_cron(self.cron)
        _zone(self.timezone)

    @cached_property
    def _schedule(self) -> _CronSchedule:
        return _CronSchedule(self.cron, self.timezone)

    @property
    def summary(self) -> str | None:
        return self.cron

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        at = _utc(run_after)
        return DataInterval(at - self.interval, at)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        current = _now(now)
        earliest = _utc(restriction.earliest) if restriction.earliest is not None else None
        last = last_automated_data_interval
        candidates: list[datetime] = []
        if not restriction.catchup:
            candidates.append(self._schedule.align_to_prev(current))
        if last is not None:
            candidates.append(self._schedule.next(_utc(last.end)))
        elif earliest is None:
            candidates.append(self._first_run(current))
        if earliest is not None and (not restriction.catchup or last is None):
            candidates.append(self._schedule.align_to_next(earliest))
        fire = max(candidates)
        if restriction.latest is not None and _utc(restriction.latest) < fire:
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


def validate_cron(expression: str) -> None:
    """Raise :class:`DagDefinitionError` unless ``expression`` is a usable cron.

    Only five-field expressions (minute hour day month weekday) and the presets are
    accepted: croniter reads a sixth field as seconds, which no scheduler loop honours.
    """
    if expression.startswith("@"):
        if expression not in CRON_PRESETS:
            known = ", ".join([*CRON_PRESETS, "@once", "@continuous"])
            raise DagDefinitionError(f"unknown schedule preset {expression!r}: use one of {known}")
        return
    fields = expression.split()
    if len(fields) != 5:
        raise DagDefinitionError(
            f"invalid cron expression {expression!r}: it has {len(fields)} fields, a cron "
            f"needs exactly 5 (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise DagDefinitionError(f"invalid cron expression {expression!r}: {exc}") from exc


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


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DagDefinitionError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Amsterdam'"
        ) from exc


def _utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return _utc(now) if now is not None else datetime.now(UTC)


def _localize(naive: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of wall time ``naive`` in ``tz``, resolved as Airflow does.

    Ambiguous (fall back): the second occurrence. Non-existent (spring forward): the
    wall time read with the offset from before the gap, i.e. pushed past it.
    """
    later = naive.replace(tzinfo=tz, fold=1)
    if later.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        later = naive.replace(tzinfo=tz, fold=0)  # in a gap
    return later.astimezone(UTC)


def _shift(current: datetime, delta: timedelta, tz: tzinfo) -> datetime:
    """Move ``current`` by ``delta`` like pendulum does for Airflow.

    Steps under a day are elapsed time; steps with whole days are wall-clock time.
    """
    if abs(delta) < timedelta(days=1):
        return _utc(current) + delta
    naive = current.astimezone(tz).replace(tzinfo=None) + delta
    return _localize(naive, tz)
