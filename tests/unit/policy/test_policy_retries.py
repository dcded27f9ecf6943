"""Retry decisions and Airflow's (jitter-free) backoff."""

from __future__ import annotations

from datetime import timedelta

from policy_dags import utc

from cluster.dagfiles.serialized import SerializedTask
from cluster.policy import next_try_at, retry_delay, should_retry

FAILED_AT = utc(2024, 1, 1, 12)


def task(**fields: object) -> SerializedTask:
    return SerializedTask(task_id="t", operator="BashOperator", **fields)  # type: ignore[arg-type]


def test_a_failure_is_retried_while_try_number_is_at_most_retries() -> None:
    t = task(retries=2)
    assert [should_retry(t, n) for n in (1, 2, 3)] == [True, True, False]
    assert not should_retry(task(retries=0), 1)


def test_plain_delay() -> None:
    assert next_try_at(task(retry_delay=300.0), 1, FAILED_AT) == FAILED_AT + timedelta(minutes=5)
    assert retry_delay(task(retry_delay=300.0), 4) == timedelta(minutes=5)


def test_exponential_backoff_doubles_per_try() -> None:
    t = task(retry_delay=10.0, retry_exponential_backoff=True)
    assert [retry_delay(t, n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_backoff_is_capped_by_max_retry_delay_and_one_day() -> None:
    capped = task(retry_delay=60.0, retry_exponential_backoff=True, max_retry_delay=300.0)
    assert retry_delay(capped, 10) == timedelta(minutes=5)
    uncapped = task(retry_delay=60.0, retry_exponential_backoff=True)
    assert retry_delay(uncapped, 40) == timedelta(days=1)


def test_backoff_is_at_least_one_second() -> None:
    t = task(retry_delay=0.0, retry_exponential_backoff=True)
    assert retry_delay(t, 1) == timedelta(seconds=1)
