"""``tradewind cluster doctor`` against real endpoints started by the run: a private
MariaDB, a RabbitMQ node, a ZooKeeper node and a worker's log server; and against
closed ports and wrong secrets, where every failed line must carry its hint.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from cluster.cli import main as entry
from cluster.cli.app import App
from cluster.config import Settings, load_settings
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble, loopback_addresses
from cluster.logserver.server import LogServer
from cluster.metastore.components import heartbeat_component, settings_fingerprints
from cluster.metastore.engine import create_engine_for, make_session_factory, transaction
from cluster.metastore.migrate import migrate
from tests.databases import DatabaseServer
from tests.integration.celery_harness import start_rabbitmq

SECRET = "the-cluster-secret"


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    cluster = start_rabbitmq(tmp_path_factory.mktemp("doctor-rabbit"), nodes=1)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    addresses = loopback_addresses(1, client_port=free_port("127.0.1.1"), first=1)
    try:
        ensemble = ZooKeeperEnsemble(tmp_path_factory.mktemp("doctor-zk"), addresses)
    except ServiceError as exc:
        pytest.fail(f"ZooKeeper is needed by this test and is not installed: {exc}")
    ensemble.start()
    yield ensemble
    ensemble.stop()


@pytest.fixture
def log_server(tmp_path: Path) -> Iterator[LogServer]:
    """A worker's log server, as ``tradewind worker`` runs it, with the cluster secret."""
    server = LogServer(tmp_path / "logs", key=SECRET, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(
    tmp_path: Path, mariadb_url: str, rabbitmq: RabbitMQCluster, zookeeper: ZooKeeperEnsemble
) -> dict[str, str]:
    """A node configured for the whole cluster, on a migrated MariaDB metastore."""
    values = {
        "TRADEWIND_HOME": str(tmp_path),
        "TRADEWIND__METASTORE__URL": mariadb_url,
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__WEBSERVER__SECRET_KEY": SECRET,
        "TRADEWIND__CELERY__BROKER_URLS": json.dumps(rabbitmq.urls),
        "TRADEWIND__HA__ELECTION": "zookeeper",
        "TRADEWIND__HA__ZOOKEEPER_HOSTS": json.dumps(zookeeper.hosts),
    }
    engine = create_engine_for(load_settings(values).metastore)
    migrate(engine)
    engine.dispose()
    return values


@pytest.fixture(autouse=True)
def service_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        if "rabbitmq" in request.fixturenames:
            print(request.getfixturevalue("rabbitmq").log_tail(20))
        if "zookeeper" in request.fixturenames:
            print(request.getfixturevalue("zookeeper").log_tail(1, 20))


def doctor(env: dict[str, str], *args: str) -> Result:
    app = App(env)
    try:
        return CliRunner().invoke(entry.cli, ["cluster", "doctor", *args], obj=app)
    finally:
        if "engine" in app.__dict__:
            app.engine.dispose()


def register(
    env: dict[str, str], kind: str, host: str, *, settings: Settings, **extra: Any
) -> None:
    """A live component row, as a running process writes it."""
    node = load_settings(env)
    engine = create_engine_for(node.metastore)
    try:
        transaction(
            make_session_factory(engine),
            lambda s: heartbeat_component(
                kind,
                host,
                os.getpid(),
                session=s,
                now=datetime.now(UTC),
                extra=extra,
                fingerprints=settings_fingerprints(settings),
            ),
        )
    finally:
        engine.dispose()


def lines_of(result: Result) -> dict[str, list[str]]:
    """Output lines grouped by check name (the second word)."""
    grouped: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        _mark, _, rest = line.partition(" ")
        name = rest.strip().split(" ")[0]
        if name == "shared":
            name = "shared setting"
        grouped.setdefault(name, []).append(line)
    return grouped


def test_a_healthy_cluster_passes_every_check(
    env: dict[str, str], log_server: LogServer, zookeeper: ZooKeeperEnsemble
) -> None:
    same = load_settings(env)
    register(env, "worker", "127.0.0.1", settings=same, log_server_url=log_server.url)
    register(env, "webserver", "master1", settings=same)
    result = doctor(env)
    assert result.exit_code == 0, result.output
    grouped = lines_of(result)
    assert grouped["metastore"][0].startswith("ok") and "(current)" in grouped["metastore"][0]
    assert grouped["broker"][0].startswith("ok") and "AMQP connected" in grouped["broker"][0]
    assert grouped["zookeeper"][0].startswith("ok") and "mode standalone" in grouped["zookeeper"][0]
    assert grouped["log"][0].startswith("ok") and log_server.url in grouped["log"][0]
    shared = grouped["shared setting"]
    assert len(shared) == 2 and all(line.startswith("ok") for line in shared)
    assert all("2 component(s) match" in line for line in shared)
    assert SECRET not in result.output


def test_closed_ports_and_a_foreign_secret_fail_with_hints(
    env: dict[str, str], tmp_path: Path
) -> None:
    closed = free_port()
    other = load_settings(env).replace("webserver", secret_key="another-secret")
    foreign = LogServer(tmp_path / "logs", key="another-secret", host="127.0.0.1", port=0)
    foreign.start()
    try:
        register(env, "worker", "127.0.0.1", settings=other, log_server_url=foreign.url)
        broken = {
            **env,
            "TRADEWIND__CELERY__BROKER_URLS": json.dumps(
                [f"amqp://tradewind:tradewind@127.0.0.1:{closed}/tradewind"]
            ),
            "TRADEWIND__HA__ZOOKEEPER_HOSTS": json.dumps([f"127.0.0.1:{closed}"]),
        }
        result = doctor(broken, "-o", "json")
    finally:
        foreign.stop()
    assert result.exit_code == 1, result.output
    checks = {(c["name"], c["status"]): c for c in json.loads(result.output)}
    broker = checks[("broker", "fail")]
    assert f"127.0.0.1:{closed}" in broker["detail"]
    assert f"is RabbitMQ running on 127.0.0.1:{closed}" in broker["hint"]
    assert "vhost" in broker["hint"]
    assert f"is ZooKeeper running on 127.0.0.1:{closed}" in checks[("zookeeper", "fail")]["hint"]
    log = checks[("log server", "fail")]
    assert "403" in log["detail"] and "webserver.secret_key differs" in log["hint"]
    secret = checks[("shared setting", "fail")]
    assert secret["target"] == "webserver.secret_key"
    assert "differs on: worker 127.0.0.1" in secret["detail"]
    assert checks[("metastore", "ok")]


def test_text_output_puts_the_hint_on_the_failed_line(
    env: dict[str, str], rabbitmq: RabbitMQCluster
) -> None:
    url = rabbitmq.url(1).replace("tradewind:tradewind@", "tradewind:wrong@")
    result = doctor({**env, "TRADEWIND__CELERY__BROKER_URLS": json.dumps([url])})
    assert result.exit_code == 1
    (line,) = lines_of(result)["broker"]
    assert line.startswith("FAIL broker amqp://127.0.0.1:")
    assert "-- hint: RabbitMQ at 127.0.0.1:" in line and "refused the user" in line
    assert "wrong" not in result.output


def test_an_unreachable_or_old_metastore_is_named_with_what_to_do(
    env: dict[str, str], database_server: DatabaseServer
) -> None:
    closed = free_port()
    scheme = "postgresql+psycopg" if isinstance(database_server, PostgreSQL) else "mysql+pymysql"
    gone = {**env, "TRADEWIND__METASTORE__URL": f"{scheme}://tw:pw@127.0.0.1:{closed}/tw"}
    result = doctor(gone)
    assert result.exit_code == 1
    grouped = lines_of(result)
    assert grouped["metastore"][0].startswith("FAIL")
    assert "is the database server running" in grouped["metastore"][0]
    assert grouped["components"][0].startswith("skip")
    assert "pw@" not in result.output

    name = f"tw_{uuid.uuid4().hex[:12]}"
    empty = database_server.create_database(name)
    try:
        result = doctor({**env, "TRADEWIND__METASTORE__URL": empty})
    finally:
        database_server.drop_database(name)
    (line,) = lines_of(result)["metastore"]
    assert line.startswith("FAIL") and "schema empty" in line
    assert "run 'tradewind db migrate'" in line
