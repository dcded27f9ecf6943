"""``tradewind broker setup`` and ``status`` against a real three-node RabbitMQ cluster
with the management plugin, started by the run: every count readable through the API;
with the API unreachable, unacked counts unreadable and said so; a stopped node down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from click.testing import CliRunner, Result

from cluster.cli import main as entry
from cluster.cli.app import App
from cluster.config import CelerySettings, load_settings
from cluster.deploy.rabbitmq import read_status, setup_topology
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.errors import BrokerError
from cluster.metastore import users
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.web import create_app
from tests.integration.celery_harness import (
    BROKER_VHOST,
    start_rabbitmq,
)
from tests.waiting import wait_for

QUEUES = ["default", "heavy"]


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    cluster = start_rabbitmq(tmp_path_factory.mktemp("rabbit3"), nodes=3, management=True)
    yield cluster
    cluster.stop()


@pytest.fixture(autouse=True)
def broker_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the nodes' logs (shown with the failure) when this test failed."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before and "trio" in request.fixturenames:
        print(request.getfixturevalue("trio").log_tail(20))


def celery_settings(cluster: RabbitMQCluster, **extra: object) -> CelerySettings:
    management = [cluster.management_url(n) for n in range(1, len(cluster.specs) + 1)]
    settings = load_settings(
        env={},
        home=cluster.base_dir,
        overrides={
            "celery": {
                "broker_urls": cluster.urls,
                "queues": QUEUES,
                "management_urls": management if cluster.management else [],
                **extra,
            }
        },
    )
    return settings.celery


def cli_env(cluster: RabbitMQCluster, home: Path) -> dict[str, str]:
    env = {
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__CELERY__BROKER_URLS": json.dumps(cluster.urls),
        "TRADEWIND__CELERY__QUEUES": json.dumps(QUEUES),
    }
    if cluster.management:
        urls = [cluster.management_url(n) for n in range(1, len(cluster.specs) + 1)]
        env["TRADEWIND__CELERY__MANAGEMENT_URLS"] = json.dumps(urls)
    return env


def tradewind(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(entry.cli, list(args), obj=App(env))


def publish(cluster: RabbitMQCluster, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(cluster.url(1)))
    channel = connection.channel()
    channel.confirm_delivery()
    for number in range(count):
        channel.basic_publish(exchange=queue, routing_key=queue, body=f"m{number}".encode())
    connection.close()


def queue_of(status: dict[str, object], name: str) -> dict[str, object]:
    queues = status["queues"]
    assert isinstance(queues, list)
    return next(q for q in queues if q["name"] == name)


# --- setup ---------------------------------------------------------------------------


def test_setup_twice_declares_once_and_then_finds_everything(
    trio: RabbitMQCluster, tmp_path: Path
) -> None:
    env = cli_env(trio, tmp_path)
    first = tradewind(env, "broker", "setup", "-o", "json")
    assert first.exit_code == 0, first.output
    steps = {(s["kind"], s["name"]): s["outcome"] for s in json.loads(first.output)}
    # the events exchange comes from definitions.json, the queues are new
    assert steps[("exchange", "tradewind.events")] == "exists"
    assert steps[("queue", "default")] == "created"
    assert steps[("queue", "heavy")] == "created"
    assert steps[("policy", "task-queues")] in ("exists", "created", "updated")

    again = tradewind(env, "broker", "setup", "-o", "json")
    assert again.exit_code == 0, again.output
    outcomes = {(s["kind"], s["name"]): s["outcome"] for s in json.loads(again.output)}
    assert set(outcomes.values()) == {"exists"}, outcomes
    declared = trio.ctl(1, "list_queues", "-p", BROKER_VHOST, "name", "type")
    assert "default\tquorum" in declared and "heavy\tquorum" in declared


def test_setup_refuses_a_queue_declared_with_other_settings(trio: RabbitMQCluster) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(trio.url(1)))
    connection.channel().queue_declare(
        queue="classic-one", durable=True, arguments={"x-queue-type": "classic"}
    )
    connection.close()
    celery = celery_settings(trio, queues=["classic-one"])
    with pytest.raises(BrokerError, match="other settings"):
        setup_topology(celery)


# --- status --------------------------------------------------------------------------


def test_status_counts_ready_unacked_and_consumers(trio: RabbitMQCluster) -> None:
    celery = celery_settings(trio)
    setup_topology(celery)
    publish(trio, "heavy", 3)
    consumer = pika.BlockingConnection(pika.URLParameters(trio.url(1)))
    channel = consumer.channel()
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("heavy", lambda *args: None, auto_ack=False)
    consumer.process_data_events(time_limit=0.5)

    def counted() -> dict[str, object] | None:
        consumer.process_data_events(time_limit=0.1)
        heavy = queue_of(read_status(celery).to_dict(), "heavy")
        wanted = {"ready": 2, "unacked": 1, "consumers": 1}
        return heavy if {k: heavy[k] for k in wanted} == wanted else None

    try:
        # the management API refreshes its statistics every few seconds
        wait_for(counted, timeout=60, interval=0.5, message=lambda: str(read_status(celery)))
    finally:
        consumer.close()
    status = read_status(celery)
    assert status.unreadable == []
    assert [(n.name, n.running) for n in status.nodes] == [(s.name, True) for s in trio.specs]


def test_status_cli_prints_queues_and_nodes(trio: RabbitMQCluster, tmp_path: Path) -> None:
    env = cli_env(trio, tmp_path)
    assert tradewind(env, "broker", "setup").exit_code == 0
    result = tradewind(env, "broker", "status", "-o", "plain")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split("\t")[0] == "heavy" for line in lines)
    assert any(trio.specs[0].name in line and "running" in line for line in lines)


def test_status_without_the_management_api_says_what_it_could_not_read(
    trio: RabbitMQCluster,
) -> None:
    closed = free_port()
    celery = celery_settings(
        trio, management_urls=[f"http://tradewind:tradewind@127.0.0.1:{closed}"]
    )
    setup_topology(celery)
    publish(trio, "default", 2)
    status = read_status(celery)
    default = next(q for q in status.queues if q.name == "default")
    assert (default.ready, default.unacked, default.consumers) == (2, None, 0)
    assert [n.name for n in status.nodes] == [None, None, None]
    assert any("unacked" in note and "management API" in note for note in status.unreadable)
    assert [n.running for n in status.nodes] == [True, True, True]


def test_a_stopped_node_shows_as_down(trio: RabbitMQCluster, tmp_path: Path) -> None:
    celery = celery_settings(trio)
    setup_topology(celery)
    trio.stop_node(3)
    try:
        status = read_status(celery)
        # three broker URLs (the third one's name unknown: its API is down too), then
        # the member the cluster itself reports down
        assert [(n.name, n.running) for n in status.nodes] == [
            (trio.specs[0].name, True),
            (trio.specs[1].name, True),
            (None, False),
            (trio.specs[2].name, False),
        ]
        assert "cannot connect" in status.nodes[2].detail
        # quorum queues still answer with two nodes of three
        assert all(q.exists and q.ready is not None for q in status.queues)
        result = tradewind(cli_env(trio, tmp_path), "broker", "status", "-o", "json")
        assert result.exit_code == 1
        nodes = json.loads(result.output)["nodes"]
        assert [n["running"] for n in nodes] == [True, True, False, False]
    finally:
        trio.start_node(3)


def test_status_of_a_missing_queue_says_to_run_setup(trio: RabbitMQCluster) -> None:
    celery = celery_settings(trio, queues=["never-declared"])
    status = read_status(celery)
    missing = next(q for q in status.queues if q.name == "never-declared")
    assert not missing.exists


def test_the_web_cluster_page_shows_queue_depths(trio: RabbitMQCluster, tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        home=tmp_path,
        overrides={
            "webserver": {"secret_key": "page-test"},
            "celery": {
                "broker_urls": trio.urls,
                "queues": QUEUES,
                "management_urls": [trio.management_url(n) for n in (1, 2, 3)],
            },
        },
    )
    setup_topology(settings.celery)
    engine = create_engine_for(settings.metastore)
    migrate(engine)
    with make_session_factory(engine).begin() as session:
        users.create_user("viewer", "pw", role="Viewer", session=session)
        token = users.create_api_token("viewer", "page", session=session)[1]
    engine.dispose()
    app = create_app(settings)
    html = (
        app.test_client()
        .get("/cluster", headers={"Authorization": f"Bearer {token}"})
        .get_data(as_text=True)
    )
    assert '<table class="list queues">' in html
    assert "<td>heavy</td>" in html and trio.specs[0].name in html
    assert "No broker configured" not in html
