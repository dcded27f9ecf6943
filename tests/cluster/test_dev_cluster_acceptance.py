"""Acceptance of the whole HA cluster: lose one of everything, lose no work.

``tradewind dev-cluster up`` starts 2 masters (scheduler, webserver and triggerer each),
2 workers, 3 ZooKeeper nodes, 3 RabbitMQ nodes, MariaDB and HAProxy, every one a real
process on its own loopback address. A workload of 600 tasks in 6 DAGs runs (one DAG run
per stage, so every kill lands while tasks are in flight; the last DAG's tasks defer on
a trigger) while ``dev-cluster kill`` SIGKILLs, in turn and a few seconds into a run,
the leading scheduler, a worker, a webserver, the RabbitMQ node the clients use first,
the ZooKeeper leader and the triggerer holding the most triggers. Each stage waits for the cluster's own
sign of recovery (a new leader, HAProxy marking the server down, tasks completing
again, the other triggerer holding the dead one's triggers) before the killed service is started again with ``dev-cluster start``.

Then: every run succeeded; each task's side-effect file holds one line per try that
ran its code, with no try number twice and never more tries than
``task_instance_history`` records (so a task ran exactly once, or once per genuine
retry); and the UI through HAProxy (pages and /api/v1/dags, from a background client
signed in for the whole test) answered at least 99 % of its requests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import load_settings
from cluster.devcluster.probes import zookeeper_mode
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.models import (
    Component,
    DagRun,
    SchedulerLease,
    TaskInstance,
    TaskInstanceHistory,
    Trigger,
)
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.mariadb

DAG_COUNT = 6
TASKS_PER_DAG = 100
#: the DAG whose tasks defer (on a 30 s trigger) and resume to write their side effect
DEFERRED_DAG = DAG_COUNT - 1
DAG_IDS = [f"accept_{n}" for n in range(DAG_COUNT)]
DAGS = """
import os
import time
from datetime import datetime, timedelta

from cluster.operators.python import PythonOperator
from cluster.sdk import DAG, BaseOperator, get_current_context
from cluster.triggers.temporal import TimeDeltaTrigger

SIDE_EFFECTS = @SIDE_EFFECTS@


def mark(name):
    # one line per try that ran this code: its try number
    try_number = get_current_context()["ti"].try_number
    with open(os.path.join(SIDE_EFFECTS, name), "a") as fh:
        fh.write(f"{try_number}\\n")
    time.sleep(1)


class Deferring(BaseOperator):
    # hands a 30 s trigger to a triggerer; the resumed try writes the side effect

    def __init__(self, name, **kwargs):
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context):
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=30)), method_name="resume")

    def resume(self, context, event=None):
        with open(os.path.join(SIDE_EFFECTS, self.name), "a") as fh:
            fh.write(f"{context['ti'].try_number}\\n")


for d in range(@DAG_COUNT@):
    with DAG(
        f"accept_{d}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        max_active_tasks=8,
        default_args={"retries": 3, "retry_delay": timedelta(seconds=1)},
    ) as dag:
        for n in range(@TASKS@):
            if d == @DEFERRED@:
                Deferring(task_id=f"t{n:03d}", name=f"accept_{d}.t{n:03d}")
                continue
            PythonOperator(
                task_id=f"t{n:03d}", python_callable=mark, op_args=[f"accept_{d}.t{n:03d}"]
            )
    globals()[f"dag_{d}"] = dag
"""
SETTINGS = [
    "core.dags_are_paused_at_creation=false",
    "core.load_examples=false",
    "core.parallelism=64",
    "celery.worker_concurrency=4",
    "scheduler.poll_interval=0.2",
    "scheduler.dag_dir_list_interval=5",
    "scheduler.heartbeat_interval=1",
    "scheduler.zombie_threshold=15",
    "scheduler.queued_timeout=60",
    "triggerer.health_timeout=10",
    "triggerer.heartbeat_interval=1",
    "triggerer.poll_interval=0.5",
]
UP_TIMEOUT = 900
CLI_TIMEOUT = 300
#: seconds for the cluster to show a recovery (a new leader, tasks completing again)
RECOVERY_TIMEOUT = 180
RUNS_TIMEOUT = 600


@dataclass
class DevCluster:
    """``tradewind dev-cluster`` commands against one directory, run as a user would."""

    root: Path
    env: dict[str, str]
    side_effects: Path
    state: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cluster.cli", "dev-cluster", *args, "--dir", str(self.root)],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"dev-cluster {' '.join(args)}: {done.stderr}{done.stdout}"
        self.state = json.loads((self.root / "state.json").read_text())
        return done.stdout

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("status", "-o", "json"))
        return data

    def pid(self, service: str) -> int:
        return next(int(s["pid"]) for s in self.state["services"] if s["name"] == service)

    def names(self, kind: str) -> list[str]:
        return [s["name"] for s in self.state["services"] if s["kind"] == kind]

    def logs(self) -> str:
        parts = []
        for name in [s["name"] for s in self.state.get("services", [])]:
            done = subprocess.run(
                [*_cli(), "dev-cluster", "logs", name, "-n", "25", "--dir", str(self.root)],
                env=self.env,
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            parts.append(done.stdout or done.stderr)
        return "\n".join(parts)

    def sessions(self) -> sessionmaker[Session]:
        settings = load_settings({}, home=Path(self.state["operator_home"]))
        return make_session_factory(create_engine_for(settings.metastore))

    def side_effect_count(self) -> int:
        return sum(1 for path in self.side_effects.iterdir() if path.is_file())

    def admin_socket(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(self.state["stats_socket"])
            client.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def haproxy_status(self, server: str) -> str:
        for line in self.admin_socket("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[1] == server and fields[0] != "stats":
                return fields[17]
        return "absent"


def _cli() -> list[str]:
    return [sys.executable, "-m", "cluster.cli"]


class UiClient(threading.Thread):
    """A user's browser and API script: authenticated GETs through HAProxy, all along."""

    PATHS = ("/", "/api/v1/dags?limit=10")

    def __init__(self, url: str, user: str, password: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.http = requests.Session()
        self.user, self.password = user, password
        self.ok = 0
        self.failures: list[str] = []
        self.halt = threading.Event()

    def login(self) -> None:
        form = self.http.get(f"{self.url}/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        answer = self.http.post(
            f"{self.url}/login",
            data={"username": self.user, "password": self.password, "csrf_token": token[1]},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.text[:500]

    def run(self) -> None:
        while not self.halt.is_set():
            for path in self.PATHS:
                try:
                    answer = self.http.get(self.url + path, timeout=30, allow_redirects=False)
                except requests.RequestException as exc:
                    self.failures.append(f"{time.strftime('%X')} {path}: {exc}")
                    continue
                if answer.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{time.strftime('%X')} {path}: {answer.status_code}")
            self.halt.wait(0.2)  # pacing: a user clicking, not a load test

    @property
    def total(self) -> int:
        return self.ok + len(self.failures)


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    base = tmp_path_factory.mktemp("dc")  # short: Unix socket paths must stay short
    side_effects = base / "side"
    side_effects.mkdir()
    dags = base / "dags"
    dags.mkdir()
    write_dag(
        dags / "acceptance.py",
        DAGS,
        side_effects=repr(str(side_effects)),
        dag_count=DAG_COUNT,
        tasks=TASKS_PER_DAG,
        deferred=DEFERRED_DAG,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    env["TRADEWIND_HOME"] = str(base / "home")
    dev = DevCluster(base / "c", env, side_effects)
    settings = [arg for text in SETTINGS for arg in ("--set", text)]
    try:
        dev.run("up", "--dags", str(dags), *settings, timeout=UP_TIMEOUT)
        yield dev
    except BaseException:
        print(dev.logs())
        raise
    finally:
        if (dev.root / "state.json").exists():
            dev.run("down", "--keep", timeout=CLI_TIMEOUT)


def test_losing_one_of_everything_loses_no_work(cluster: DevCluster) -> None:
    assert len(cluster.names("scheduler")) == 2 and len(cluster.names("worker")) == 2
    assert len(cluster.names("zookeeper")) == 3 and len(cluster.names("rabbitmq")) == 3
    assert len(cluster.names("triggerer")) == 2
    sessions = cluster.sessions()
    ui = UiClient(
        cluster.state["url"], cluster.state["admin_user"], cluster.state["admin_password"]
    )
    api = requests.Session()
    api.auth = (cluster.state["admin_user"], cluster.state["admin_password"])
    wait_for(lambda: _dags_known(api, cluster.state["url"]), timeout=RECOVERY_TIMEOUT)
    ui.login()
    ui.start()
    runs: dict[str, str] = {}
    stages = [
        _lose_the_leader,
        _lose_a_worker,
        _lose_a_webserver,
        _lose_a_broker_node,
        _lose_a_zookeeper_node,
        _lose_a_triggerer,
    ]
    for dag_id, stage in zip(DAG_IDS, stages, strict=True):
        runs[dag_id] = _trigger(api, cluster.state["url"], dag_id)
        _wait_for_progress(cluster, tasks=5)  # the run is under way: now break something
        stage(cluster, sessions)

    wait_for(
        lambda: _all_finished(sessions, runs),
        timeout=RUNS_TIMEOUT,
        interval=1,
        message=lambda: f"every run to finish: {_run_states(sessions, runs)}\n{cluster.logs()}",
    )
    ui.halt.set()
    ui.join(60)

    assert _run_states(sessions, runs) == dict.fromkeys(runs, "success")
    _assert_each_try_ran_once(cluster.side_effects, sessions, runs)
    print(f"UI through HAProxy: {ui.ok} of {ui.total} requests answered; {ui.failures}")
    assert ui.total > 100, ui.total
    assert ui.ok / ui.total >= 0.99, (ui.ok, ui.total, ui.failures)


# --- the stages: kill, wait for the recovery, start again ---------------------------------


def _lose_the_leader(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    old = _lease(sessions)
    leader = next(n for n in cluster.names("scheduler") if cluster.pid(n) == old[1])
    cluster.run("kill", leader)
    others = {cluster.pid(name) for name in cluster.names("scheduler") if name != leader}

    def taken_over() -> bool:
        epoch, pid = _lease(sessions)
        return epoch > old[0] and pid in others

    wait_for(taken_over, timeout=RECOVERY_TIMEOUT, message=lambda: cluster.logs())
    successor = cluster.status()["leader"]
    assert successor not in (None, leader), successor
    cluster.run("start", leader)


def _lose_a_worker(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    worker = cluster.names("worker")[0]
    address = next(s["address"] for s in cluster.state["services"] if s["name"] == worker)
    # killed while it runs tasks: they die with it and must be retried, not lost
    wait_for(lambda: _running_on(sessions, address), timeout=RECOVERY_TIMEOUT)
    cluster.run("kill", worker.split("/")[0])
    print(f"killed {worker} while it ran {_running_on(sessions, address)}")
    _wait_for_progress(cluster)
    cluster.run("start", worker)


def _running_on(sessions: sessionmaker[Session], address: str) -> list[str]:
    with sessions() as session:
        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.task_id).where(
                TaskInstance.state == "running", TaskInstance.hostname == address
            )
        ).all()
    return [f"{dag_id}.{task_id}" for dag_id, task_id in rows]


def _lose_a_webserver(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    webserver = cluster.names("webserver")[0]
    node = webserver.split("/")[0]
    cluster.run("kill", webserver)
    wait_for(lambda: cluster.haproxy_status(node) == "DOWN", timeout=RECOVERY_TIMEOUT)
    cluster.run("start", webserver)
    wait_for(lambda: cluster.haproxy_status(node) == "UP", timeout=RECOVERY_TIMEOUT)


def _lose_a_broker_node(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    broker = cluster.names("rabbitmq")[0]  # the first URL every client tries
    cluster.run("kill", broker)
    _wait_for_progress(cluster)
    cluster.run("start", broker)


def _lose_a_zookeeper_node(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    nodes = {s["name"]: s for s in cluster.state["services"] if s["kind"] == "zookeeper"}
    leader = next(
        name
        for name, node in nodes.items()
        if zookeeper_mode(node["address"], node["port"]) == "leader"
    )
    cluster.run("kill", leader)
    _wait_for_progress(cluster)
    cluster.run("start", leader)


def _lose_a_triggerer(cluster: DevCluster, sessions: sessionmaker[Session]) -> None:
    """SIGKILL the triggerer holding the most triggers: the other takes them over."""
    holders = wait_for(lambda: _trigger_holders(sessions), timeout=RECOVERY_TIMEOUT)
    pid = max(holders, key=lambda p: holders[p])
    victim = next(n for n in cluster.names("triggerer") if cluster.pid(n) == pid)
    cluster.run("kill", victim)
    print(f"killed {victim} holding {holders[pid]} triggers")
    wait_for(
        lambda: pid not in _trigger_holders(sessions),
        timeout=RECOVERY_TIMEOUT,
        message=lambda: f"the dead triggerer's triggers taken over\n{cluster.logs()}",
    )
    cluster.run("start", victim)


def _trigger_holders(sessions: sessionmaker[Session]) -> dict[int, int]:
    """Triggerer PID → how many trigger rows it holds."""
    with sessions() as session:
        rows = session.execute(
            select(Component.pid, func.count())
            .join(Trigger, Trigger.triggerer_id == Component.id)
            .group_by(Component.pid)
        ).all()
    return {int(pid): int(count) for pid, count in rows}


def _wait_for_progress(cluster: DevCluster, tasks: int = 10) -> None:
    """Until ``tasks`` more tasks ran their code: the cluster works on."""
    done = cluster.side_effect_count()
    wait_for(
        lambda: cluster.side_effect_count() >= done + tasks,
        timeout=RECOVERY_TIMEOUT,
        message=lambda: f"{tasks} more tasks after a kill\n{cluster.logs()}",
    )


# --- reading the outcome ----------------------------------------------------------------


def _dags_known(api: requests.Session, url: str) -> bool:
    try:
        answer = api.get(f"{url}/api/v1/dags?limit=100", timeout=30)
    except requests.RequestException:
        return False
    if answer.status_code != 200:
        return False
    return set(DAG_IDS) <= {d["dag_id"] for d in answer.json()["dags"]}


def _trigger(api: requests.Session, url: str, dag_id: str) -> str:
    run_id = f"accept__{dag_id}"
    answer = api.post(
        f"{url}/api/v1/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return run_id


def _lease(sessions: sessionmaker[Session]) -> tuple[int, int | None]:
    with sessions() as session:
        lease = session.get(SchedulerLease, 1)
        return (lease.epoch, lease.leader_pid) if lease is not None else (0, None)


def _run_states(sessions: sessionmaker[Session], runs: dict[str, str]) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(select(DagRun.dag_id, DagRun.run_id, DagRun.state)).all()
    return {dag_id: str(state) for dag_id, run_id, state in rows if runs.get(dag_id) == run_id}


def _all_finished(sessions: sessionmaker[Session], runs: dict[str, str]) -> bool:
    states = _run_states(sessions, runs)
    return len(states) == len(runs) and all(s in ("success", "failed") for s in states.values())


def _assert_each_try_ran_once(
    side_effects: Path, sessions: sessionmaker[Session], runs: dict[str, str]
) -> None:
    with sessions() as session:
        final = {
            f"{dag_id}.{task_id}": (state, try_number)
            for dag_id, task_id, state, try_number in session.execute(
                select(
                    TaskInstance.dag_id,
                    TaskInstance.task_id,
                    TaskInstance.state,
                    TaskInstance.try_number,
                ).where(TaskInstance.dag_id.in_(list(runs)))
            )
        }
        history: dict[str, set[int]] = defaultdict(set)
        for dag_id, task_id, try_number in session.execute(
            select(
                TaskInstanceHistory.dag_id,
                TaskInstanceHistory.task_id,
                TaskInstanceHistory.try_number,
            ).where(TaskInstanceHistory.dag_id.in_(list(runs)))
        ):
            history[f"{dag_id}.{task_id}"].add(try_number)
    assert len(final) == DAG_COUNT * TASKS_PER_DAG
    ran = {
        path.name: [int(line) for line in path.read_text().split()]
        for path in side_effects.iterdir()
    }
    assert set(ran) == set(final), set(final) ^ set(ran)
    twice = {name: tries for name, tries in ran.items() if len(tries) != len(set(tries))}
    assert twice == {}, f"a try ran twice: {twice}"
    for name, (state, try_number) in final.items():
        tries = set(ran[name]) | {try_number}
        assert state == "success", (name, state)
        assert try_number in ran[name], (name, try_number, ran[name])
        assert tries <= history[name] | {try_number}, (name, ran[name], history[name])
    retried = sorted(name for name, tries in ran.items() if len(tries) > 1)
    print(f"tasks run more than once (genuine retries): {len(retried)} {retried[:20]}")
