"""``tradewind tasks test|run|state|clear --map-index``: one instance of a mapped task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import TaskInstance
from tests.unit.cli.conftest import Exit, Invoke

MAPPED_FILE = """
from datetime import datetime
from cluster.sdk import DAG, task

with DAG("cli_mapped", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def shout(word):
        print("WORD", word.upper())
        return word.upper()

    shout.expand(word=["a", "b", "c"])
"""


@pytest.fixture
def mapped_run(
    cli_env: dict[str, str], ok: Invoke, migrated: None, metastore: SessionFactory
) -> str:
    folder = Path(cli_env["TRADEWIND_HOME"]) / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "mapped.py").write_text(MAPPED_FILE)
    cli_env["TRADEWIND__CORE__LOAD_EXAMPLES"] = "false"
    ok("dags", "reserialize")
    ok("dags", "trigger", "cli_mapped", "-r", "r1")
    now = datetime.now(UTC)
    rows = [
        {"dag_id": "cli_mapped", "run_id": "r1", "task_id": "shout", "map_index": i,
         "state": state, "try_number": 1, "start_date": now, "end_date": now}
        for i, state in enumerate(["success", "failed", "success"])
    ]  # fmt: skip
    with metastore.begin() as session:
        session.execute(insert(TaskInstance), rows)
    return "r1"


def test_state_and_test_take_the_map_index(
    ok: Invoke, main: Callable[..., Exit], mapped_run: str
) -> None:
    assert ok("tasks", "state", "cli_mapped", "shout", "r1", "-m", "1").stdout.strip() == "failed"
    assert "shout: success" in ok("tasks", "test", "cli_mapped", "shout", "--map-index", "2").stdout
    refused = main("tasks", "test", "cli_mapped", "shout")
    assert refused.is_one_line_error and "give the instance with --map-index" in refused.err


def test_clear_and_run_one_mapped_instance(
    ok: Invoke, mapped_run: str, metastore: SessionFactory
) -> None:
    output = ok("tasks", "clear", "cli_mapped", "-m", "1", "--yes").stdout
    assert "shout[1]" in output and "Cleared 1 task instances" in output
    assert "shout: success" in ok("tasks", "run", "cli_mapped", "shout", "r1", "-m", "1").stdout
    with metastore() as session:
        states = dict(session.execute(select(TaskInstance.map_index, TaskInstance.state)).all())
    assert states == {0: "success", 1: "success", 2: "success"}
