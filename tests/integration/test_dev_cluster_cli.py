"""``tradewind dev-cluster`` end to end, small but real: one node of each kind.

``up`` starts MariaDB, RabbitMQ, ZooKeeper, a master (scheduler + webserver), a worker
and HAProxy as detached processes and returns; every later command is a separate
process that finds them through the state file: ``status`` reads their PIDs and the
scheduler's role, ``kill`` crashes one, ``start`` brings it back on its old data,
``logs`` shows its log, ``down`` stops them all and nothing of them is left. The same
on PostgreSQL (``--metastore postgresql``), whose server is crashed and started again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from cluster.devcluster.pids import ProcessId, is_running
from tests.integration.scheduler_harness import REPO
from tests.waiting import wait_for

UP_TIMEOUT = 600
CLI_TIMEOUT = 300
#: what a master runs in the dev cluster
MASTER_SERVICES = ("scheduler", "triggerer", "webserver")


@dataclass
class Cli:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cluster.cli", "dev-cluster", *args, "--dir", str(self.root)],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"dev-cluster {' '.join(args)}:\n{done.stderr}{done.stdout}"
        return done.stdout

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "state.json").read_text())
        return data

    def processes(self) -> dict[str, ProcessId]:
        return {s["name"]: ProcessId(s["pid"], s["started"]) for s in self.state()["services"]}

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ok("status", "-o", "json"))
        return data


@pytest.fixture
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    base = tmp_path_factory.mktemp("dcli")  # short: Unix socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    env["TRADEWIND_HOME"] = str(base / "home")
    runner = Cli(base / "c", env)
    yield runner
    if (runner.root / "state.json").exists():  # the test failed before its own `down`
        for name in runner.processes():
            print(runner.run("logs", name, "-n", "30").stdout)
        runner.run("down", "--keep")


@pytest.mark.mariadb
def test_up_status_kill_start_logs_down(cli: Cli) -> None:
    assert "no dev cluster in" in cli.run("status").stderr

    shown = cli.ok(
        "up",
        "--masters", "1", "--workers", "1", "--zookeepers", "1", "--rabbitmq", "1",
        "--set", "core.load_examples=false",
        timeout=UP_TIMEOUT,
    )  # fmt: skip
    state = cli.state()
    processes = cli.processes()
    assert set(processes) == {
        "metastore1/mariadb",
        "zookeeper1/zookeeper",
        "broker1/epmd",
        "broker1/rabbitmq",
        *(f"master1/{s}" for s in MASTER_SERVICES),
        "worker1/worker",
        "loadbalancer1/haproxy",
    }
    assert all(is_running(p) for p in processes.values())
    assert state["url"] in shown and state["admin_password"] in shown
    for pid in (p.pid for p in processes.values()):
        assert str(pid) in shown

    # each node has the one tradewind.toml a deployed node has, on its own address
    master = tomllib.loads((cli.root / "nodes" / "master1" / "tradewind.toml").read_text())
    assert master["core"]["hostname"] == "127.0.2.1"
    assert master["ha"]["election"] == "zookeeper"
    assert master["core"]["load_examples"] is False

    # HAProxy's front answers for the webserver, with the admin user `up` created
    answer = requests.get(
        f"{state['url']}/api/v1/dags",
        auth=(state["admin_user"], state["admin_password"]),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    status = cli.status()
    assert status["leader"] == "master1/scheduler", status
    assert {s["name"]: s["state"] for s in status["services"]} == dict.fromkeys(processes, "up")

    # a crash, seen by status, then a restart on the same data
    cli.ok("kill", "broker1/rabbitmq")
    assert not is_running(processes["broker1/rabbitmq"])
    down = {s["name"]: s["state"] for s in cli.status()["services"]}
    assert down["broker1/rabbitmq"] == "down" and down["broker1/epmd"] == "up"
    cli.ok("start", "broker1/rabbitmq")
    restarted = cli.processes()["broker1/rabbitmq"]
    assert restarted != processes["broker1/rabbitmq"] and is_running(restarted)

    # a whole node: all its services
    cli.ok("kill", "master1")
    assert not any(is_running(processes[f"master1/{s}"]) for s in MASTER_SERVICES)
    cli.ok("start", "master1")
    wait_for(lambda: cli.status()["leader"] == "master1/scheduler", timeout=120, interval=1)

    assert "rabbit1@localhost" in cli.ok("logs", "broker1/rabbitmq", "-n", "200")
    assert "won the scheduler election" in cli.ok("logs", "master1/scheduler", "-n", "500")

    # bad arguments are one clear line
    for args, message in [
        (("kill", "master7"), "no node or service 'master7'"),
        (("logs", "master1"), "has 3 services: say which one of master1/"),
        (("up",), "a dev cluster is already in"),
        (("up", "--masters", "0"), "--masters 0"),
    ]:
        done = cli.run(*args)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr

    final = cli.processes()
    assert "Removed" in cli.ok("down")
    assert not any(is_running(p) for p in final.values())
    assert not cli.root.exists()


@pytest.mark.postgres
def test_a_dev_cluster_on_postgresql_survives_a_metastore_crash(cli: Cli) -> None:
    cli.ok(
        "up",
        "--metastore", "postgresql",
        "--masters", "1", "--workers", "1", "--zookeepers", "1", "--rabbitmq", "1",
        "--set", "core.load_examples=false",
        timeout=UP_TIMEOUT,
    )  # fmt: skip
    state = cli.state()
    processes = cli.processes()
    assert "metastore1/postgresql" in processes and "metastore1/mariadb" not in processes
    master = tomllib.loads((cli.root / "nodes" / "master1" / "tradewind.toml").read_text())
    assert master["metastore"]["url"].startswith("postgresql+psycopg://tradewind:")
    outside = (cli.root / "services" / "metastore1" / "postgres-run").resolve()

    def dags_answer() -> bool:
        answer = requests.get(
            f"{state['url']}/api/v1/dags",
            auth=(state["admin_user"], state["admin_password"]),
            timeout=30,
        )
        return answer.status_code == 200

    assert dags_answer()
    cli.ok("kill", "postgresql")  # SIGKILL of the server's whole process group: a crash
    assert not is_running(processes["metastore1/postgresql"])
    cli.ok("start", "metastore1/postgresql")  # replays its WAL from the same data
    wait_for(dags_answer, timeout=60, interval=0.5)
    wait_for(lambda: cli.status()["leader"] == "master1/scheduler", timeout=120, interval=1)
    assert "database system is ready" in cli.ok("logs", "metastore1/postgresql", "-n", "200")

    final = cli.processes()
    assert "Removed" in cli.ok("down")
    assert not any(is_running(p) for p in final.values())
    assert not cli.root.exists() and not outside.exists()
