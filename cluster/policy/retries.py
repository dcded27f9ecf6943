"""When a failed try is retried, and when the next try may start.

Airflow's formula, without its jitter: the delay is ``retry_delay``, or with
exponential backoff ``ceil(retry_delay * 2 ** (try_number - 1))`` seconds (at least
one), capped at one day and at ``max_retry_delay``. Airflow adds a hash-based jitter
that can double the backoff; we keep the lower bound so tests and operators can
predict the time exactly.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from cluster.dagfiles.serialized import SerializedTask

#: Airflow's ``core.max_task_retry_delay`` default: no backoff grows past a day
MAX_RETRY_DELAY = 24 * 60 * 60.0


def should_retry(task: SerializedTask, try_number: int) -> bool:
    """Whether failed try ``try_number`` (1-based) is followed by another try.

    With ``retries=2`` tries 1 and 2 are retried and try 3 fails for good. A task
    that raised ``TaskFailedNoRetry`` is never retried; the runner decides that.
    """
    return try_number <= task.retries


def retry_delay(task: SerializedTask, try_number: int) -> timedelta:
    """The wait after failed try ``try_number`` before the next one may start."""
    seconds = task.retry_delay
    if task.retry_exponential_backoff:
        backoff = max(math.ceil(seconds * 2 ** (try_number - 1)), 1)
        seconds = min(float(backoff), MAX_RETRY_DELAY)
        if task.max_retry_delay:
            seconds = min(seconds, task.max_retry_delay)
    return timedelta(seconds=seconds)


def next_try_at(task: SerializedTask, try_number: int, failed_at: datetime) -> datetime:
    """When the try after failed try ``try_number`` may be scheduled."""
    return failed_at + retry_delay(task, try_number)
