"""Airflow 2.10's command lines, as an operator's script writes them, with only the
command name swapped: each test runs the documented form and checks its effect."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, TaskInstance
from tests.unit.cli import test_cli_dags, test_cli_tasks
from tests.unit.cli.conftest import Exit, Invoke

Main = Callable[..., Exit]

# the fixtures of the DAG and task command tests: a DAG folder, and a run with two tries
with_dags = test_cli_dags.with_dags
with_run = test_cli_tasks.with_run


def paused(metastore: SessionFactory, dag_id: str) -> bool | None:
    with metastore() as session:
        return session.scalar(select(Dag.is_paused).where(Dag.dag_id == dag_id))


def test_dags_trigger_with_airflows_flags(
    ok: Invoke, with_dags: object, metastore: SessionFactory
) -> None:
    out = ok(
        "dags",
        "trigger",
        "cli_demo",
        "-c",
        '{"n": 3}',
        "-r",
        "nightly",
        "-e",
        "2024-03-04T05:06:07.123456",
        "-S",
        "/opt/airflow/dags",
        "-v",
        "-o",
        "json",
    ).stdout
    assert json.loads(out)[0]["run_id"] == json.loads(out)[0]["dag_run_id"] == "nightly"
    ok(
        "dags",
        "trigger",
        "cli_demo",
        "-r",
        "micro",
        "--exec-date",
        "2024-03-05T00:00:00.5",
        "--no-replace-microseconds",
    )
    with metastore() as session:
        runs = dict(session.execute(select(DagRun.run_id, DagRun.logical_date)).all())
        conf = session.scalar(select(DagRun.conf).where(DagRun.run_id == "nightly"))
    assert runs["nightly"].replace(tzinfo=UTC) == datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert runs["micro"].microsecond == 500000
    assert conf == {"n": 3}


def test_dags_pause_and_unpause_with_airflows_flags(
    ok: Invoke, tradewind: Invoke, with_dags: object, metastore: SessionFactory
) -> None:
    out = ok("dags", "pause", "cli_demo", "-y", "-o", "json", "-S", "/x", "-v").stdout
    assert json.loads(out) == [{"dag_id": "cli_demo", "is_paused": True}]
    assert paused(metastore, "cli_demo") is True
    ok("dags", "unpause", "^cli_", "--treat-dag-id-as-regex", "--yes")
    assert paused(metastore, "cli_demo") is False
    refused = tradewind("dags", "pause", "^cli_", "--treat-dag-id-as-regex", input="n\n")
    assert refused.exit_code != 0 and "cli_demo" in refused.stdout
    assert paused(metastore, "cli_demo") is False
    assert (
        "No paused DAGs were found"
        in ok("dags", "pause", "^nothing", "--treat-dag-id-as-regex", "-y").stdout
    )


def test_dags_list_runs_state_test_and_backfill_forms(
    ok: Invoke, main: Main, with_dags: object, metastore: SessionFactory
) -> None:
    ok("dags", "trigger", "cli_demo", "-r", "a", "-e", "2024-01-02")
    ok("dags", "trigger", "cli_demo", "-r", "b", "-e", "2024-02-02")
    with metastore.begin() as session:
        session.execute(update(DagRun).where(DagRun.run_id == "b").values(state="failed"))
    rows = json.loads(ok("dags", "list-runs", "-d", "cli_demo", "-o", "json", "-v").stdout)
    assert [r["run_id"] for r in rows] == ["b", "a"]
    assert rows[1]["execution_date"].startswith("2024-01-02T00:00:00")  # Airflow's key
    failed = ok("dags", "list-runs", "-d", "cli_demo", "--state", "failed", "-o", "json").stdout
    assert [r["run_id"] for r in json.loads(failed)] == ["b"]
    window = ok(
        "dags",
        "list-runs",
        "--dag-id",
        "cli_demo",
        "--no-backfill",
        "-s",
        "2024-01-01",
        "-e",
        "2024-01-31",
        "-o",
        "json",
    ).stdout
    assert [r["run_id"] for r in json.loads(window)] == ["a"]
    assert (
        ok("dags", "state", "cli_demo", "2024-02-02", "-S", "/x", "-v").stdout.strip() == "failed"
    )
    assert ok("dags", "state", "cli_demo", "2024-02-02T00:00:00+00:00").stdout.strip() == "failed"
    ok("dags", "test", "cli_demo", "2024-05-06", "-c", '{"n": 2}', "-S", "/x", "-v")
    out = ok(
        "dags",
        "backfill",
        "cli_demo",
        "-s",
        "2024-03-01",
        "-e",
        "2024-03-02",
        "--rerun-failed-tasks",
        "-c",
        '{"n": 4}',
        "-y",
        "--no-wait",
        "-S",
        "/x",
        "-v",
    ).stdout
    assert "2 runs created" in out
    with metastore() as session:
        confs = session.scalars(select(DagRun.conf).where(DagRun.run_type == "backfill")).all()
    assert confs == [{"n": 4}, {"n": 4}]
    clash = main("dags", "list-runs", "cli_demo", "-d", "other")
    assert clash.is_one_line_error


def test_tasks_state_run_test_by_date_or_run_id_with_map_index(
    ok: Invoke, main: Main, with_run: str, metastore: SessionFactory
) -> None:
    with metastore() as session:
        when = session.scalar(select(DagRun.logical_date).where(DagRun.run_id == "r1"))
    assert when is not None
    date = when.replace(tzinfo=UTC).isoformat()
    assert ok("tasks", "state", "cli_demo", "second", date, "--map-index", "-1").stdout.strip() == (
        "failed"
    )
    missing = main("tasks", "state", "cli_demo", "second", "r1", "--map-index", "2")
    assert missing.is_one_line_error and "(map index 2)" in missing.err
    assert "second: success" in ok("tasks", "test", "cli_demo", "second", "r1", "-v").stdout
    assert "first: success" in ok("tasks", "test", "cli_demo", "first", "2024-05-06").stdout
    ok("tasks", "run", "cli_demo", "second", date, "--map-index", "-1", "-f", "-l", "-A", "-i")
    with metastore() as session:
        ti = session.get(TaskInstance, ("cli_demo", "r1", "second", -1))
    assert ti is not None and ti.state == "success" and ti.try_number == 2
    unmapped = main("tasks", "run", "cli_demo", "second", "r1", "--map-index", "0")
    assert unmapped.is_one_line_error and "map index 0" in unmapped.err


def test_tasks_clear_with_airflows_flags(
    ok: Invoke, with_run: str, metastore: SessionFactory
) -> None:
    with metastore.begin() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "first").values(state="running")
        )
    out = ok("tasks", "clear", "cli_demo", "-r", "-y", "-x", "-X", "-v", "-S", "/x").stdout
    assert "Cleared 1 task instances" in out
    with metastore() as session:
        states = dict(session.execute(select(TaskInstance.task_id, TaskInstance.state)).all())
    assert states == {"first": "none", "second": "failed"}
    out = ok(
        "tasks",
        "clear",
        "^cli_d",
        "-R",
        "-t",
        "^second$",
        "-f",
        "-d",
        "-u",
        "-s",
        "2020-01-01",
        "-e",
        "2100-01-01",
        "-y",
    ).stdout
    assert "cli_demo.second" in out and "Cleared 1 task instances" in out
    with metastore() as session:
        assert (
            session.scalar(select(TaskInstance.state).where(TaskInstance.task_id == "second"))
            == "none"
        )


def test_tasks_test_dry_run_and_env_vars(
    ok: Invoke, with_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow tasks test DAG TASK DATE -n`` renders only; ``--env-vars`` reach the task."""
    monkeypatch.setenv("TW_FORMS_PROBE", "0")  # restored after the test
    rendered = ok("tasks", "test", "cli_demo", "first", "2024-05-06", "-n").stdout
    assert "property: bash_command" in rendered and "echo 2024-05-06" in rendered
    assert "first: success" not in rendered
    out = ok(
        "tasks", "test", "cli_demo", "first", "r1", "--env-vars", '{"TW_FORMS_PROBE": "1"}'
    ).stdout
    assert "first: success" in out
    assert os.environ.get("TW_FORMS_PROBE") == "1"


def test_unsupported_airflow_flags_are_one_line_errors(main: Main, with_dags: object) -> None:
    """A flag Tradewind does not implement fails loudly rather than being ignored."""
    for args in (
        ("dags", "backfill", "cli_demo", "-s", "2024-01-01", "-e", "2024-01-02", "-t", "x"),
        ("dags", "test", "cli_demo", "--use-executor"),
        ("tasks", "run", "cli_demo", "first", "r1", "--pool", "p"),
    ):
        assert main(*args).is_one_line_error, args
