"""``tradewind dags test``'s in-process run behaves as Airflow's ``dags test``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.errors import ParamValidationError
from cluster.execution.inprocess import test_dag as run_dag_test
from cluster.operators.empty import EmptyOperator
from cluster.operators.latest_only import LatestOnlyOperator
from cluster.sdk import DAG
from cluster.states import DagRunState, TaskState
from tests.dagfiles import write_dag

LOGICAL = datetime(2026, 11, 1, tzinfo=UTC)

DAG_FILE = """
from datetime import datetime, timedelta
from pathlib import Path
from cluster.sdk import DAG, Param, task

with DAG("in_process", schedule="@daily", start_date=datetime(2024, 1, 1),
         params={"rows": Param(type="integer")}):
    @task(retries=@RETRIES@, retry_delay=timedelta(seconds=30))
    def extract(params=None, test_mode=None, ti=None):
        Path("@SIDE_EFFECTS@", f"try{ti.try_number}").write_text(repr((params, test_mode)))
        if ti.try_number <= @FAILURES@:
            raise ValueError("flaky")
        return params["rows"]

    @task
    def load(rows, data_interval_start=None, data_interval_end=None):
        interval = f"{rows} {data_interval_start.isoformat()} {data_interval_end.isoformat()}"
        Path("@SIDE_EFFECTS@", "loaded").write_text(interval)

    load(extract())
"""


def dag_with(tmp_path: Path, *, retries: int, failures: int) -> DAG:
    path = write_dag(
        tmp_path / "in_process.py",
        DAG_FILE,
        retries=retries,
        failures=failures,
        side_effects=tmp_path,
    )
    (dag,) = dags_in_module(load_module(path))
    return dag


def test_a_failed_task_fails_its_run_and_its_downstream(tmp_path: Path) -> None:
    dag = dag_with(tmp_path, retries=0, failures=1)

    outcome, results = run_dag_test(dag, logical_date=LOGICAL, conf={"rows": 3})

    assert outcome is DagRunState.FAILED
    assert {t: r.state for t, r in results.items()} == {
        "extract": TaskState.FAILED,
        "load": TaskState.UPSTREAM_FAILED,
    }
    assert results["extract"].message == "ValueError: flaky"


def test_a_failed_try_is_retried_after_its_delay(tmp_path: Path) -> None:
    dag = dag_with(tmp_path, retries=2, failures=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # stops the run at its first wait
        waits.append(seconds)
        raise _Slept

    with pytest.raises(_Slept):
        run_dag_test(dag, logical_date=LOGICAL, conf={"rows": 3}, sleep=sleep)
    assert len(waits) == 1 and 25 < waits[0] <= 30  # retry_delay, not a busy loop


class _Slept(Exception):
    """Ends a test run at its first wait."""


def test_retries_run_until_a_try_succeeds(tmp_path: Path) -> None:
    dag = dag_with(tmp_path, retries=2, failures=2)
    for task in dag.tasks:
        task.retry_delay = timedelta(0)

    outcome, results = run_dag_test(dag, logical_date=LOGICAL, conf={"rows": 3})

    assert outcome is DagRunState.SUCCESS
    assert results["extract"].try_number == 3
    assert sorted(p.name for p in tmp_path.glob("try*")) == ["try1", "try2", "try3"]


def test_tasks_see_validated_params_test_mode_off_and_the_inferred_interval(
    tmp_path: Path,
) -> None:
    dag = dag_with(tmp_path, retries=0, failures=0)

    outcome, _ = run_dag_test(dag, logical_date=LOGICAL, conf={"rows": 7})

    assert outcome is DagRunState.SUCCESS
    assert (tmp_path / "try1").read_text() == repr(({"rows": 7}, False))
    # a manual run of a daily DAG covers the day before its logical date, as in Airflow
    assert (tmp_path / "loaded").read_text() == (
        "7 2026-10-31T00:00:00+00:00 2026-11-01T00:00:00+00:00"
    )


def test_a_missing_required_param_is_one_error_before_anything_runs(tmp_path: Path) -> None:
    dag = dag_with(tmp_path, retries=0, failures=0)

    with pytest.raises(ParamValidationError, match="'rows'"):
        run_dag_test(dag, logical_date=LOGICAL)

    assert list(tmp_path.glob("try*")) == []


SETUP_TEARDOWN_FILE = """
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, setup, task, teardown

@setup
def create():
    return "resource-1"

@teardown
def delete(resource):
    Path("@SIDE_EFFECTS@", "deleted").write_text(resource)

@task
def work(resource):
    raise ValueError("work fails")

with DAG("resources", schedule=None, start_date=datetime(2024, 1, 1)):
    made = create()
    with delete(made):
        work(made)
"""


def test_a_teardown_runs_after_failed_work_and_the_work_fails_the_run(tmp_path: Path) -> None:
    path = write_dag(tmp_path / "resources.py", SETUP_TEARDOWN_FILE, side_effects=tmp_path)
    (dag,) = dags_in_module(load_module(path))

    outcome, results = run_dag_test(dag, logical_date=LOGICAL)

    assert outcome is DagRunState.FAILED
    assert {t: r.state for t, r in results.items()} == {
        "create": TaskState.SUCCESS,
        "work": TaskState.FAILED,
        "delete": TaskState.SUCCESS,
    }
    assert (tmp_path / "deleted").read_text() == "resource-1"


def test_latest_only_skips_in_dags_test_as_in_airflow() -> None:
    """Airflow's test run is manual but not externally triggered: for a past logical date
    ``LatestOnlyOperator`` skips its downstream (Airflow 2.10.5's ``dags test`` of its
    ``latest_only`` example: task1 skipped)."""
    with DAG("latest_only", schedule=timedelta(hours=4), start_date=datetime(2021, 1, 1)) as dag:
        LatestOnlyOperator(task_id="latest_only") >> EmptyOperator(task_id="task1")

    outcome, results = run_dag_test(dag, logical_date=LOGICAL, conf={})

    assert outcome is DagRunState.SUCCESS
    assert {t: r.state for t, r in results.items()} == {
        "latest_only": TaskState.SUCCESS,
        "task1": TaskState.SKIPPED,
    }
