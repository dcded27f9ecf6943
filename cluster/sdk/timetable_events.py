"""``EventsTimetable``: runs at listed points in time (Airflow's ``airflow.timetables.events``).

For schedules that are predictable but irregular (match days, launches). Each event is
one run whose data interval is the instant of the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cluster.sdk.timetable_base import (
    DagRunInfo,
    DataInterval,
    TimeRestriction,
    Timetable,
    current_time,
    plain_utc,
)


class EventsTimetable(Timetable):
    """Run at each of ``event_dates`` (duplicates ignored, naive dates are UTC).

    :param restrict_to_events: a manual run takes the most recent past event (or the
        first, when all lie ahead) as its logical date instead of the trigger time.
    :param presorted: the dates are already in ascending order.
    :param description: the summary shown in the UI (default: ``"N events"``).
    """

    def __init__(
        self,
        event_dates: Iterable[datetime],
        restrict_to_events: bool = False,
        presorted: bool = False,
        description: str | None = None,
    ) -> None:
        self.event_dates = [plain_utc(d) for d in event_dates]
        if not presorted:
            self.event_dates.sort()
        self.restrict_to_events = restrict_to_events
        if description is None:
            first_last = (
                f" between {self.event_dates[0]} and {self.event_dates[-1]}"
                if self.event_dates
                else ""
            )
            self.description = (
                f"{len(self.event_dates)} events{first_last}" if self.event_dates else "No events"
            )
            self._summary = f"{len(self.event_dates)} events"
        else:
            self.description = description
            self._summary = description

    @property
    def summary(self) -> str | None:
        return self._summary

    def __repr__(self) -> str:
        return str(self._summary)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventsTimetable) and self.serialize() == other.serialize()

    __hash__ = None  # type: ignore[assignment]

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        earliest = plain_utc(restriction.earliest) if restriction.earliest else None
        if not restriction.catchup:
            current = current_time(now)
            if earliest is None or current > earliest:
                earliest = current
        last_end = last_automated_data_interval.end if last_automated_data_interval else None
        for event in self.event_dates:
            if earliest is not None and event < earliest:
                continue
            if last_end is not None and event <= plain_utc(last_end):
                continue
            break
        else:
            return None
        if restriction.latest is not None and event > plain_utc(restriction.latest):
            return None
        return DagRunInfo.exact(event)

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        run_after = plain_utc(run_after)
        if not self.restrict_to_events or not self.event_dates:
            return DataInterval.exact(run_after)
        past = [e for e in self.event_dates if e <= run_after]
        return DataInterval.exact(past[-1] if past else self.event_dates[0])

    def serialize(self) -> dict[str, Any]:
        return {
            "event_dates": [d.isoformat() for d in self.event_dates],
            "restrict_to_events": self.restrict_to_events,
            "description": self.description,
            "summary": self._summary,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        timetable = cls(
            [datetime.fromisoformat(d) for d in data["event_dates"]],
            data["restrict_to_events"],
            presorted=True,
        )
        timetable.description = data.get("description", timetable.description)
        timetable._summary = data.get("summary", timetable._summary)
        return timetable
