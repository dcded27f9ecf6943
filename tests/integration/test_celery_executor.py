"""The Celery executor end to end: a real ``tradewind scheduler`` (``core.executor =
celery``) on MariaDB, two ``tradewind worker`` processes and a three-node RabbitMQ.

Worker ``127.0.1.1`` consumes ``default``; worker ``127.0.1.2`` consumes ``default`` and
``heavy``. The broker, the metastore, the scheduler and both workers are started once
for the module; the shutdown tests start workers of their own on their own queues.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.config import Settings, load_settings
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.errors import BrokerError
from cluster.executors.base import Dispatch
from cluster.executors.celery import CeleryExecutor
from cluster.executors.celery_app import TASK_NAME, build_celery_app
from cluster.executors.celery_publisher import ConfirmedPublisher
from cluster.executors.events import EventListener, EventPublisher, FinishedEvent
from cluster.logserver.paths import log_path
from cluster.logserver.server import OFFSET_HEADER
from cluster.logserver.signing import sign
from cluster.messages import TaskMessage
from cluster.metastore.components import list_components
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import SerializedDagRow, TaskInstance
from cluster.metastore.pools import set_pool
from cluster.states import TaskState
from tests.dagfiles import write_dag
from tests.integration.celery_harness import (
    BROKER_VHOST,
    TradewindProcess,
    celery_env,
    port_free_on,
    start_rabbitmq,
    start_worker,
)
from tests.integration.scheduler_harness import (
    TEST_ACTOR,
    cli_env,
    history,
    task_instances,
    task_states,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

LIGHT = "127.0.1.1"
HEAVY = "127.0.1.2"
SECRET = "celery-test-cluster-secret"
POLL_INTERVAL = 3.0

DAGS = """
import os
import time
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator

START = datetime(2024, 1, 1)

def hold_until_three_run(task_id):
    # three light tasks at once need both workers (two threads each), so the spread never
    # depends on which worker was quicker; never three at once within 60 s fails the task
    running, started = Path("@SIDE_EFFECTS@/light/running"), Path("@SIDE_EFFECTS@/light/started")
    running.mkdir(parents=True, exist_ok=True)
    started.mkdir(parents=True, exist_ok=True)
    (started / task_id).touch()
    (running / task_id).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(running)) < 3 and len(os.listdir(started)) < 8:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sorted(os.listdir(running))} ran at once")
        time.sleep(0.05)
    (running / task_id).unlink()


with DAG("spread", schedule=None, start_date=START, max_active_tasks=16) as spread:
    for n in range(8):
        PythonOperator(
            task_id=f"light_{n}", python_callable=hold_until_three_run, op_args=[f"light_{n}"]
        )
    for n in range(3):
        BashOperator(task_id=f"heavy_{n}", bash_command="sleep 0.5", queue="heavy")


def count():
    with open("@SIDE_EFFECTS@/count", "a") as fh:
        fh.write("ran\\n")


with DAG("once", schedule=None, start_date=START) as once:
    # holds the pool's one slot (it goes first) until the test lets it end
    BashOperator(
        task_id="blocker",
        bash_command="while [ ! -e @SIDE_EFFECTS@/release ]; do sleep 0.2; done",
        pool="held",
        priority_weight=100,
    )
    PythonOperator(task_id="count", python_callable=count, pool="held")

with DAG("chain", schedule=None, start_date=START) as chain:
    steps = [BashOperator(task_id=f"step_{n}", bash_command="true") for n in range(4)]
    for up, down in zip(steps, steps[1:]):
        up >> down

with DAG("growing_log", schedule=None, start_date=START) as growing_log:
    # the rest of the log comes once the test has read its start (or after 60 s)
    BashOperator(
        task_id="talk",
        bash_command=(
            "echo line 0; for i in $(seq 1 600); do [ -e @SIDE_EFFECTS@/log_read ] && break; "
            "sleep 0.1; done; for i in $(seq 1 12); do echo line $i; done"
        ),
    )

with DAG("drain", schedule=None, start_date=START) as drain:
    # runs until the test has sent its TERM (60 s at most)
    BashOperator(
        task_id="short",
        bash_command=(
            "for i in $(seq 1 600); do [ -e @SIDE_EFFECTS@/drain_release ] && break; "
            "sleep 0.1; done; echo done"
        ),
        queue="drain",
    )

with DAG("stuck", schedule=None, start_date=START) as stuck:
    BashOperator(task_id="long", bash_command="sleep 120", queue="stuck")
"""


@dataclass
class CeleryCluster:
    rabbitmq: RabbitMQCluster
    settings: Settings
    env: dict[str, str]
    sessions: sessionmaker[Session]
    home: Path
    side_effects: Path
    scheduler: TradewindProcess
    workers: dict[str, TradewindProcess]

    def trigger(self, dag_id: str) -> str:
        run_id = f"manual__{uuid.uuid4().hex[:12]}"
        with self.sessions.begin() as session:
            actions.trigger(session, dag_id, actor=TEST_ACTOR, run_id=run_id, now=datetime.now(UTC))
        return run_id

    def logs(self) -> str:
        parts = [f"--- scheduler ---\n{self.scheduler.log_tail()}"]
        parts += [f"--- worker {a} ---\n{w.log_tail()}" for a, w in self.workers.items()]
        return "\n".join(parts)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 60) -> str:
        try:
            return wait_for_run(self.sessions, dag_id, run_id, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}\n{self.rabbitmq.log_tail(10)}") from exc


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    """Three RabbitMQ nodes for the whole run, stopped by PID (with their epmd) at the end."""
    cluster = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def celery_cluster(
    rabbitmq: RabbitMQCluster, mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryCluster]:
    base = tmp_path_factory.mktemp("celery")
    home, side_effects = base / "home", base / "side_effects"
    (home / "dags").mkdir(parents=True)
    side_effects.mkdir()
    write_dag(home / "dags" / "celery_dags.py", DAGS, side_effects=side_effects)
    database = f"tw_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(database)
    env = celery_env(
        cli_env(home, url, Fernet.generate_key().decode()),
        rabbitmq.urls,
        WEBSERVER__SECRET_KEY=SECRET,
        LOGGING__LOG_SERVER_PORT=port_free_on([LIGHT, HEAVY, "127.0.1.3", "127.0.1.4"]),
        SCHEDULER__POLL_INTERVAL=POLL_INTERVAL,
    )
    settings = load_settings(env=env)
    engine = create_engine_for(settings.metastore)
    migrate(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        set_pool("held", 1, session=session)
    scheduler = TradewindProcess(env, ["scheduler"], base / "scheduler.log").start()
    workers: dict[str, TradewindProcess] = {}
    cluster = CeleryCluster(
        rabbitmq, settings, env, sessions, home, side_effects, scheduler, workers
    )
    try:
        workers[LIGHT] = start_worker(env, base, address=LIGHT, queues="default")
        workers[HEAVY] = start_worker(env, base, address=HEAVY, queues="default,heavy")
        wait_for_dags(sessions, {"spread", "once", "chain", "growing_log", "drain", "stuck"})
        yield cluster
    finally:
        processes = [scheduler, *workers.values()]
        for process in processes:  # all drain at once
            process.terminate()
        for process in processes:
            process.stop()
        engine.dispose()
        mariadb.drop_database(database)


def test_a_dag_runs_on_both_workers_and_heavy_tasks_only_on_the_heavy_one(
    celery_cluster: CeleryCluster,
) -> None:
    run_id = celery_cluster.trigger("spread")

    assert celery_cluster.wait_for_run("spread", run_id) == "success"
    hosts = {
        ti.task_id: ti.hostname for ti in task_instances(celery_cluster.sessions, "spread", run_id)
    }
    light = {host for task, host in hosts.items() if task.startswith("light_")}
    heavy = {host for task, host in hosts.items() if task.startswith("heavy_")}
    assert light == {LIGHT, HEAVY}, hosts
    assert heavy == {HEAVY}, hosts


def test_the_same_message_delivered_twice_runs_the_task_once(
    celery_cluster: CeleryCluster,
) -> None:
    """The task waits for a pool slot that another task holds, so the scheduler does not
    queue it: the test queues it and publishes its message twice by hand, as a broker
    redelivery would."""
    sessions = celery_cluster.sessions
    run_id = celery_cluster.trigger("once")
    wait_for(
        lambda: (
            task_states(sessions, "once", run_id)
            in (
                {"blocker": "queued", "count": "scheduled"},
                {"blocker": "running", "count": "scheduled"},
            )
        ),
        timeout=30,
        message=lambda: f"the blocker to take the slot: {task_states(sessions, 'once', run_id)}",
    )
    with sessions.begin() as session:
        moved = session.execute(
            update(TaskInstance)
            .where(
                TaskInstance.dag_id == "once",
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == "count",
                TaskInstance.state == "scheduled",
            )
            .values(state="queued", try_number=1, queued_at=datetime.now(UTC))
        )
        assert getattr(moved, "rowcount", None) == 1
        fingerprint = session.scalar(
            select(SerializedDagRow.fingerprint).where(SerializedDagRow.dag_id == "once")
        )
    assert fingerprint
    message = TaskMessage("once", run_id, "count", -1, 1, fingerprint)
    executor = CeleryExecutor(build_celery_app(celery_cluster.settings), queues=["default"])
    executor.start()
    executor.send([Dispatch(message), Dispatch(message)])
    executor.stop(drain=False)

    wait_for(
        lambda: task_states(sessions, "once", run_id)["count"] == "success",
        timeout=30,
        message=lambda: f"the task to succeed\n{celery_cluster.logs()}",
    )
    wait_for(
        lambda: any(
            "not claimed" in w.read_log() and run_id in w.read_log()
            for w in celery_cluster.workers.values()
        ),
        timeout=30,
        message=lambda: f"the second delivery to be refused\n{celery_cluster.logs()}",
    )
    assert (celery_cluster.side_effects / "count").read_text() == "ran\n"
    (celery_cluster.side_effects / "release").touch()
    assert celery_cluster.wait_for_run("once", run_id) == "success"
    assert len(history(sessions, "once", run_id, "count")) == 1


def test_finished_events_wake_the_scheduler_before_its_poll(
    celery_cluster: CeleryCluster,
) -> None:
    run_id = celery_cluster.trigger("chain")

    assert celery_cluster.wait_for_run("chain", run_id) == "success"
    tis = {ti.task_id: ti for ti in task_instances(celery_cluster.sessions, "chain", run_id)}
    gaps = []
    for n in range(3):
        ended, queued = tis[f"step_{n}"].end_date, tis[f"step_{n + 1}"].queued_at
        assert ended is not None and queued is not None
        gaps.append((queued - ended).total_seconds())
    # polling alone would leave each gap anywhere up to the poll interval
    assert max(gaps) < POLL_INTERVAL / 4, gaps


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _running_host(sessions: sessionmaker[Session], dag_id: str, run_id: str) -> str | None:
    """The worker a task of the run is running on, once one is."""
    for ti in task_instances(sessions, dag_id, run_id):
        if ti.state == "running" and ti.hostname:
            return str(ti.hostname)
    return None


def test_the_log_server_serves_a_running_tasks_log_to_signed_requests_only(
    celery_cluster: CeleryCluster,
) -> None:
    settings, sessions = celery_cluster.settings, celery_cluster.sessions
    run_id = celery_cluster.trigger("growing_log")
    host = wait_for(
        lambda: _running_host(sessions, "growing_log", run_id),
        timeout=30,
        message="the task to run",
    )
    assert host is not None
    base = settings.logging.base_log_folder
    path = log_path(base, dag_id="growing_log", run_id=run_id, task_id="talk", try_number=1)
    relative = path.relative_to(base).as_posix()
    server = f"http://{host}:{settings.logging.log_server_port}"
    key = settings.webserver.secret_key

    def signed(offset: int = 0) -> str:
        return sign(relative, key=key, now=time.time(), ttl=30).url(server, offset=offset)

    assert _get(f"{server}/log/{relative}")[0] == 403
    expired = sign(relative, key=key, now=time.time() - 120, ttl=30).url(server)
    assert _get(expired)[0] == 403

    def start_of_log() -> tuple[bytes, dict[str, str]] | None:
        status, body, headers = _get(signed())
        return (body, headers) if status == 200 and b"line 0\n" in body else None

    first, headers = wait_for(start_of_log, timeout=30, message="the log's first line")
    assert b"Running try 1 of growing_log.talk" in first
    offset = int(headers[OFFSET_HEADER])
    (celery_cluster.side_effects / "log_read").touch()

    def more() -> bytes:
        _, body, _ = _get(signed(offset))
        return body if b"line" in body else b""

    grown = wait_for(more, timeout=20, message="the log to grow")
    assert not grown.startswith(first[:40])
    assert celery_cluster.wait_for_run("growing_log", run_id) == "success"
    with sessions() as session:
        workers = {c.host: c for c in list_components(session=session, kind="worker")}
    assert workers[HEAVY].extra["queues"] == ["default", "heavy"]
    assert workers[host].extra["log_server_url"] == server


def _queue_depth(rabbitmq: RabbitMQCluster, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.urls[0]))
    try:
        declared = connection.channel().queue_declare(queue=queue, passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


def test_sigterm_drains_a_worker_and_a_second_sigterm_stops_it_at_once(
    celery_cluster: CeleryCluster, tmp_path: Path
) -> None:
    sessions, env = celery_cluster.sessions, celery_cluster.env
    drained = start_worker(env, tmp_path, address="127.0.1.3", queues="drain")
    stopped = start_worker(env, tmp_path, address="127.0.1.4", queues="stuck")
    try:
        short_run, long_run = celery_cluster.trigger("drain"), celery_cluster.trigger("stuck")
        for dag_id, run_id in (("drain", short_run), ("stuck", long_run)):
            wait_for(
                lambda d=dag_id, r=run_id: _running_host(sessions, d, r),  # type: ignore[misc]
                timeout=30,
                message=f"{dag_id} to run",
            )
        drained.signal(signal.SIGTERM)
        stopped.signal(signal.SIGTERM)
        stopped.wait_for_log("Warm shutdown", timeout=10)
        assert stopped.running()  # a single TERM waits for the running try
        stopped.signal(signal.SIGTERM)

        assert stopped.process is not None and drained.process is not None
        stopped.process.wait(20)
        assert task_states(sessions, "stuck", long_run) == {"long": "running"}
        wait_for(
            lambda: _queue_depth(celery_cluster.rabbitmq, "stuck") == 1,
            timeout=10,
            message="the cut try's message back in its queue",
        )
        assert drained.running()  # its try still runs: the worker waits for it
        (celery_cluster.side_effects / "drain_release").touch()
        assert drained.process.wait(30) == 0
        assert task_states(sessions, "drain", short_run) == {"short": "success"}
    finally:
        drained.stop()
        stopped.stop()


def _dead_url() -> str:
    """An AMQP URL where nothing listens."""
    return f"amqp://tradewind:tradewind@127.0.0.1:{free_port()}/tradewind"


def test_finished_events_reach_a_listener_past_a_dead_node(rabbitmq: RabbitMQCluster) -> None:
    received: queue.Queue[FinishedEvent] = queue.Queue()
    listener = EventListener([_dead_url(), *rabbitmq.urls], "tradewind.events", received.put)
    publisher = EventPublisher([_dead_url(), rabbitmq.urls[1]], "tradewind.events")
    message = TaskMessage("etl", "manual__1", "load", -1, 2, "abc")
    listener.start()
    try:
        wait_for(listener.consuming.is_set, timeout=20, message="the listener to consume")
        assert publisher.publish(message, TaskState.UP_FOR_RETRY)
        assert received.get(timeout=10) == FinishedEvent(message, TaskState.UP_FOR_RETRY)
    finally:
        listener.stop()
        publisher.close()


def test_an_unreachable_broker_costs_one_warning_while_the_listener_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = EventListener(
        [_dead_url()], "tradewind.events", lambda event: None, backoff_start=0.01, backoff_max=0.05
    )
    with caplog.at_level(logging.INFO, logger="cluster.executors.events"):
        listener.start()
        try:
            wait_for(lambda: listener.failures >= 5, timeout=20, message="five attempts")
        finally:
            listener.stop()
    warnings = [r for r in caplog.records if r.name == "cluster.executors.events"]
    assert [r.levelno for r in warnings] == [logging.WARNING], [r.message for r in warnings]


def test_the_executor_keeps_dispatches_while_no_broker_answers(settings: Settings) -> None:
    now = [0.0]
    app = build_celery_app(settings.replace("celery", broker_urls=[_dead_url()]))
    executor = CeleryExecutor(app, queues=["default"], clock=lambda: now[0])
    message = TaskMessage("etl", "manual__1", "load", -1, 1, "abc")

    executor.start()  # logged, not raised: the scheduler goes on
    executor.send([Dispatch(message)])
    assert executor.unsent == 1
    executor.send([Dispatch(message)])  # within the retry interval: kept without trying
    assert executor.free_slots() is None
    assert executor.unsent == 2
    executor.stop(drain=False)


# --- publishing in confirmed batches ----------------------------------------------------


def _queue_depth(rabbitmq: RabbitMQCluster, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.urls[0]))
    try:
        declared = connection.channel().queue_declare(queue, passive=True)
        return int(declared.method.message_count)
    finally:
        connection.close()


def _delete_queue(rabbitmq: RabbitMQCluster, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.urls[0]))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


def _messages(count: int, queue: str) -> list[Dispatch]:
    return [
        Dispatch(TaskMessage("etl", "manual__batch", f"t{n:03d}", -1, 1, "abc"), queue=queue)
        for n in range(count)
    ]


def test_a_batch_is_confirmed_at_once_and_lands_as_celery_task_messages(
    rabbitmq: RabbitMQCluster, settings: Settings
) -> None:
    queue = f"batch_{uuid.uuid4().hex[:8]}"
    app = build_celery_app(settings.replace("celery", broker_urls=rabbitmq.urls), queues=[queue])
    publisher = ConfirmedPublisher(app, queues=[queue], batch_size=16)
    dispatches = _messages(40, queue)
    try:
        result = publisher.publish(dispatches)
        assert result.unconfirmed == [] and result.error is None
        assert _queue_depth(rabbitmq, queue) == 40
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq.urls[0]))
        try:
            method, properties, body = connection.channel().basic_get(queue, auto_ack=True)
        finally:
            connection.close()
        assert method is not None
        assert properties.headers["task"] == TASK_NAME
        assert properties.delivery_mode == 2  # persistent
        args, _, _ = json.loads(body)
        assert TaskMessage.from_dict(args[0]) == dispatches[0].message
    finally:
        publisher.close()
        _delete_queue(rabbitmq, queue)


def test_messages_the_broker_refuses_come_back_in_order_to_be_sent_again(
    rabbitmq: RabbitMQCluster, settings: Settings
) -> None:
    """A queue over its length limit under ``reject-publish`` answers ``basic.nack``.

    RabbitMQ 3.10's quorum queue refuses a message once it holds *more* than the limit:
    with a limit of one it takes two, then refuses every other.
    """
    queue = f"full_{uuid.uuid4().hex[:8]}"
    rabbitmq.ctl(
        1,
        "set_policy",
        "-p",
        BROKER_VHOST,
        "--apply-to",
        "queues",
        "--priority",
        "10",
        queue,
        f"^{queue}$",
        json.dumps({"max-length": 1, "overflow": "reject-publish"}),
    )
    app = build_celery_app(settings.replace("celery", broker_urls=rabbitmq.urls), queues=[queue])
    executor = CeleryExecutor(app, queues=[queue])
    dispatches = _messages(5, queue)
    first, refused = dispatches[:2], dispatches[2:]
    try:
        executor.start()
        executor.send(first)
        assert executor.unsent == 0
        assert _queue_depth(rabbitmq, queue) == 2
        executor.send(refused)
        assert executor.unsent == 3
        result = ConfirmedPublisher(app, queues=[queue]).publish(refused)
        assert result.unconfirmed == refused
        assert isinstance(result.error, BrokerError)
        assert "refused 3" in str(result.error)
    finally:
        executor.stop(drain=False)
        rabbitmq.ctl(1, "clear_policy", "-p", BROKER_VHOST, queue)
        _delete_queue(rabbitmq, queue)
