"""A fake wall clock for tests: time moves only when the test moves it.

Its time is kept in shared memory, so processes forked after it was made (the local
pool's workers) read the same time as the test: a try's end and its retry date follow
the test's clock, as the claim does.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Call it for the time; :meth:`set` and :meth:`advance` move it, never back."""

    def __init__(self, start: datetime) -> None:
        self._timestamp = multiprocessing.RawValue("d", start.timestamp())

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self._timestamp.value, UTC)

    def set(self, when: datetime) -> None:
        assert when >= self(), f"the fake clock cannot go back ({when} < {self()})"
        self._timestamp.value = when.timestamp()

    def advance(self, seconds: float) -> None:
        self.set(self() + timedelta(seconds=seconds))
