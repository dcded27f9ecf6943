"""Cron expressions stepped on the wall clock of a timezone, as Airflow steps them.

Split from :mod:`cluster.sdk.timetables`, which builds its cron timetables on these.
Imports only the standard library, croniter and :mod:`cluster.errors`: every DAG file
imports it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
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


class CronSchedule:
    """Steps along a cron expression on the wall clock of a timezone.

    Airflow's DST rules: a wall time that does not exist (spring forward) moves to
    the same distance after the gap (02:30 becomes 03:30), an ambiguous one (fall
    back) is taken the second time it occurs; expressions that fire every hour step
    in real elapsed time instead, so that no hour is run twice or lost.
    """

    def __init__(self, expression: str, timezone: str) -> None:
        self.expression = CRON_PRESETS.get(expression, expression)
        self.tz = zone(timezone)
        self.every_hour = croniter(self.expression).expanded[1] == ["*"]

    def next(self, current: datetime) -> datetime:
        naive = current.astimezone(self.tz).replace(tzinfo=None)
        scheduled = croniter(self.expression, naive).get_next(datetime)
        if not self.every_hour:
            return localize(scheduled, self.tz)
        return shift(current, scheduled - naive, self.tz)

    def prev(self, current: datetime) -> datetime:
        naive = current.astimezone(self.tz).replace(tzinfo=None)
        scheduled = croniter(self.expression, naive).get_prev(datetime)
        if not self.every_hour:
            return localize(scheduled, self.tz)
        return shift(current, scheduled - naive, self.tz)

    def align_to_next(self, current: datetime) -> datetime:
        """``current`` when it is on the schedule, else the next scheduled time."""
        following = self.next(current)
        return current if self.prev(following) == current else following

    def align_to_prev(self, current: datetime) -> datetime:
        """``current`` when it is on the schedule, else the previous scheduled time."""
        preceding = self.prev(current)
        return current if self.next(preceding) == current else preceding


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


def zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DagDefinitionError(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Amsterdam'"
        ) from exc


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of wall time ``naive`` in ``tz``, resolved as Airflow does.

    Ambiguous (fall back): the second occurrence. Non-existent (spring forward): the
    wall time read with the offset from before the gap, i.e. pushed past it.
    """
    later = naive.replace(tzinfo=tz, fold=1)
    if later.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        later = naive.replace(tzinfo=tz, fold=0)  # in a gap
    return later.astimezone(UTC)


def shift(current: datetime, delta: timedelta, tz: tzinfo) -> datetime:
    """Move ``current`` by ``delta`` like pendulum does for Airflow.

    Steps under a day are elapsed time; steps with whole days are wall-clock time.
    """
    if abs(delta) < timedelta(days=1):
        return to_utc(current) + delta
    naive = current.astimezone(tz).replace(tzinfo=None) + delta
    return localize(naive, tz)
