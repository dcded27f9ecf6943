"""``tradewind db``: migrate, check, reset and clean, and the refusal of an old schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select

from cluster.metastore.audit import list_events
from cluster.metastore.engine import SessionFactory
from cluster.metastore.migrate import head_revision
from cluster.metastore.models import DagRun, TaskInstance, Variable

OLD = datetime(2024, 1, 1, tzinfo=UTC)
RECENT = datetime(2024, 12, 1, tzinfo=UTC)
Invoke = Callable[..., Result]
Main = Callable[..., Any]  # returns the conftest's Exit
REPO = Path(__file__).resolve().parents[3]


def test_migrate_creates_the_schema_then_is_a_no_op(ok: Invoke, metastore: SessionFactory) -> None:
    first = ok("db", "migrate")
    assert f"to revision {head_revision()}" in first.output
    second = ok("db", "migrate")
    assert "nothing to do" in second.output
    with metastore() as session:
        events = [e.event for e in list_events(session=session)]
    assert events == ["cli.db.migrate"]


def test_check_fails_before_migrate_and_passes_after(ok: Invoke, main: Main) -> None:
    before = main("db", "check")
    assert before.is_one_line_error
    assert "run 'tradewind db migrate'" in before.err
    ok("db", "migrate")
    after = main("db", "check")
    assert after.code == 0 and after.err == ""
    assert head_revision() in after.out


@pytest.mark.parametrize(
    "args",
    [
        ["variables", "list"],
        ["variables", "set", "k", "v"],
        ["connections", "list"],
        ["pools", "list"],
        ["users", "list"],
        ["db", "clean", "--before", "2024-01-01"],
        ["rotate-fernet-key"],
    ],
)
def test_commands_refuse_an_unmigrated_metastore(main: Main, args: list[str]) -> None:
    result = main(*args)
    assert result.is_one_line_error
    assert "tradewind db migrate" in result.err


def test_reset_refuses_without_yes(main: Main, migrated: None) -> None:
    result = main("db", "reset")
    assert result.is_one_line_error
    assert "--yes" in result.err


def test_reset_with_yes_drops_all_data(
    ok: Invoke, migrated: None, metastore: SessionFactory
) -> None:
    ok("variables", "set", "k", "v")
    ok("db", "reset", "--yes")
    with metastore() as session:
        assert session.scalar(select(func.count()).select_from(Variable)) == 0
        assert [e.event for e in list_events(session=session)] == ["cli.db.reset"]
    ok("db", "check")


def add_history(metastore: SessionFactory) -> None:
    with metastore.begin() as session:
        for run_id, end in (("old", OLD), ("recent", RECENT)):
            session.add(
                DagRun(dag_id="d", run_id=run_id, run_type="manual", state="success", end_date=end)
            )
            session.flush()
            session.add(TaskInstance(dag_id="d", run_id=run_id, task_id="t", state="success"))


def count_runs(metastore: SessionFactory) -> int:
    with metastore() as session:
        return int(session.scalar(select(func.count()).select_from(DagRun)) or 0)


def test_clean_dry_run_counts_and_leaves_rows(
    ok: Invoke, migrated: None, metastore: SessionFactory
) -> None:
    add_history(metastore)
    result = ok("db", "clean", "--before", "2024-06-01", "--dry-run", "-o", "json")
    rows = {row["table"]: row["rows_to_purge"] for row in json.loads(result.output)}
    assert rows["dag_run"] == 1 and rows["task_instance"] == 1
    assert count_runs(metastore) == 2


def test_clean_purges_history_before_the_date(
    ok: Invoke, migrated: None, metastore: SessionFactory
) -> None:
    add_history(metastore)
    result = ok("db", "clean", "--before", "2024-06-01T00:00:00+00:00")
    assert "dag_run" in result.output and "rows_purged" in result.output
    assert count_runs(metastore) == 1
    with metastore() as session:
        assert list_events(session=session, event="cli.db.clean")


def test_clean_rejects_a_bad_date(main: Main, migrated: None) -> None:
    result = main("db", "clean", "--before", "last tuesday")
    assert result.is_one_line_error
    assert "last tuesday" in result.err


def test_python_dash_m_runs_the_cli(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    done = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "db", "check"],
        env={**env, **cli_env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("tradewind: error: ")


def test_clean_in_airflows_form_with_tables(
    ok: Invoke, main: Main, migrated: None, metastore: SessionFactory
) -> None:
    """``airflow db clean --clean-before-timestamp T --tables ... --skip-archive --yes``."""
    add_history(metastore)
    only_ti = ok(
        "db", "clean", "--clean-before-timestamp", "2024-06-01", "-t", "task_instance",
        "--skip-archive", "--yes", "--verbose", "-o", "json",
    ).output  # fmt: skip
    assert json.loads(only_ti) == [{"table": "task_instance", "rows_purged": 1}]
    assert count_runs(metastore) == 2
    ok("variables", "set", "k", "v")  # an audit row of now: kept
    both = ok(
        "db", "clean", "--clean-before-timestamp", "2024-06-01", "--tables", "dag_run,log",
        "--dry-run", "-y", "-o", "json",
    ).output  # fmt: skip
    rows = {row["table"]: row["rows_to_purge"] for row in json.loads(both)}
    assert rows["dag_run"] == 1 and rows["audit_log"] == 0 and "xcom" in rows
    events = ok(
        "db", "clean", "--clean-before-timestamp", "2024-06-01", "-t", "dataset_event", "-o", "json",
    ).output  # fmt: skip
    purged = {row["table"]: row["rows_purged"] for row in json.loads(events)}
    assert purged == {"dataset_event": 0, "dataset_dag_run_queue": 0}
    refused = main("db", "clean", "--clean-before-timestamp", "2024-06-01", "-t", "job")
    assert refused.is_one_line_error and "cannot clean job" in refused.err
