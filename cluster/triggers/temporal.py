"""``DateTimeTrigger`` and ``TimeDeltaTrigger``: fire once a moment has passed.

Airflow sleeps in steps of an hour, a minute, ten seconds and then one second; this one
sleeps until the moment in steps of at most a minute (so a changed system clock is
noticed within a minute) and fires within milliseconds of it, not within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cluster.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

#: the longest single sleep: a clock change is noticed within this many seconds
MAX_SLEEP = 60.0


class DateTimeTrigger(BaseTrigger):
    """Fire once at ``moment`` (timezone-aware), with the moment as the event's payload.

    :param end_from_trigger: end the task successfully instead of resuming it.
    :raises TypeError: ``moment`` is not a datetime.
    :raises ValueError: ``moment`` is naive.
    """

    def __init__(self, moment: datetime, *, end_from_trigger: bool = False) -> None:
        super().__init__()
        if not isinstance(moment, datetime):
            raise TypeError(f"Expected datetime.datetime type for moment. Got {type(moment)}")
        if moment.tzinfo is None:
            raise ValueError("You cannot pass naive datetimes")
        self.moment = moment.astimezone(UTC)
        self.end_from_trigger = end_from_trigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "cluster.triggers.temporal.DateTimeTrigger",
            {"moment": self.moment, "end_from_trigger": self.end_from_trigger},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (remaining := (self.moment - datetime.now(UTC)).total_seconds()) > 0:
            await asyncio.sleep(min(remaining, MAX_SLEEP))
        if self.end_from_trigger:
            self.log.info("time condition reached; marking the task successful")
            yield TaskSuccessEvent()
        else:
            yield TriggerEvent(self.moment)


class TimeDeltaTrigger(DateTimeTrigger):
    """Fire once ``delta`` from now; serialized as the :class:`DateTimeTrigger` it is."""

    def __init__(self, delta: timedelta, *, end_from_trigger: bool = False) -> None:
        super().__init__(moment=datetime.now(UTC) + delta, end_from_trigger=end_from_trigger)
