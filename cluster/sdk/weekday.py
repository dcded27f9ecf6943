"""Days of the week as used by :class:`~cluster.sensors.weekday.DayOfWeekSensor`."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class WeekDay(IntEnum):
    """ISO day numbers (Monday is 1), like Airflow's ``airflow.utils.weekday.WeekDay``."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> int:
        """Return the ISO number of a day name such as ``"Monday"``.

        :raises AttributeError: for an unknown name, like Airflow.
        """
        sanitized = week_day_str.upper()
        if sanitized not in cls.__members__:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"')
        return cls[sanitized].value

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        """Turn a name or a member into its ISO number."""
        if isinstance(day, WeekDay):
            return day.value
        return cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str | WeekDay]) -> set[int]:
        """Normalise one day or a collection of days into a set of ISO numbers."""
        if isinstance(week_day, str | WeekDay):
            return {cls.convert(week_day)}
        if isinstance(week_day, Iterable):
            return {cls.convert(day) for day in week_day}
        raise TypeError(
            f"Unsupported Type for week_day parameter: {type(week_day)}. "
            "Input should be iterable type: str, set, list, dict or WeekDay enum type"
        )
