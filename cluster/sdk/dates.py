"""Datetimes in DAG files: pendulum or stdlib, naive or aware, normalised to one form.

Everything downstream (timetables, the serializer, the scheduler) sees stdlib
``datetime`` objects with ``zoneinfo`` or fixed-offset time zones; naive values are
taken as UTC, as Airflow does with its default time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timezone, tzinfo
from zoneinfo import ZoneInfo


def normalize_datetime(value: datetime) -> datetime:
    """Return ``value`` as a stdlib aware datetime (pendulum subclasses are unwrapped).

    :raises TypeError: when ``value`` is not a datetime.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    zone = normalize_timezone(value.tzinfo, value)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=zone,
        fold=value.fold,
    )


def normalize_timezone(zone: tzinfo | None, at: datetime | None = None) -> tzinfo:
    """A ``ZoneInfo`` for named zones (pendulum's included), else a fixed offset."""
    if zone is None:
        return UTC
    key = getattr(zone, "key", None) or getattr(zone, "name", None)
    if isinstance(key, str) and key not in ("", "+00:00"):
        try:
            return ZoneInfo(key)
        except (ValueError, KeyError, OSError):
            pass
    offset = zone.utcoffset(at)
    if not offset:
        return UTC
    return timezone(offset)


def timezone_name(zone: tzinfo) -> str:
    """The IANA name a timetable understands.

    A fixed whole-hour offset maps to ``Etc/GMT-N`` (POSIX signs are inverted); other
    fixed offsets have no IANA name and fall back to ``"UTC"``.
    """
    if isinstance(zone, ZoneInfo):
        return zone.key
    offset = zone.utcoffset(None)
    if not offset:
        return "UTC"
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    return f"Etc/GMT{-hours:+d}" if rest == 0 else "UTC"


def utcnow() -> datetime:
    return datetime.now(UTC)
