"""``BaseSensorOperator``: poke until a condition holds, in ``poke`` or ``reschedule`` mode.

In ``poke`` mode one try loops, sleeping between pokes (the sleep and the clock are
injectable attributes, ``_sleep`` and ``_clock``). In ``reschedule`` mode each try
pokes once and raises :class:`~cluster.errors.TaskRescheduled` to give its slot back.
The timeout counts from ``ti.sensor_started_at`` (the first poke of the first try) or,
without it, from this try's first poke.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cluster.errors import (
    SensorTimeout,
    TaskFailedNoRetry,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeout,
)
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.dates import utcnow
from cluster.sdk.definitions import definition_error

VALID_MODES = ("poke", "reschedule")


class PokeReturnValue:
    """What ``poke`` may return to finish with an XCom value: ``PokeReturnValue(True, x)``."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return bool(self.is_done)

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


def _seconds(value: timedelta | float | int) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class BaseSensorOperator(BaseOperator):
    """Wait for something by calling :meth:`poke` until it returns true.

    :param timeout: seconds (or timedelta) before :class:`SensorTimeout`.
    :param soft_fail: end as skipped instead of failed on timeout.
    :param exponential_backoff: double the interval after each poke, capped by ``max_wait``.
    :raises DagDefinitionError: for an unknown mode or negative intervals.
    """

    ui_color = "#e6f1f2"
    valid_modes = VALID_MODES

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = 7 * 24 * 60 * 60,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in VALID_MODES:
            raise definition_error(
                f"The mode must be one of {list(VALID_MODES)},'{self.dag_id}.{self.task_id}'; "
                f"received '{mode}'.",
                self._site,
            )
        self.poke_interval = _seconds(poke_interval)
        self.timeout = _seconds(timeout)
        if self.poke_interval < 0 or self.timeout < 0:
            raise definition_error(
                f"poke_interval and timeout of {self.task_id!r} must be non-negative", self._site
            )
        self.soft_fail = soft_fail
        self.mode = mode
        self.exponential_backoff = exponential_backoff
        self.max_wait = _seconds(max_wait) if max_wait is not None else None
        self.silent_fail = silent_fail
        self.never_fail = never_fail
        self._sleep: Callable[[float], None] = time.sleep
        self._clock: Callable[[], datetime] = utcnow

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Check the condition once; override in subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke()")

    def _poke_once(self, context: dict[str, Any]) -> tuple[bool, Any]:
        try:
            result = self.poke(context)
        except (TaskFailedNoRetry, TaskTimeout) as exc:
            if self.soft_fail:
                raise TaskSkipped("Skipping due to soft_fail is set to True.") from exc
            raise
        if isinstance(result, PokeReturnValue):
            return bool(result.is_done), result.xcom_value
        return bool(result), None

    def next_poke_interval(self, poke_count: int, elapsed: float) -> float:
        """The wait before the next poke: fixed, or doubling with exponential backoff."""
        if not self.exponential_backoff:
            return self.poke_interval
        interval = self.poke_interval * (2 ** max(poke_count - 1, 0))
        if self.max_wait is not None:
            interval = min(interval, self.max_wait)
        return max(min(interval, self.timeout - elapsed), 0.0)

    def execute(self, context: dict[str, Any]) -> Any:
        ti = context["ti"]
        started = getattr(ti, "sensor_started_at", None) if self.reschedule else None
        started = started or self._clock()
        poke_count = max(int(getattr(ti, "try_number", 1)), 1) if self.reschedule else 1
        while True:
            done, xcom_value = self._poke_once(context)
            if done:
                return xcom_value
            elapsed = (self._clock() - started).total_seconds()
            if elapsed > self.timeout:
                self._time_out(elapsed)
            interval = self.next_poke_interval(poke_count, elapsed)
            if self.reschedule:
                raise TaskRescheduled(self._clock() + timedelta(seconds=interval))
            self._sleep(interval)
            poke_count += 1

    def _time_out(self, elapsed: float) -> None:
        message = (
            f"Sensor has timed out; run duration of {elapsed:.1f} seconds exceeds "
            f"the specified timeout of {self.timeout}."
        )
        if self.soft_fail:
            raise TaskSkipped(message)
        raise SensorTimeout(message)
