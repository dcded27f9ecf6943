"""How role commands start, as an operator sees them: ``tradewind scheduler`` run as a
subprocess on a SQLite metastore that is not ready for it yet.

On a rolling deploy the new version's processes start while ``tradewind db migrate``
runs: they wait for it (``metastore.migration_wait_timeout``), say so in one line, and
give up with the one-line error after the timeout; a schema newer than the code fails
at once.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, text

from cluster.config import MetastoreSettings
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import head_revision, migrate
from tests.integration.scheduler_harness import (
    CLI,
    REPO,
    SchedulerProcess,
    cli_env,
    tradewind,
    wait_for,
    wait_for_dags,
)

DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.empty import EmptyOperator

with DAG("after_migration", schedule=None, start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="t")
"""
WAITING = "waiting up to"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "after_migration.py").write_text(DAG)
    return home


@pytest.fixture
def engine(home: Path) -> Iterator[Engine]:
    """The test's SQLite metastore, at the first revision: older than the code."""
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{home / 'tradewind.db'}"))
    migrate(engine, to="0001")
    yield engine
    engine.dispose()


@pytest.fixture
def env(home: Path, engine: Engine) -> dict[str, str]:
    return cli_env(home, str(engine.url), Fernet.generate_key().decode())


def run_scheduler(env: dict[str, str], **settings: str) -> subprocess.CompletedProcess[str]:
    """``tradewind scheduler`` to its end: only for runs that must end by themselves."""
    env = {**env, **{f"TRADEWIND__{k}": v for k, v in settings.items()}}
    return subprocess.run(
        [*CLI, "scheduler"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_the_scheduler_waits_for_the_migration_then_runs(
    env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    scheduler = SchedulerProcess(env, tmp_path / "scheduler.log").start()
    log = scheduler.log_file
    try:
        wait_for(
            lambda: WAITING in log.read_text(),
            timeout=60,
            message=lambda: f"the scheduler's waiting line in\n{log.read_text()}",
        )
        assert scheduler.process is not None and scheduler.process.poll() is None
        assert log.read_text().count(WAITING) == 1
        assert f"revision 0001, this code needs {head_revision()}" in log.read_text()

        tradewind(env, "db", "migrate")
        wait_for_dags(make_session_factory(engine), {"after_migration"})
        assert scheduler.process.poll() is None, log.read_text()
    finally:
        scheduler.stop()


def test_the_scheduler_gives_up_after_the_timeout_with_one_line(env: dict[str, str]) -> None:
    done = run_scheduler(env, METASTORE__MIGRATION_WAIT_TIMEOUT="1")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("tradewind: error")]
    assert errors == [
        f"tradewind: error: the metastore schema is at revision 0001, this code needs "
        f"{head_revision()}: run 'tradewind db migrate'"
    ]
    assert done.stderr.splitlines()[-1] == errors[0]


def test_a_schema_newer_than_the_code_fails_at_once(env: dict[str, str], engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    # a wait would outlast run_scheduler's 60 s limit and fail the test
    done = run_scheduler(env, METASTORE__MIGRATION_WAIT_TIMEOUT="600")
    assert done.returncode != 0
    assert WAITING not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"tradewind: error: the metastore schema is at revision 9999, newer than this "
        f"code's {head_revision()}: upgrade Tradewind on this node"
    )


# --- secrets ------------------------------------------------------------------------


def fresh_env(home: Path) -> dict[str, str]:
    """A home with no tradewind.toml and no TRADEWIND__ settings: a first run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    return {**env, "TRADEWIND_HOME": str(home), "PYTHONPATH": str(REPO)}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["scheduler", "worker", "triggerer"])
def test_without_a_fernet_key_a_role_command_refuses_in_one_line(
    tmp_path: Path, command: str
) -> None:
    done = run_cli(fresh_env(tmp_path / "fresh"), command)
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "tradewind: error: core.fernet_key is empty: set [core] fernet_key in tradewind.toml "
        "(or TRADEWIND__CORE__FERNET_KEY); generate one with: python -c 'from "
        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    ]


def test_a_triggerer_with_unusable_settings_refuses_in_one_line(tmp_path: Path) -> None:
    env = {
        **fresh_env(tmp_path / "fresh"),
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__TRIGGERER__HEALTH_TIMEOUT": "3",
    }
    done = run_cli(env, "triggerer")
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()
    assert line == (
        "tradewind: error: triggerer.health_timeout (3 s) must be over four times "
        "triggerer.heartbeat_interval (2 s): a triggerer stops its triggers after half the "
        "timeout without a heartbeat"
    )


def test_the_triggerer_waits_for_the_migration_then_runs(
    env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    log = tmp_path / "triggerer.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*CLI, "triggerer"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: WAITING in log.read_text(),
            timeout=60,
            message=lambda: f"the triggerer's waiting line in\n{log.read_text()}",
        )
        assert process.poll() is None
        migrate(engine)
        wait_for(
            lambda: "triggerer ready" in log.read_text(),
            timeout=60,
            message=lambda: f"the triggerer's ready line in\n{log.read_text()}",
        )
        status = json.loads(tradewind(env, "cluster", "status", "-o", "json"))
        [member] = status["triggerers"]
        assert (member["pid"], member["state"]) == (process.pid, "running")
        assert (member["detail"]["triggers"], member["detail"]["capacity"]) == (0, 1000)
    finally:
        process.terminate()
        process.wait(30)
    status = json.loads(tradewind(env, "cluster", "status", "-o", "json"))
    assert status["triggerers"] == []  # a stopped triggerer is no member any more


def test_a_worker_without_the_cluster_secret_refuses_in_one_line(tmp_path: Path) -> None:
    env = {
        **fresh_env(tmp_path / "fresh"),
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
    done = run_cli(env, "worker")
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()
    assert line.startswith("tradewind: error: webserver.secret_key is empty: set [webserver]")


def test_flower_without_a_sign_in_refuses_in_one_line(tmp_path: Path) -> None:
    """Flower can stop workers and revoke tasks: it never starts open to anyone."""
    env = {
        **fresh_env(tmp_path / "fresh"),
        "TRADEWIND__CELERY__BROKER_URLS": '["amqp://tw:tw@127.0.0.1:5672/tw"]',
    }
    done = run_cli(env, "flower")
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        'tradewind: error: flower.auth is empty: set [flower] auth = "webserver" (sign in as '
        'a webserver Admin or Op user) or auth = "basic" with basic_auth = ["user:password"] '
        "(TRADEWIND__FLOWER__AUTH, TRADEWIND__FLOWER__BASIC_AUTH): Flower can stop workers "
        "and revoke tasks"
    ]
    basic_without_pairs = run_cli({**env, "TRADEWIND__FLOWER__AUTH": "basic"}, "flower")
    assert basic_without_pairs.returncode != 0
    (line,) = basic_without_pairs.stderr.splitlines()
    assert line.startswith("tradewind: error: flower.auth is basic but flower.basic_auth is empty")
    no_broker = {
        **fresh_env(tmp_path / "fresh"),
        "TRADEWIND__FLOWER__AUTH": "basic",
        "TRADEWIND__FLOWER__BASIC_AUTH": '["ops:pw"]',
    }
    without_broker = run_cli(no_broker, "flower")
    assert without_broker.returncode != 0
    (line,) = without_broker.stderr.splitlines()
    assert line.startswith("tradewind: error: celery.broker_urls is empty")


def test_config_init_writes_secrets_the_scheduler_starts_with(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    env = {**fresh_env(home), "TRADEWIND__CORE__LOAD_EXAMPLES": "false"}
    done = run_cli(env, "config", "init")
    assert done.returncode == 0, done.stderr
    assert f"Wrote {home / 'tradewind.toml'}" in done.stdout
    written = (home / "tradewind.toml").read_text()
    assert (home / "tradewind.toml").stat().st_mode & 0o777 == 0o600

    again = run_cli(env, "config", "init")
    assert again.returncode != 0 and len(again.stderr.splitlines()) == 1
    assert "pass --force" in again.stderr
    assert (home / "tradewind.toml").read_text() == written

    tradewind(env, "db", "migrate")
    tradewind(env, "variables", "set", "greeting", "hello")  # encrypted with the new key
    assert tradewind(env, "variables", "get", "greeting").strip() == "hello"
    (home / "dags" / "after_migration.py").write_text(DAG)
    scheduler = SchedulerProcess(env, tmp_path / "scheduler.log").start()
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{home / 'tradewind.db'}"))
    try:
        wait_for_dags(make_session_factory(engine), {"after_migration"})
        assert scheduler.process is not None and scheduler.process.poll() is None
    finally:
        scheduler.stop()
        engine.dispose()
