"""``tradewind tasks …``: list, test, render, clear, run and inspect task instances."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, TaskInstance
from tests.unit.cli.conftest import Exit, Invoke
from tests.unit.cli.test_cli_dags import DAG_FILE


@pytest.fixture
def with_run(cli_env: dict[str, str], ok: Invoke, migrated: None, metastore: SessionFactory) -> str:
    folder = Path(cli_env["TRADEWIND_HOME"]) / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "demo.py").write_text(DAG_FILE)
    cli_env["TRADEWIND__CORE__LOAD_EXAMPLES"] = "false"
    ok("dags", "reserialize")
    ok("dags", "trigger", "cli_demo", "-r", "r1")
    now = datetime.now(UTC)
    with metastore.begin() as session:
        session.execute(
            insert(TaskInstance),
            [
                {
                    "dag_id": "cli_demo",
                    "run_id": "r1",
                    "task_id": "first",
                    "state": "success",
                    "try_number": 1,
                    "start_date": now,
                    "end_date": now,
                },
                {
                    "dag_id": "cli_demo",
                    "run_id": "r1",
                    "task_id": "second",
                    "state": "failed",
                    "try_number": 1,
                    "start_date": now,
                    "end_date": now,
                },
            ],
        )
    return "r1"


def test_list_and_tree(ok: Invoke, with_run: str) -> None:
    assert ok("tasks", "list", "cli_demo").stdout.split() == ["first", "second"]
    assert "first >> second" in ok("tasks", "list", "cli_demo", "--tree").stdout


def test_states_for_dag_run_and_state(ok: Invoke, with_run: str) -> None:
    states = json.loads(ok("tasks", "states-for-dag-run", "cli_demo", "r1", "-o", "json").stdout)
    assert {s["task_id"]: s["state"] for s in states} == {"first": "success", "second": "failed"}
    assert ok("tasks", "state", "cli_demo", "second", "r1").stdout.strip() == "failed"


def test_render_prints_rendered_fields(ok: Invoke, with_run: str) -> None:
    output = ok("tasks", "render", "cli_demo", "first", "2024-05-06").stdout
    assert "property: bash_command" in output
    assert "echo 2024-05-06" in output


def test_test_runs_one_task_without_recording(
    ok: Invoke, with_run: str, metastore: SessionFactory
) -> None:
    assert "second: success" in ok("tasks", "test", "cli_demo", "second").stdout
    with metastore() as session:
        assert (
            session.scalar(select(TaskInstance.state).where(TaskInstance.task_id == "second"))
            == "failed"
        )


def test_clear_only_failed_requeues_the_run(
    ok: Invoke, with_run: str, metastore: SessionFactory
) -> None:
    output = ok("tasks", "clear", "cli_demo", "--only-failed", "--yes").stdout
    assert "Cleared 1 task instances" in output
    with metastore() as session:
        states = dict(session.execute(select(TaskInstance.task_id, TaskInstance.state)).all())
        assert states == {"first": "success", "second": "none"}
        assert session.scalar(select(DagRun.state).where(DagRun.run_id == "r1")) == "queued"


def test_run_executes_through_the_runner_and_records(
    ok: Invoke, with_run: str, metastore: SessionFactory
) -> None:
    assert "second: success" in ok("tasks", "run", "cli_demo", "second", "r1").stdout
    with metastore() as session:
        ti = session.scalars(select(TaskInstance).where(TaskInstance.task_id == "second")).one()
        assert (ti.state, ti.try_number) == ("success", 2)


def test_a_try_whose_runner_cannot_start_fails_with_the_reason_in_its_log(
    tradewind: Invoke, with_run: str, cli_env: dict[str, str], metastore: SessionFactory
) -> None:
    broken = {**cli_env, "TRADEWIND__CORE__FERNET_KEY": "not-a-fernet-key"}

    result = tradewind("tasks", "run", "cli_demo", "second", "r1", env=broken)

    assert result.exit_code == 1 and "second: failed" in result.stdout
    log = Path(cli_env["TRADEWIND_HOME"]) / "logs/dag_id=cli_demo/run_id=r1/task_id=second"
    text = (log / "attempt=2.log").read_text()
    assert "The task runner could not start on" in text
    assert "core.fernet_key" in text  # the real reason, not "exited before reporting"
    with metastore() as session:
        ti = session.scalars(select(TaskInstance).where(TaskInstance.task_id == "second")).one()
        assert (ti.state, ti.try_number) == ("failed", 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tasks", "list", "nope"), "DAG 'nope' not found"),
        (("tasks", "test", "cli_demo", "nope"), "has no task 'nope'"),
        (("tasks", "render", "cli_demo", "nope"), "has no task 'nope'"),
        (("tasks", "state", "cli_demo", "first", "no-run"), "not found"),
        (("tasks", "clear", "cli_demo", "-t", "(", "--yes"), "bad task regex"),
        (("tasks", "states-for-dag-run", "cli_demo", "no-run"), "not found"),
        (("tasks", "test", "cli_demo", "first", "not-a-date"), "is neither an ISO date"),
    ],
)
def test_bad_input_is_one_line(
    main: Callable[..., Exit], with_run: str, args: tuple[str, ...], message: str
) -> None:
    result = main(*args)
    assert result.is_one_line_error, result
    assert message in result.err


SETUP_TEARDOWN_FILE = """
from datetime import datetime
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG

with DAG("cli_resources", schedule=None, start_date=datetime(2024, 1, 1)):
    create = EmptyOperator(task_id="create").as_setup()
    with EmptyOperator(task_id="delete").as_teardown(setups=create):
        EmptyOperator(task_id="work") >> EmptyOperator(task_id="report")
    EmptyOperator(task_id="unrelated")
"""


def test_clearing_work_clears_its_setup_and_teardown(
    cli_env: dict[str, str], ok: Invoke, migrated: None, metastore: SessionFactory
) -> None:
    folder = Path(cli_env["TRADEWIND_HOME"]) / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "resources.py").write_text(SETUP_TEARDOWN_FILE)
    cli_env["TRADEWIND__CORE__LOAD_EXAMPLES"] = "false"
    ok("dags", "reserialize")
    ok("dags", "trigger", "cli_resources", "-r", "r1")
    now = datetime.now(UTC)
    tasks = ["create", "work", "report", "delete", "unrelated"]
    with metastore.begin() as session:
        session.execute(
            insert(TaskInstance),
            [
                {
                    "dag_id": "cli_resources",
                    "run_id": "r1",
                    "task_id": task_id,
                    "state": "success",
                    "try_number": 1,
                    "start_date": now,
                    "end_date": now,
                }
                for task_id in tasks
            ],
        )

    output = ok("tasks", "clear", "cli_resources", "-t", "^report$", "--yes").stdout

    assert "Cleared 3 task instances" in output
    with metastore() as session:
        states = dict(session.execute(select(TaskInstance.task_id, TaskInstance.state)).all())
    assert states == {
        "create": "none",
        "work": "success",
        "report": "none",
        "delete": "none",
        "unrelated": "success",
    }
