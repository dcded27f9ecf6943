"""What every timetable is made of (Airflow's ``airflow.timetables.base``).

A timetable answers two questions for the scheduler: the next automated run after the
last one (:meth:`Timetable.next_dagrun_info`) and the data interval of a run triggered
by hand (:meth:`Timetable.infer_manual_data_interval`). Users subclass
:class:`Timetable` for schedules cron cannot say (a plugin registers the class, see
:mod:`cluster.sdk.plugins`); a subclass keeps what it needs to rebuild itself in
:meth:`Timetable.serialize`, because the scheduler never imports DAG files.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple

from cluster.sdk.cron import to_utc
from cluster.sdk.dates import normalize_datetime


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
    """What every timetable offers the DAG and the scheduler (Airflow's protocol).

    The defaults are Airflow's: periodic, schedulable, no limit on active runs, the class
    name as summary, and an empty :meth:`serialize` (rebuilt by calling the class).
    """

    #: ``False`` only for ``schedule=None``: such a DAG runs only when triggered
    can_be_scheduled: ClassVar[bool] = True
    #: whether runs repeat on a schedule (cron, timedelta) rather than once or on demand
    periodic: ClassVar[bool] = True
    #: a cap on active runs imposed by the timetable itself (``@continuous``: one)
    active_runs_limit: ClassVar[int | None] = None
    #: a longer human description for the UI
    description: str = ""

    @property
    def summary(self) -> str | None:
        return type(self).__name__

    def validate(self) -> None:
        """Check the arguments; called when the DAG is serialized.

        :raises Exception: any error stops the DAG file from loading, with its message.
        """

    def serialize(self) -> dict[str, Any]:
        """JSON-safe data :meth:`deserialize` rebuilds this timetable from."""
        return {}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls()

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
            Airflow's own signature has no ``now``: a user's timetable may leave it out
            (see :func:`next_dagrun_info`).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement next_dagrun_info()")


def current_time(now: datetime | None) -> datetime:
    """``now`` in UTC, or the clock's time when ``None``."""
    return to_utc(now) if now is not None else datetime.now(UTC)


_TAKES_NOW: dict[type[Timetable], bool] = {}


def _takes_now(cls: type[Timetable]) -> bool:
    """Whether ``cls.next_dagrun_info`` accepts ``now`` (Tradewind's do, Airflow's do not)."""
    if cls not in _TAKES_NOW:
        parameters = inspect.signature(cls.next_dagrun_info).parameters
        _TAKES_NOW[cls] = "now" in parameters or any(
            p.kind is p.VAR_KEYWORD for p in parameters.values()
        )
    return _TAKES_NOW[cls]


def next_dagrun_info(
    timetable: Timetable,
    *,
    last_automated_data_interval: DataInterval | None,
    restriction: TimeRestriction,
    now: datetime | None,
) -> DagRunInfo | None:
    """Ask any timetable, Tradewind's or a user's with Airflow's signature, for its next
    run; the answer's datetimes are UTC."""
    kwargs: dict[str, Any] = {
        "last_automated_data_interval": last_automated_data_interval,
        "restriction": restriction,
    }
    if _takes_now(type(timetable)):
        kwargs["now"] = now
    info = timetable.next_dagrun_info(**kwargs)
    if info is None:
        return None
    start, end = info.data_interval
    return DagRunInfo(plain_utc(info.run_after), DataInterval(plain_utc(start), plain_utc(end)))


def plain_utc(value: datetime) -> datetime:
    """``value`` as a stdlib UTC datetime (a user's timetable may answer in pendulum)."""
    return normalize_datetime(to_utc(value))
