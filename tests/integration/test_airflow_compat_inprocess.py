"""An Airflow DAG file with no line changed, end to end: DAG processing (forked child),
scheduler loop, production pool, metastore (SQLite, MariaDB and PostgreSQL), with
``core.airflow_compat`` on as by default.

The scheduler command prepares its process for user code before it processes DAG files
(``prepare_user_code``, which installs the ``airflow`` import hook); the pool's runner
does the same in its own process. The test does what the scheduler command does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.dagfiles.environment import prepare_user_code
from cluster.sdk import airflow_compat
from tests.integration.scheduler_harness import InProcessScheduler, task_states

UNCHANGED = """\
import pendulum
from airflow.decorators import task
from airflow.models.dag import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import get_current_context
from airflow.utils.trigger_rule import TriggerRule

with DAG("unchanged_airflow", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
    @task
    def produce() -> int:
        return len(get_current_context()["run_id"])

    @task
    def fail():
        raise RuntimeError("on purpose")

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def consume(n: int) -> None:
        assert n > 0

    consume(produce()) >> BashOperator(task_id="report", bash_command="echo done")
    fail()
"""


@pytest.fixture
def hook_in_this_process(inprocess: InProcessScheduler) -> Iterator[None]:
    prepare_user_code(inprocess.settings)
    yield
    airflow_compat.uninstall()


def test_unchanged_airflow_file_runs(
    inprocess: InProcessScheduler,
    dags_folder: Path,
    run_id: str,
    hook_in_this_process: None,
) -> None:
    (dags_folder / "unchanged_airflow.py").write_text(UNCHANGED)
    inprocess.process_dags()
    inprocess.trigger("unchanged_airflow", run_id)

    finished = inprocess.run_until_finished([("unchanged_airflow", run_id)])

    assert finished == {("unchanged_airflow", run_id): "failed"}  # ``fail`` fails it
    assert task_states(inprocess.sessions, "unchanged_airflow", run_id) == {
        "produce": "success",
        "consume": "success",
        "report": "success",
        "fail": "failed",
    }
