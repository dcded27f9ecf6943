"""Celery execution keeps its promises when a worker, a broker node or the database goes away.

Each test deploys its own ``tradewind scheduler`` and two ``tradewind worker`` processes
(on ``127.0.2.1`` and ``127.0.2.2``) on a fresh database of a private MariaDB (the
metastore outage also of a private PostgreSQL) and a private three-node RabbitMQ, all
started for this module and stopped by PID. Every
task appends one line ``<task> <try> <host> <phase>`` to its run's side-effect file each
time it executes, so "nothing ran twice" is read from what really happened, not from
the metastore alone. Tasks that must be running while a failure is injected wait for a
release file the test creates: the failure lands in the middle of the run by
construction, never by timing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.execution.dagbag import CACHE_FOLDER
from cluster.executors.base import Dispatch
from cluster.executors.celery import CeleryExecutor
from cluster.executors.celery_app import build_celery_app
from cluster.messages import TaskMessage
from cluster.metastore.components import list_components
from cluster.metastore.models import SerializedDagRow, TaskInstance
from cluster.metastore.pools import set_pool
from tests.dagfiles import dag_source
from tests.databases import SERVER_KINDS, DatabaseServer, private_server
from tests.integration.celery_harness import (
    CeleryDeployment,
    kill_worker_hard,
    start_rabbitmq,
)
from tests.integration.scheduler_harness import alive, history, task_instances
from tests.waiting import wait_for

FIRST, SECOND = "127.0.2.1", "127.0.2.2"
#: the outage the issue asks for
OUTAGE_SECONDS = 10.0

#: ``deploy({dag_id: source}, **settings)``: a started deployment of those DAGs, one
#: file ``<dag_id>.py`` each
Deploy = Callable[..., CeleryDeployment]

COMMON = """
import os
import time
from datetime import datetime, timedelta
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator

SIDE = "@SIDE_EFFECTS@"
START = datetime(2024, 1, 1)


def mark(ti, phase):
    line = f"{ti.task_id} {ti.try_number} {ti.hostname} {phase}\\n".encode()
    fd = os.open(f"{SIDE}/{ti.run_id}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def quick(ti):
    mark(ti, "ran")


def held(ti, release):
    mark(ti, "started")
    while not os.path.exists(f"{SIDE}/{ti.run_id}.{release}"):
        time.sleep(0.1)
    mark(ti, "ran")
"""

WORKER_KILL_DAG = (
    COMMON
    + """
with DAG(
    "worker_kill",
    schedule=None,
    start_date=START,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
) as worker_kill:
    held_tasks = [
        PythonOperator(
            task_id=f"long_{n}", python_callable=held, op_kwargs={"release": "go"},
            priority_weight=10,
        )
        for n in range(4)
    ]
    after = [PythonOperator(task_id=f"after_{n}", python_callable=quick) for n in range(6)]
    for task in after:
        held_tasks >> task
"""
)

#: 3 stages of 99, 99 and 100 tasks between two held gates: 300 tasks
BROKER_NODE_DAG = (
    COMMON
    + """
with DAG("broker_node", schedule=None, start_date=START, max_active_tasks=64) as broker_node:
    first = [PythonOperator(task_id=f"a_{n}", python_callable=quick) for n in range(99)]
    gate_1 = PythonOperator(task_id="gate_1", python_callable=held, op_kwargs={"release": "1"})
    second = [PythonOperator(task_id=f"b_{n}", python_callable=quick) for n in range(99)]
    gate_2 = PythonOperator(task_id="gate_2", python_callable=held, op_kwargs={"release": "2"})
    third = [PythonOperator(task_id=f"c_{n}", python_callable=quick) for n in range(100)]
    first >> gate_1 >> second >> gate_2 >> third
"""
)

#: ``late`` waits for the one slot of pool ``held`` that ``hold_0`` takes first: the test
#: queues it and publishes its message by hand while the metastore is down, so a worker
#: takes it during the outage
METASTORE_DAG = (
    COMMON
    + """
with DAG("metastore_outage", schedule=None, start_date=START) as metastore_outage:
    holds = [
        PythonOperator(
            task_id=f"hold_{n}", python_callable=held, op_kwargs={"release": "go"},
            pool="held" if n == 0 else "default_pool", priority_weight=10,
        )
        for n in range(2)
    ]
    late = PythonOperator(task_id="late", python_callable=quick, pool="held")
    after = [PythonOperator(task_id=f"after_{n}", python_callable=quick) for n in range(10)]
    for task in after:
        [*holds, late] >> task
"""
)


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    """Three RabbitMQ nodes of this module's own: one test stops and restarts a node."""
    cluster = start_rabbitmq(tmp_path_factory.mktemp("resilience_rabbitmq"))
    yield cluster
    cluster.stop()


def own_server(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    try:
        server = private_server(kind, tmp_path_factory.mktemp(f"resilience_{kind}"))
    except ServiceError as exc:
        pytest.fail(f"{kind} is needed by this test and is not installed: {exc}")
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def own_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """A MariaDB of this module's own: one test stops it for a while."""
    yield from own_server("mariadb", tmp_path_factory)


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """A PostgreSQL of this module's own: the outage test stops it for a while."""
    yield from own_server("postgres", tmp_path_factory)


@pytest.fixture
def server_kind() -> str:
    """Which private server holds the metastore; a test parametrizes it to run on both."""
    return "mariadb"


@pytest.fixture
def database_server(server_kind: str, request: pytest.FixtureRequest) -> DatabaseServer:
    server: DatabaseServer = request.getfixturevalue(f"own_{server_kind}")
    return server


@pytest.fixture
def deploy(
    broker: RabbitMQCluster, database_server: DatabaseServer, tmp_path: Path
) -> Iterator[Deploy]:
    """Deploy a DAG file on a fresh database (``deploy(source, dag_id, **settings)``); every
    deployment is stopped at teardown, its logs attached when the test failed."""
    started: list[CeleryDeployment] = []

    def make(dags: dict[str, str], **settings: object) -> CeleryDeployment:
        url = database_server.create_database(f"tw_{uuid.uuid4().hex[:12]}")
        deployment = CeleryDeployment(
            tmp_path / f"deployment{len(started)}",
            metastore_url=url,
            broker_urls=broker.urls,
            dags={f"{dag_id}.py": source for dag_id, source in dags.items()},
            workers={FIRST: "default", SECOND: "default"},
            concurrency=2,
            **settings,
        )
        started.append(deployment)
        return deployment.start(set(dags))

    yield make
    for deployment in started:
        deployment.stop()


# --- reading what happened ------------------------------------------------------------


def side_effects(deployment: CeleryDeployment, run_id: str) -> list[tuple[str, int, str, str]]:
    """Every line the run's tasks wrote: ``(task, try, host, phase)``."""
    path = deployment.side_effects / f"{run_id}.log"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        task, try_number, host, phase = line.split()
        rows.append((task, int(try_number), host, phase))
    return rows


def executions(deployment: CeleryDeployment, run_id: str) -> Counter[tuple[str, int]]:
    """How many times each ``(task, try)`` ran to its end."""
    return Counter((t, n) for t, n, _, phase in side_effects(deployment, run_id) if phase == "ran")


def starts(deployment: CeleryDeployment, run_id: str) -> Counter[tuple[str, int]]:
    """How many times each ``(task, try)`` began (held tasks mark their start)."""
    rows = side_effects(deployment, run_id)
    return Counter((t, n) for t, n, _, phase in rows if phase in ("started", "ran"))


def states(deployment: CeleryDeployment, dag_id: str, run_id: str) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in task_instances(deployment.sessions, dag_id, run_id)}


def started_on(deployment: CeleryDeployment, run_id: str, tasks: set[str]) -> dict[str, str]:
    """``{task: host}`` of the first try of each of ``tasks`` that has started."""
    return {
        t: host
        for t, n, host, phase in side_effects(deployment, run_id)
        if t in tasks and n == 1 and phase == "started"
    }


def release(deployment: CeleryDeployment, run_id: str, name: str) -> None:
    (deployment.side_effects / f"{run_id}.{name}").touch()


def all_alive(deployment: CeleryDeployment) -> None:
    for process in deployment.processes():
        assert process.running(), f"{process.args} died:\n{process.log_tail()}"


# --- 1. a worker killed with SIGKILL --------------------------------------------------


def test_a_killed_worker_s_tries_are_retried_on_the_other_worker(
    deploy: Deploy,
) -> None:
    deployment = deploy(
        {"worker_kill": WORKER_KILL_DAG},
        SCHEDULER__ZOMBIE_THRESHOLD=6,
        SCHEDULER__HEARTBEAT_INTERVAL=0.5,
    )
    run_id = deployment.trigger("worker_kill")
    longs = {f"long_{n}" for n in range(4)}
    # four held tries fill the four pool processes: two run on each worker
    placed = wait_for(
        lambda: (lambda p: p if len(p) == 4 else None)(started_on(deployment, run_id, longs)),
        timeout=60,
        message=lambda: f"four long tasks to start\n{deployment.logs()}",
    )
    assert set(placed.values()) == {FIRST, SECOND}, placed
    killed = {task for task, host in placed.items() if host == FIRST}

    tree = kill_worker_hard(deployment.workers[FIRST])

    # nothing of the dead worker lives on: its task children die with their parents
    wait_for(
        lambda: not any(alive(pid) for pid in tree),
        timeout=30,
        message=lambda: f"the killed worker's processes {[p for p in tree if alive(p)]} to end",
    )
    release(deployment, run_id, "go")
    assert deployment.wait_for_run("worker_kill", run_id, timeout=120) == "success"

    ran, began = executions(deployment, run_id), starts(deployment, run_id)
    tis = {ti.task_id: ti for ti in task_instances(deployment.sessions, "worker_kill", run_id)}
    for task, ti in tis.items():
        expected_try = 2 if task in killed else 1
        assert ti.try_number == expected_try, (task, ti.try_number, killed)
        # the last try ran once, to its end, on a live worker
        assert ran[(task, expected_try)] == 1, (task, ran)
        assert ti.hostname == SECOND or task not in killed, (task, ti.hostname)
        if task in killed:  # the cut first try began once and never finished
            assert began[(task, 1)] == 1 and ran[(task, 1)] == 0, (task, began, ran)
            tries = history(deployment.sessions, "worker_kill", run_id, task)
            assert [h.try_number for h in tries] == [1, 2], task
    assert sum(ran.values()) == len(tis)


# --- 2. one RabbitMQ node of three stopped --------------------------------------------


def running_nodes(broker: RabbitMQCluster, number: int) -> set[str]:
    status = json.loads(broker.ctl(number, "cluster_status", "--formatter", "json"))
    return set(status["running_nodes"])


def quorum_members_online(broker: RabbitMQCluster, queue: str) -> set[str]:
    listed = broker.ctl(
        2,
        "list_queues",
        "-p",
        broker.vhost,
        "name",
        "online",
        "--formatter",
        "json",
    )
    for row in json.loads(listed):
        if row["name"] == queue:
            return set(row["online"])
    raise AssertionError(f"queue {queue} is not in {listed}")


def test_a_stopped_broker_node_costs_no_task_and_rejoins(
    deploy: Deploy, broker: RabbitMQCluster
) -> None:
    everyone = {spec.name for spec in broker.specs}
    assert running_nodes(broker, 2) == everyone
    deployment = deploy({"broker_node": BROKER_NODE_DAG})
    run_id = deployment.trigger("broker_node")
    wait_for(
        lambda: started_on(deployment, run_id, {"gate_1"}),
        timeout=120,
        message=lambda: f"the first gate to start\n{deployment.logs()}",
    )
    # node 1 is every client's first URL: the scheduler and both workers fail over
    broker.stop_node(1)
    assert not broker.node_alive(1)
    release(deployment, run_id, "1")
    wait_for(
        lambda: started_on(deployment, run_id, {"gate_2"}),
        timeout=120,
        message=lambda: f"the second stage to pass without node 1\n{deployment.logs()}",
    )
    done_while_down = sum(1 for t, *_ in side_effects(deployment, run_id) if t.startswith("b_"))

    broker.start_node(1)
    wait_for(
        lambda: running_nodes(broker, 2) == everyone,
        timeout=60,
        message="node 1 to rejoin the cluster",
    )
    release(deployment, run_id, "2")
    assert deployment.wait_for_run("broker_node", run_id, timeout=180) == "success"

    assert done_while_down == 99  # the whole second stage ran while node 1 was down
    ran = executions(deployment, run_id)
    tis = task_instances(deployment.sessions, "broker_node", run_id)
    assert len(tis) == 300
    assert {ti.try_number for ti in tis} == {1}
    assert ran == Counter({(ti.task_id, 1): 1 for ti in tis})
    assert running_nodes(broker, 1) == everyone
    wait_for(
        lambda: quorum_members_online(broker, "default") == everyone,
        timeout=60,
        message="the default queue to have its three members online",
    )
    all_alive(deployment)


# --- 3. MariaDB or PostgreSQL stopped for ten seconds -----------------------------------


@pytest.mark.parametrize("server_kind", SERVER_KINDS)
def test_every_process_rides_out_a_metastore_outage_and_nothing_runs_twice(
    deploy: Deploy, database_server: DatabaseServer
) -> None:
    deployment = deploy({"metastore_outage": METASTORE_DAG})
    with deployment.sessions.begin() as session:
        set_pool("held", 1, session=session)
    run_id = deployment.trigger("metastore_outage")
    holds = {f"hold_{n}" for n in range(2)}
    wait_for(
        lambda: len(started_on(deployment, run_id, holds)) == 2,
        timeout=60,
        message=lambda: f"the holds to run\n{deployment.logs()}",
    )
    late = queue_by_hand(deployment, "metastore_outage", run_id, "late")

    database_server.stop()
    stopped_at = time.monotonic()
    assert not database_server.alive()
    # while it is down: the holds end and must record it, and a free pool process
    # takes a message it cannot claim yet
    release(deployment, run_id, "go")
    publish(deployment, late)
    while time.monotonic() - stopped_at < OUTAGE_SECONDS:
        all_alive(deployment)
        time.sleep(0.2)
    database_server.start()
    back_at = datetime.now(UTC)

    assert deployment.wait_for_run("metastore_outage", run_id, timeout=120) == "success"

    all_alive(deployment)
    ran = executions(deployment, run_id)
    tis = task_instances(deployment.sessions, "metastore_outage", run_id)
    assert len(tis) == 13
    assert {ti.try_number for ti in tis} == {1}
    assert ran == Counter({(ti.task_id, 1): 1 for ti in tis})
    # both workers' own heartbeat threads came back too
    wait_for(
        lambda: beat_after(deployment, back_at) >= {FIRST, SECOND},
        timeout=30,
        message=lambda: f"worker heartbeats after the outage\n{deployment.logs()}",
    )


def queue_by_hand(
    deployment: CeleryDeployment, dag_id: str, run_id: str, task_id: str
) -> TaskMessage:
    """Move a scheduled instance to ``queued`` (try 1) as the scheduler would; its message."""

    def scheduled() -> bool:
        return states(deployment, dag_id, run_id).get(task_id) == "scheduled"

    wait_for(scheduled, timeout=30, message=f"{task_id} to be scheduled")
    with deployment.sessions.begin() as session:
        moved = session.execute(
            update(TaskInstance)
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == "scheduled",
            )
            .values(state="queued", try_number=1, queued_at=datetime.now(UTC))
        )
        assert getattr(moved, "rowcount", None) == 1
        fingerprint = session.scalar(
            select(SerializedDagRow.fingerprint).where(SerializedDagRow.dag_id == dag_id)
        )
    assert fingerprint
    return TaskMessage(dag_id, run_id, task_id, -1, 1, fingerprint)


def publish(deployment: CeleryDeployment, message: TaskMessage) -> None:
    """Publish ``message`` as the scheduler's executor does."""
    executor = CeleryExecutor(build_celery_app(deployment.settings), queues=["default"])
    executor.start()
    executor.send([Dispatch(message)])
    assert executor.unsent == 0
    executor.stop(drain=False)


def beat_after(deployment: CeleryDeployment, moment: datetime) -> set[str]:
    """The workers whose ``component`` heartbeat is newer than ``moment``."""
    with deployment.sessions() as session:
        workers = list_components(session=session, kind="worker")
    return {w.host for w in workers if w.heartbeat_at.replace(tzinfo=UTC) > moment}


# --- 4. workers run the version the scheduler serialized ------------------------------

VERSIONED_DAG = (
    COMMON
    + """
def version(ti):
    mark(ti, "{version}")


with DAG("{dag_id}", schedule=None, start_date=START) as versioned:
    for n in range({tasks}):
        PythonOperator(task_id=f"t{{n}}", python_callable=version)
"""
)


def versioned(dag_id: str, version: str, tasks: int) -> str:
    return (
        VERSIONED_DAG.replace("{version}", version)
        .replace("{dag_id}", dag_id)
        .replace("{tasks}", str(tasks))
        .replace("{{n}}", "{n}")
    )


def test_workers_take_the_serialized_version_from_the_metastore(deploy: Deploy) -> None:
    """The scheduler parsed version 2 of two files; then one file vanished from the DAG
    folder and the other went back to version 1 (one task fewer, other code), as on a
    worker nobody deployed to. The scheduler does not look at the folder again."""
    deployment = deploy(
        {"gone": versioned("gone", "v2", 3), "stale": versioned("stale", "v2", 3)},
        CORE__DAG_SOURCE="metastore",
        SCHEDULER__DAG_DIR_LIST_INTERVAL=3600,
    )
    folder = deployment.home / "dags"
    (folder / "gone.py").unlink()
    old = dag_source(versioned("stale", "v1", 2), side_effects=deployment.side_effects)
    (folder / "stale.py").write_text(old)

    for dag_id in ("gone", "stale"):
        run_id = deployment.trigger(dag_id)
        assert deployment.wait_for_run(dag_id, run_id) == "success"
        rows = side_effects(deployment, run_id)
        assert sorted((task, phase) for task, _, _, phase in rows) == [
            ("t0", "v2"),
            ("t1", "v2"),
            ("t2", "v2"),
        ]
    cached = list((deployment.home / CACHE_FOLDER).glob("*/*.py"))
    assert sorted(path.name for path in cached) == ["gone.py", "stale.py"]
