"""``tradewind dags …``: listings from the metastore, trigger, pause, show, test, backfill."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun
from tests.unit.cli.conftest import Exit, Invoke

DAG_FILE = """
from datetime import datetime, timedelta
from cluster.sdk import DAG, Param
from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator

with DAG("cli_demo", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False,
         params={"n": Param(1, type="integer", minimum=0)}, tags=["demo"]) as dag:
    first = BashOperator(task_id="first", bash_command="echo {{ ds }}")
    second = PythonOperator(task_id="second", python_callable=lambda: 42)
    first >> second
"""


@pytest.fixture
def with_dags(cli_env: dict[str, str], ok: Invoke, migrated: None) -> Path:
    folder = Path(cli_env["TRADEWIND_HOME"]) / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "demo.py").write_text(DAG_FILE)
    (folder / "broken.py").write_text("# a dag file\nraise RuntimeError('broken on purpose')\n")
    cli_env["TRADEWIND__CORE__LOAD_EXAMPLES"] = "false"
    ok("dags", "reserialize")
    return folder


def test_list_shows_schedule_and_task_count(ok: Invoke, with_dags: Path) -> None:
    listing = json.loads(ok("dags", "list", "-o", "json").stdout)
    assert [(d["dag_id"], d["schedule"], d["task_count"], d["is_paused"]) for d in listing] == [
        ("cli_demo", "@daily", 2, True)
    ]


def test_the_table_piped_is_fixed_width_text_with_whole_values(ok: Invoke, with_dags: Path) -> None:
    """Off a terminal the table is plain text (rich would cut each row to 80 columns):
    the header, a rule, one line per DAG, every value whole and the columns aligned."""
    header, rule, row = ok("dags", "list").stdout.splitlines()
    fileloc = str(with_dags / "demo.py")
    width = len(fileloc)
    assert (
        header
        == f"dag_id   | {'fileloc'.ljust(width)} | owners  | is_paused | schedule | task_count"
    )
    assert rule == "=+=".join("=" * n for n in (8, width, 7, 9, 8, 10))
    assert row == f"cli_demo | {fileloc} | airflow | True      | @daily   | 2"


def test_import_errors_are_listed(ok: Invoke, with_dags: Path) -> None:
    errors = json.loads(ok("dags", "list-import-errors", "-o", "json").stdout)
    assert [(Path(e["filepath"]).name, e["error"]) for e in errors] == [
        ("broken.py", "RuntimeError: broken on purpose (broken.py, line 2)")
    ]


def test_show_json_and_dot(ok: Invoke, with_dags: Path) -> None:
    shown = json.loads(ok("dags", "show", "cli_demo", "-o", "json").stdout)
    assert shown["schedule"] == "@daily"
    assert {t["task_id"]: t["downstream_task_ids"] for t in shown["tasks"]} == {
        "first": ["second"],
        "second": [],
    }
    assert '"first" -> "second";' in ok("dags", "show", "cli_demo").stdout


def test_trigger_validates_params_and_creates_a_queued_run(
    ok: Invoke, main: Callable[..., Exit], with_dags: Path, metastore: SessionFactory
) -> None:
    created = json.loads(
        ok("dags", "trigger", "cli_demo", "-c", '{"n": 3}', "-r", "r1", "-o", "json").stdout
    )
    assert created[0]["state"] == "queued"
    assert created[0]["conf"] == {"n": 3}
    bad = main("dags", "trigger", "cli_demo", "-c", '{"n": -1}')
    assert bad.is_one_line_error and "param 'n'" in bad.err
    again = main("dags", "trigger", "cli_demo", "-r", "r1")
    assert again.is_one_line_error and "already exists" in again.err
    with metastore() as session:
        assert session.scalars(select(DagRun.run_id).where(DagRun.dag_id == "cli_demo")).all() == [
            "r1"
        ]
    assert ok("dags", "state", "cli_demo", "r1").stdout.strip() == "queued"
    runs = json.loads(ok("dags", "list-runs", "cli_demo", "-o", "json").stdout)
    assert [r["run_id"] for r in runs] == ["r1"]


def test_pause_and_unpause(ok: Invoke, with_dags: Path) -> None:
    assert "paused: False" in ok("dags", "unpause", "cli_demo").stdout
    assert json.loads(ok("dags", "list", "-o", "json").stdout)[0]["is_paused"] is False
    assert "paused: True" in ok("dags", "pause", "cli_demo").stdout


def test_test_runs_the_whole_dag_in_process(ok: Invoke, with_dags: Path) -> None:
    output = ok("dags", "test", "cli_demo", "2024-03-01").stdout
    assert "first" in output and "second" in output
    assert output.strip().endswith("DAG run success")


def test_backfill_creates_one_run_per_interval(
    ok: Invoke, with_dags: Path, metastore: SessionFactory
) -> None:
    output = ok(
        "dags", "backfill", "cli_demo", "-s", "2024-01-01", "-e", "2024-01-03", "--no-wait"
    ).stdout
    assert "3 runs created" in output
    with metastore() as session:
        runs = session.scalars(
            select(DagRun).where(DagRun.run_type == "backfill").order_by(DagRun.logical_date)
        )
        assert [r.logical_date.date().isoformat() for r in runs] == [
            "2024-01-01",
            "2024-01-02",
            "2024-01-03",
        ]
    again = ok(
        "dags", "backfill", "cli_demo", "-s", "2024-01-01", "-e", "2024-01-03", "--no-wait"
    ).stdout
    assert "0 runs created" in again


def test_delete_removes_records(ok: Invoke, with_dags: Path, metastore: SessionFactory) -> None:
    ok("dags", "trigger", "cli_demo")
    assert "1 runs" in ok("dags", "delete", "cli_demo", "--yes").stdout
    assert json.loads(ok("dags", "list", "-o", "json").stdout) == []
    with metastore() as session:
        assert session.scalars(select(DagRun)).all() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dags", "show", "nope"), "DAG 'nope' not found"),
        (("dags", "trigger", "nope"), "DAG 'nope' not found"),
        (("dags", "trigger", "cli_demo", "-c", "[1]"), "must be a JSON object"),
        (("dags", "trigger", "cli_demo", "-l", "yesterday"), "is not an ISO date"),
        (("dags", "pause", "nope"), "DAG 'nope' not found"),
        (("dags", "state", "cli_demo", "no-such-run"), "not found"),
        (("dags", "list-runs", "nope"), "DAG 'nope' not found"),
        (
            ("dags", "backfill", "cli_demo", "-s", "2024-02-01", "-e", "2024-01-01"),
            "before --start-date",
        ),
        (("dags", "list", "-o", "xml"), "'xml' is not one of"),
    ],
)
def test_bad_input_is_one_line(
    main: Callable[..., Exit], with_dags: Path, args: tuple[str, ...], message: str
) -> None:
    result = main(*args)
    assert result.is_one_line_error, result
    assert message in result.err
