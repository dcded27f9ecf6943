"""How busy this machine's processors are, read from ``/proc/stat`` at most every so often.

The local pool asks it before a cold start: while every core is busy, one more process
importing a DAG to run quick tries only takes CPU from the processes that already run
them. Where ``/proc/stat`` is missing (not Linux) the processors always read idle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: seconds between two reads of ``/proc/stat``
INTERVAL = 0.1


def read_proc_stat() -> tuple[int, int] | None:
    """``(busy, total)`` clock ticks of all processors since boot, ``None`` without /proc."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


class CpuGauge:
    """The share of time the processors were busy over the last completed interval."""

    def __init__(
        self,
        *,
        read: Callable[[], tuple[int, int] | None] = read_proc_stat,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._clock = clock
        self._last = read()
        self._read_at = clock()
        self._share = 0.0

    def busy(self) -> float:
        """Between 0 (idle) and 1 (every processor busy)."""
        now = self._clock()
        if now - self._read_at < INTERVAL:
            return self._share
        current = self._read()
        if current is not None and self._last is not None and current[1] > self._last[1]:
            self._share = (current[0] - self._last[0]) / (current[1] - self._last[1])
        self._last, self._read_at = current, now
        return self._share
