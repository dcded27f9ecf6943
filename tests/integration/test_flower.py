"""``tradewind flower`` and ``celery inspect`` against a running Celery cluster.

A private one-node RabbitMQ, a MariaDB database, a ``tradewind scheduler`` and two
``tradewind worker`` processes (remote control on: the default; task events off until
Flower turns them on), and a Bash task that runs until the test creates a file. Flower, started by ``tradewind flower`` behind the
webserver's users, must list both workers with their queues and the running task
through its HTTP API, and refuse a request without credentials.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.metastore.users import create_user
from tests.integration.celery_harness import CeleryDeployment, TradewindProcess, start_rabbitmq
from tests.integration.scheduler_harness import REPO, task_states
from tests.waiting import wait_for

LIGHT = "127.0.1.1"
HEAVY = "127.0.1.2"
WORKERS = {LIGHT: "default", HEAVY: "default,heavy"}
ADMIN = ("flower-admin", "admin-password")
VIEWER = ("flower-viewer", "viewer-password")
BASIC = ("ops", "basic-password")
PREFIX = "flower"
#: what a worker logs when Flower's enable_events broadcast reaches it
EVENTS_ENABLED = "Events of group {task} enabled by remote."

DAGS = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("held", schedule=None, start_date=datetime(2024, 1, 1)):
    BashOperator(
        task_id="wait_for_release",
        bash_command="while [ ! -e @SIDE_EFFECTS@/release ]; do sleep 0.2; done",
    )
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    cluster = start_rabbitmq(tmp_path_factory.mktemp("flower_rabbitmq"), nodes=1)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def deployment(
    broker: RabbitMQCluster, mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryDeployment]:
    database = mariadb.create_database("tw_flower")
    deployment = CeleryDeployment(
        tmp_path_factory.mktemp("flower"),
        metastore_url=database,
        broker_urls=broker.urls,
        dags={"held.py": DAGS},
        workers=WORKERS,
        concurrency=2,
    )
    try:
        deployment.start({"held"})
        with deployment.sessions.begin() as session:
            create_user(*ADMIN, role="Admin", session=session)
            create_user(*VIEWER, role="Viewer", session=session)
        yield deployment
    finally:
        deployment.stop()
        mariadb.drop_database("tw_flower")


@pytest.fixture(scope="module")
def running_task(deployment: CeleryDeployment, flower: str) -> Iterator[str]:
    """The run whose one task is running (it ends when the module's tests are done),
    started once Flower turned the workers' task events on."""
    run_id = deployment.trigger("held")
    wait_for(
        lambda: task_states(deployment.sessions, "held", run_id) == {"wait_for_release": "running"},
        timeout=60,
        message=lambda: f"the task to run\n{deployment.logs()}",
    )
    yield run_id
    (deployment.side_effects / "release").touch()
    assert deployment.wait_for_run("held", run_id) == "success"


def start_flower(
    deployment: CeleryDeployment, name: str, **settings: object
) -> tuple[TradewindProcess, str]:
    """``tradewind flower`` with ``FLOWER__…`` settings; its base URL once it answers."""
    port = free_port("127.0.0.1")
    env = dict(deployment.env)
    env.update(
        {
            "TRADEWIND__FLOWER__ADDRESS": "127.0.0.1",
            "TRADEWIND__FLOWER__PORT": str(port),
            "TRADEWIND__FLOWER__URL_PREFIX": PREFIX,
        }
    )
    env.update({f"TRADEWIND__FLOWER__{k}": str(v) for k, v in settings.items()})
    process = TradewindProcess(env, ["flower"], deployment.base / f"{name}.log").start()
    base = f"http://127.0.0.1:{port}/{PREFIX}"

    def healthy() -> bool:
        if not process.running():
            raise AssertionError(f"tradewind flower exited:\n{process.log_tail()}")
        try:
            return requests.get(f"{base}/healthcheck", timeout=5).text == "OK"
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=60, message=lambda: f"Flower to answer\n{process.log_tail()}")
    return process, base


@pytest.fixture(scope="module")
def flower(deployment: CeleryDeployment) -> Iterator[str]:
    """Flower behind the webserver's users: its base URL."""
    process, base = start_flower(deployment, "flower", AUTH="webserver", PROXIED="false")
    # workers start without task events; Flower turns them on over remote control
    for worker in deployment.workers.values():
        worker.wait_for_log(EVENTS_ENABLED, timeout=30)
    yield base
    process.stop()


def workers_seen(base: str, auth: tuple[str, str]) -> dict[str, Any]:
    answer = requests.get(f"{base}/api/workers", params={"refresh": "1"}, auth=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    workers: dict[str, Any] = answer.json()
    return workers


def test_flower_lists_both_workers_with_their_queues(flower: str, running_task: str) -> None:
    expected = {f"tradewind@{address}" for address in WORKERS}
    workers = wait_for(
        lambda: (found := workers_seen(flower, ADMIN)).keys() >= expected and found,
        timeout=30,
        message="both workers in /api/workers",
    )
    queues = {
        name: sorted(queue["name"] for queue in workers[name].get("active_queues", []))
        for name in expected
    }
    assert queues == {f"tradewind@{LIGHT}": ["default"], f"tradewind@{HEAVY}": ["default", "heavy"]}
    assert "tradewind.run_task" in workers[f"tradewind@{LIGHT}"]["registered"]


def test_flower_lists_the_running_task(flower: str, running_task: str) -> None:
    def started() -> list[dict[str, Any]]:
        answer = requests.get(f"{flower}/api/tasks", auth=ADMIN, timeout=30)
        assert answer.status_code == 200, answer.text
        tasks = answer.json().values()
        return [
            t
            for t in tasks
            if t["state"] == "STARTED" and running_task in str(t.get("args")) and t["worker"]
        ]

    (task,) = wait_for(started, timeout=30, message="the running task in /api/tasks")
    assert task["name"] == "tradewind.run_task"
    assert "wait_for_release" in task["args"]
    assert task["worker"] in {f"tradewind@{address}" for address in WORKERS}


def test_terminating_a_try_from_flower_leaves_the_worker_running_it(
    deployment: CeleryDeployment, flower: str, running_task: str
) -> None:
    """Remote control lets Flower send ``revoke --terminate``; a Tradewind worker cannot
    end one try alone, and cutting its whole pool would leave it unable to run any."""
    tasks = requests.get(f"{flower}/api/tasks", auth=ADMIN, timeout=30).json()
    (task_id,) = [uuid for uuid, t in tasks.items() if running_task in str(t.get("args"))]
    answer = requests.post(
        f"{flower}/api/task/revoke/{task_id}", params={"terminate": "true"}, auth=ADMIN, timeout=30
    )
    assert answer.status_code == 200, answer.text
    worker = deployment.workers[tasks[task_id]["worker"].removeprefix("tradewind@")]
    worker.wait_for_log("a remote 'revoke --terminate' was ignored", timeout=30)
    assert task_states(deployment.sessions, "held", running_task) == {"wait_for_release": "running"}
    assert all(w.running() for w in deployment.workers.values())


def test_flower_refuses_requests_without_a_webserver_operator(flower: str) -> None:
    anonymous = requests.get(f"{flower}/api/workers", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert (
        requests.get(f"{flower}/api/tasks", auth=(ADMIN[0], "wrong"), timeout=10).status_code == 401
    )
    assert requests.get(f"{flower}/api/tasks", auth=VIEWER, timeout=10).status_code == 403
    assert requests.get(f"{flower}/", timeout=10).status_code == 401
    # a browser on another site may not make a signed-in operator's browser act
    revoke = requests.post(
        f"{flower}/api/task/revoke/x",
        auth=ADMIN,
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=10,
    )
    assert revoke.status_code == 403


def test_flower_with_its_own_basic_auth(deployment: CeleryDeployment, running_task: str) -> None:
    process, base = start_flower(
        deployment, "flower-basic", AUTH="basic", BASIC_AUTH=json.dumps([":".join(BASIC)])
    )
    try:
        assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/workers", auth=ADMIN, timeout=10).status_code == 401
        wait_for(
            lambda: workers_seen(base, BASIC).keys() >= {f"tradewind@{a}" for a in WORKERS},
            timeout=30,
            message="both workers through Flower's own basic auth",
        )
    finally:
        process.stop()


def test_celery_inspect_sees_the_running_task_through_the_importable_app(
    deployment: CeleryDeployment, running_task: str
) -> None:
    """What docs/operations.md tells operators to run: ``celery -A
    cluster.executors.celery_app inspect active``, configured from the environment."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cluster.executors.celery_app",
            "inspect",
            "active",
            "--json",
        ],
        env=deployment.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    active = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(active) == {f"tradewind@{address}" for address in WORKERS}
    requests_seen = [request for requests_of in active.values() for request in requests_of]
    assert [r["name"] for r in requests_seen] == ["tradewind.run_task"]
    assert running_task in json.dumps(requests_seen[0]["args"])
