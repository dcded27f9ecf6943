"""A fake clock for tests: time moves only when the test (or an injected ``sleep``) moves it.

Its time is kept in shared memory, so processes forked after it was made (the local
pool's workers) read the same time as the test: a try's end and its retry date follow
the test's clock, as the claim does.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

START = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


class FakeClock:
    """Call it for the time (an aware ``datetime``); :meth:`epoch` for ``time.time()``'s.

    :meth:`set`, :meth:`advance` and :meth:`sleep` move it, never back.
    :ivar sleeps: every :meth:`sleep`, in seconds, for code given it as ``sleep_func``.
    """

    def __init__(self, start: datetime = START) -> None:
        self._timestamp = multiprocessing.RawValue("d", start.timestamp())
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self._timestamp.value, UTC)

    def epoch(self) -> float:
        return float(self._timestamp.value)

    def set(self, when: datetime) -> None:
        assert when >= self(), f"the fake clock cannot go back ({when} < {self()})"
        self._timestamp.value = when.timestamp()

    def advance(self, by: float | timedelta) -> None:
        seconds = by.total_seconds() if isinstance(by, timedelta) else by
        self.set(self() + timedelta(seconds=seconds))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
