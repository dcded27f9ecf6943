"""The commands scripts poll, on SQLite, MariaDB and PostgreSQL: ``dags list``, ``dags
state``, ``tasks state`` and ``tasks states-for-dag-run`` read through the database
driver alone (:mod:`cluster.metastore.dbapi`), and must print what the ORM holds.

Rows are written with the ORM (timestamps with microseconds, a mapped task, a DAG with
a next run), and each command's JSON is compared with the values the ORM reads back:
the same timestamps in UTC, the same booleans, the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import insert, select, update

from cluster.cli import main as entry
from cluster.cli.app import App
from cluster.errors import NotFoundError
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, TaskInstance
from tests.unit.cli.test_cli_dags import DAG_FILE

Tradewind = Callable[..., Result]
STARTED = datetime(2024, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
NEXT_RUN = datetime(2024, 3, 5, tzinfo=UTC)


@pytest.fixture
def tradewind(tmp_path: Path, metastore_url: str, metastore_engine: object) -> Tradewind:
    """``tradewind ARGS`` on the migrated metastore at ``metastore_url``."""
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "demo.py").write_text(DAG_FILE)
    env = {
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__METASTORE__URL": metastore_url,
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
    }

    def invoke(*args: str) -> Result:
        app = App(env)
        try:
            return CliRunner().invoke(entry.cli, list(args), obj=app)
        finally:
            if "engine" in app.__dict__:
                app.engine.dispose()

    return invoke


@pytest.fixture
def with_run(tradewind: Tradewind, session_factory: SessionFactory) -> Iterator[None]:
    for args in (("dags", "reserialize"), ("dags", "trigger", "cli_demo", "-r", "r1")):
        assert tradewind(*args).exit_code == 0
    ran = {"dag_id": "cli_demo", "run_id": "r1", "try_number": 2, "hostname": "w1"}
    with session_factory.begin() as session:
        session.execute(
            insert(TaskInstance),
            [
                {**ran, "task_id": "second", "state": "failed", "start_date": STARTED},
                {**ran, "task_id": "first", "map_index": 1, "state": "success",
                 "start_date": STARTED, "end_date": STARTED + timedelta(seconds=1)},
                {**ran, "task_id": "first", "map_index": 0, "state": "running",
                 "start_date": STARTED, "hostname": None},
            ],
        )  # fmt: skip
        session.execute(update(DagRun).values(logical_date=STARTED, state="running"))
        session.execute(update(Dag).values(next_dagrun=NEXT_RUN, is_paused=False))
    yield


def as_json(value: Any) -> Any:
    """A value as the commands print it in JSON (datetimes in ISO form)."""
    return json.loads(json.dumps(value, default=datetime.isoformat))


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_dags_list_prints_the_orms_rows(
    tradewind: Tradewind, with_run: None, session_factory: SessionFactory
) -> None:
    with session_factory() as session:
        dag = session.get(Dag, "cli_demo")
    assert dag is not None and dag.next_dagrun == NEXT_RUN
    listed = json.loads(ok(tradewind("dags", "list", "-o", "json")))
    assert listed == [
        {
            "dag_id": "cli_demo",
            "fileloc": dag.fileloc,
            "owners": dag.owners,
            "is_paused": False,
            "schedule": "@daily",
            "task_count": 2,
            "tags": ["demo"],
            "next_dagrun": "2024-03-05T00:00:00+00:00",
        }
    ]
    assert ok(tradewind("dags", "list", "-o", "plain")).split("\t")[3] == "False"


def test_dags_state_by_run_id_and_by_logical_date(tradewind: Tradewind, with_run: None) -> None:
    naive = STARTED.replace(tzinfo=None).isoformat()  # a date without a zone is UTC
    in_plus_two = STARTED.astimezone(timezone(timedelta(hours=2))).isoformat()
    for run in ("r1", STARTED.isoformat(), naive, in_plus_two):
        assert ok(tradewind("dags", "state", "cli_demo", run)) == "running\n", run
    missing = tradewind("dags", "state", "cli_demo", "2024-03-04T05:06:07")  # no microseconds
    assert isinstance(missing.exception, NotFoundError) and "not found" in str(missing.exception)


def test_states_for_dag_run_prints_the_orms_instances(
    tradewind: Tradewind, with_run: None, session_factory: SessionFactory
) -> None:
    with session_factory() as session:
        instances = session.scalars(
            select(TaskInstance).order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
    expected = [
        {
            "dag_id": "cli_demo",
            "logical_date": STARTED,
            "run_id": "r1",
            "task_id": t.task_id,
            "state": t.state,
            "start_date": t.start_date,
            "end_date": t.end_date,
            "try_number": t.try_number,
            "hostname": t.hostname,
        }
        for t in instances
    ]
    assert [t.start_date for t in instances] == [STARTED] * 3
    by_date = STARTED.isoformat()
    for run in ("r1", by_date):
        printed = tradewind("tasks", "states-for-dag-run", "cli_demo", run, "-o", "json")
        assert json.loads(ok(printed)) == as_json(expected)
    assert [line.split("\t")[2:4] for line in ok(
        tradewind("tasks", "states-for-dag-run", "cli_demo", "r1", "-o", "plain")
    ).splitlines()] == [["first", "running"], ["first", "success"], ["second", "failed"]]  # fmt: skip


def test_tasks_state_takes_the_map_index(tradewind: Tradewind, with_run: None) -> None:
    assert ok(tradewind("tasks", "state", "cli_demo", "second", "r1")) == "failed\n"
    assert ok(tradewind("tasks", "state", "cli_demo", "first", "r1", "-m", "1")) == "success\n"
    missing = tradewind("tasks", "state", "cli_demo", "first", "r1", "-m", "7")
    assert isinstance(missing.exception, NotFoundError)
    assert "map index 7" in str(missing.exception)


def test_a_missing_run_is_not_found_on_every_database(tradewind: Tradewind, with_run: None) -> None:
    for args in (("dags", "state", "cli_demo", "nope"), ("tasks", "states-for-dag-run", "x", "r1")):
        result = tradewind(*args)
        assert isinstance(result.exception, NotFoundError), result.output
        assert NotFoundError.exit_code == 3 and "not found" in str(result.exception)
