"""``@task.run_if`` / ``@task.skip_if`` skip a try on its worker as Airflow 2.10 does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cluster.execution.inprocess import test_dag as run_dag_test
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, run_if, skip_if, task
from cluster.states import DagRunState, TaskState

LOGICAL = datetime(2026, 11, 1, tzinfo=UTC)


def ends_with_run(context: dict[str, Any]) -> bool:
    return bool(context["task_instance"].task_id.endswith("_do_run"))


def test_a_false_run_if_and_a_true_skip_if_skip_the_try_before_it_runs(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()

    def touch(name: str) -> None:
        (ran / name).touch()

    with DAG("conditions", schedule=None, start_date=LOGICAL) as dag:

        @task.run_if(ends_with_run)
        @task
        def echo_do_run() -> None:
            touch("echo_do_run")

        @task.run_if(ends_with_run, skip_message="not today")
        @task
        def echo_do_skip() -> None:
            touch("echo_do_skip")

        @skip_if(lambda context: (True, "told to skip"))
        @task
        def skipped_with_reason() -> None:
            touch("skipped_with_reason")

        @run_if(lambda context: (True, None))
        @task(pre_execute=lambda context: touch("own_hook"))
        def keeps_its_own_hook() -> None:
            touch("keeps_its_own_hook")

        echo_do_run()
        echo_do_skip() >> EmptyOperator(task_id="after_skip")
        skipped_with_reason()
        keeps_its_own_hook()

    outcome, results = run_dag_test(dag, logical_date=LOGICAL)

    assert outcome is DagRunState.SUCCESS
    assert {t: r.state for t, r in results.items()} == {
        "echo_do_run": TaskState.SUCCESS,
        "echo_do_skip": TaskState.SKIPPED,
        "after_skip": TaskState.SKIPPED,
        "skipped_with_reason": TaskState.SKIPPED,
        "keeps_its_own_hook": TaskState.SUCCESS,
    }
    assert sorted(p.name for p in ran.iterdir()) == [
        "echo_do_run",
        "keeps_its_own_hook",
        "own_hook",
    ]


def test_conditions_apply_only_to_task_functions() -> None:
    with pytest.raises(TypeError, match="run_if can only be used with task"):
        task.run_if(ends_with_run)(lambda: None)
    with pytest.raises(TypeError, match="skip_if can only be used with task"):
        skip_if(ends_with_run)(EmptyOperator)
