"""Task-level callbacks of one try, as Airflow's task runner calls them: on_execute
before execute, then one of success / skipped / retry / failure by the outcome."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import TaskSkipped
from cluster.execution.execute import execute_try
from cluster.operators.python import PythonOperator
from cluster.sdk import DAG
from cluster.sdk.testing import InMemoryTaskInstance, make_context


class _Ti(InMemoryTaskInstance):
    def pushed_xcoms(self) -> list[tuple[str, Any]]:
        return []

    def skipped_downstream(self) -> list[str]:
        return []


def _skip() -> None:
    raise TaskSkipped("nothing to do")


def _fail() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize(
    ("body", "retries", "expected"),
    [
        (lambda: 1, 0, ["on_execute", "on_success"]),
        (_skip, 0, ["on_execute", "on_skipped"]),
        (_fail, 1, ["on_execute", "on_retry"]),
        (_fail, 0, ["on_execute", "on_failure"]),
    ],
)
def test_callbacks_follow_the_outcome(body: Any, retries: int, expected: list[str]) -> None:
    calls: list[str] = []

    def note(name: str) -> Any:
        return lambda context: calls.append(name) if context["ti"] else None

    with DAG("d"):
        task = PythonOperator(
            task_id="t",
            python_callable=body,
            retries=retries,
            on_execute_callback=note("on_execute"),
            on_success_callback=[note("on_success")],
            on_skipped_callback=note("on_skipped"),
            on_retry_callback=note("on_retry"),
            on_failure_callback=note("on_failure"),
        )
    ti = _Ti("d", "t", max_tries=retries)
    execute_try(task, make_context(task, ti=ti), timeout=None, xcom_max_size=1000)
    assert calls == expected


def test_a_failing_on_execute_callback_does_not_fail_the_try() -> None:
    def broken(context: Any) -> None:
        raise RuntimeError("callback bug")

    with DAG("d"):
        task = PythonOperator(task_id="t", python_callable=lambda: 1, on_execute_callback=broken)
    outcome = execute_try(
        task, make_context(task, ti=_Ti("d", "t")), timeout=None, xcom_max_size=1000
    )
    assert outcome.state == "success"
