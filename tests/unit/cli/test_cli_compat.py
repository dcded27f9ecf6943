"""``tradewind compat check``: the report a team reads before switching from Airflow."""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Callable, Iterator

import pytest
from click.testing import Result

from cluster.sdk import airflow_compat

Invoke = Callable[..., Result]
EXAMPLES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow" / "example_dags"


def test_supported_folder_exits_zero(tradewind: Invoke, tmp_path: pathlib.Path) -> None:
    for name in ("tutorial.py", "example_bash_operator.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    result = tradewind("compat", "check", str(tmp_path), "-o", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["file"] for r in rows} == {"tutorial.py", "example_bash_operator.py"}
    assert all(r["supported"] for r in rows)


def test_unsupported_use_exits_one_and_says_why(tradewind: Invoke, tmp_path: pathlib.Path) -> None:
    shutil.copy(EXAMPLES / "example_subdag_operator.py", tmp_path)
    result = tradewind("compat", "check", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "1 files checked: 2 unsupported uses in 1 files"
    result = tradewind("compat", "check", str(tmp_path), "-o", "json")
    unsupported = {r["airflow"]: r["line"] for r in json.loads(result.output) if not r["supported"]}
    # Airflow keeps this example's helper in its own package; SubDAGs are gone in Airflow 3
    assert unsupported == {
        "airflow.example_dags.subdags.subdag": 33,
        "airflow.operators.subdag": 36,
    }


def test_default_is_the_dags_folder(tradewind: Invoke, cli_env: dict[str, str]) -> None:
    dags = pathlib.Path(cli_env["TRADEWIND_HOME"]) / "dags"
    dags.mkdir()
    (dags / "dag.py").write_text("from airflow.providers.amazon.aws.hooks.s3 import S3Hook\n")
    result = tradewind("compat", "check", "-o", "json")
    assert result.exit_code == 1
    (row,) = json.loads(result.output)
    assert (row["file"], row["line"], row["supported"]) == ("dag.py", 1, False)


UNCHANGED = """\
import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.operators.bash import BashOperator
from airflow.utils.trigger_rule import TriggerRule

with DAG("unchanged", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1), catchup=False):
    @task
    def double(n: int = 21) -> int:
        return n * 2

    double() >> BashOperator(
        task_id="report", bash_command="echo done", trigger_rule=TriggerRule.ALL_DONE
    )
"""


@pytest.fixture
def no_hook_after() -> Iterator[None]:
    """``prepare_user_code`` installs the import hook in this process: take it away after."""
    yield
    airflow_compat.uninstall()


def test_unchanged_airflow_file_is_processed_and_run_by_the_cli(
    ok: Invoke, cli_env: dict[str, str], migrated: None, no_hook_after: None
) -> None:
    dags = pathlib.Path(cli_env["TRADEWIND_HOME"]) / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "unchanged.py").write_text(UNCHANGED)
    cli_env["TRADEWIND__CORE__LOAD_EXAMPLES"] = "false"
    ok("dags", "reserialize")
    assert ok("dags", "list-import-errors", "-o", "json").stdout.strip() in ("[]", "No data found")
    assert [d["dag_id"] for d in json.loads(ok("dags", "list", "-o", "json").stdout)] == [
        "unchanged"
    ]
    output = ok("dags", "test", "unchanged", "2024-03-01").stdout
    assert output.strip().endswith("DAG run success")
    assert "double" in output and "report" in output
    assert "double: success" in ok("tasks", "test", "unchanged", "double").stdout
