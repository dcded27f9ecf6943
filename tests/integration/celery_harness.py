"""Harness of the Celery tests: a private RabbitMQ cluster, and ``tradewind`` processes
(a scheduler with the Celery executor, workers on their own loopback addresses) that
each test run starts itself and stops by PID, with everything they started.

Each worker gets its own loopback address (``127.0.1.N``) as ``--hostname``: the runner
records it on every try it runs (so a test can tell which worker ran what), and the
log server listens there, on the one ``logging.log_server_port`` of the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cluster import actions
from cluster.config import load_settings
from cluster.devcluster.services.ports import free_port, is_port_free
from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from tests.dagfiles import dag_source
from tests.integration.scheduler_harness import (
    CLI,
    REPO,
    TEST_ACTOR,
    children_of,
    cli_env,
    descendants_of,
    kill_leftovers,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

DEFINITIONS = REPO / "configs" / "rabbitmq" / "definitions.json"
#: the user and vhost of configs/rabbitmq/definitions.json
BROKER_USER = "tradewind"
BROKER_PASSWORD = "tradewind"
BROKER_VHOST = "tradewind"


def start_rabbitmq(base_dir: Path, *, nodes: int = 3, management: bool = False) -> RabbitMQCluster:
    """A started cluster loaded with the repository's definitions; fails the test (never
    skips) when RabbitMQ is not installed: a green run must mean the broker was tested."""
    try:
        cluster = RabbitMQCluster(
            base_dir,
            nodes=nodes,
            definitions=DEFINITIONS,
            user=BROKER_USER,
            password=BROKER_PASSWORD,
            vhost=BROKER_VHOST,
            management=management,
        )
    except ServiceError as exc:
        pytest.fail(f"RabbitMQ is needed by this test and is not installed: {exc}")
    try:
        cluster.start()
    except ServiceError:
        cluster.stop()
        raise
    return cluster


def port_free_on(addresses: list[str]) -> int:
    """A port below the ephemeral range that is free on every one of ``addresses``."""
    for _ in range(50):
        port = free_port(addresses[0])
        if all(is_port_free(address, port) for address in addresses):
            return port
    raise AssertionError(f"no port free on all of {addresses}")


def celery_env(base: dict[str, str], broker_urls: list[str], **settings: object) -> dict[str, str]:
    """``base`` (from :func:`cli_env`) with the Celery executor on ``broker_urls``."""
    env = dict(base)
    env.update(
        {
            "TRADEWIND__CORE__EXECUTOR": "celery",
            "TRADEWIND__CELERY__BROKER_URLS": json.dumps(broker_urls),
        }
    )
    env.update({f"TRADEWIND__{k}": str(v) for k, v in settings.items()})
    return env


class TradewindProcess:
    """One ``tradewind`` command run in the background, in a session of its own."""

    def __init__(self, env: dict[str, str], args: list[str], log_file: Path) -> None:
        self.env = env
        self.args = args
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        #: every PID seen in its tree (pool processes, task children)
        self.seen: set[int] = set()
        self._terminated = False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> TradewindProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, *self.args],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def remember_tree(self) -> None:
        if self.running():
            self.seen.update(descendants_of(self.pid))

    def signal(self, signum: int) -> None:
        self.remember_tree()
        os.kill(self.pid, signum)

    def wait_for_log(self, text: str, *, timeout: float) -> None:
        """Poll the output until ``text`` shows up; fail early if the process exits."""

        def found() -> bool:
            if not self.running():
                raise AssertionError(f"{self.args} exited early:\n{self.log_tail()}")
            return text in self.read_log()

        wait_for(found, timeout=timeout, message=lambda: f"{text!r} in\n{self.log_tail()}")

    def read_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.read_log().splitlines()[-lines:])

    def terminate(self) -> None:
        """Send the one SIGTERM that starts a graceful stop (a worker drains)."""
        if self.running() and not self._terminated:
            self.signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (once), SIGKILL after ``timeout``; then every leftover by PID."""
        if self.process is None:
            return
        self.remember_tree()
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        kill_leftovers(self.seen)


def start_worker(
    env: dict[str, str], log_dir: Path, *, address: str, queues: str, concurrency: int = 2
) -> TradewindProcess:
    """``tradewind worker`` on ``address``, started and ready to consume."""
    worker = launch_worker(env, log_dir, address=address, queues=queues, concurrency=concurrency)
    wait_until_ready(worker, address)
    return worker


def launch_worker(
    env: dict[str, str], log_dir: Path, *, address: str, queues: str, concurrency: int = 2
) -> TradewindProcess:
    """``tradewind worker`` on ``address``, started (see :func:`wait_until_ready`)."""
    return TradewindProcess(
        env,
        ["worker", "-q", queues, "-c", str(concurrency), "--hostname", address],
        log_dir / f"worker-{address}.log",
    ).start()


def wait_until_ready(worker: TradewindProcess, address: str) -> None:
    """Until the worker on ``address`` says it consumes (it fails early if it exits)."""
    worker.wait_for_log(f"tradewind@{address} ready", timeout=60)


def kill_worker_hard(worker: TradewindProcess) -> set[int]:
    """SIGKILL a worker's Celery main process and its pool processes: a crash.

    Returns every PID of its tree seen just before (task children included), so a test
    can check that nothing of the dead worker lives on.
    """
    tree = set(descendants_of(worker.pid))
    worker.seen.update(tree)
    pool = children_of(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    for pid in pool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert worker.process is not None
    worker.process.wait(30)
    return tree | {worker.pid}


class CeleryDeployment:
    """One test's Tradewind on a shared broker and database server: its own metastore
    database, home, DAG folder, a ``tradewind scheduler`` and ``tradewind worker``s.

    :param dags: ``{file name: source}`` written into the DAG folder; ``@SIDE_EFFECTS@``
        is replaced by :attr:`side_effects`, a folder tasks may write to.
    :param workers: ``{loopback address: queues}``, one worker each.
    :param settings: ``SECTION__KEY=value`` settings of every process.
    """

    def __init__(
        self,
        base: Path,
        *,
        metastore_url: str,
        broker_urls: list[str],
        dags: dict[str, str],
        workers: dict[str, str],
        concurrency: int = 2,
        **settings: object,
    ) -> None:
        self.base = base
        self.home = base / "home"
        self.side_effects = base / "side_effects"
        self.dags = dags
        self.concurrency = concurrency
        self.worker_queues = workers
        env = cli_env(self.home, metastore_url, Fernet.generate_key().decode())
        self.env = celery_env(
            env,
            broker_urls,
            WEBSERVER__SECRET_KEY="resilience-test-secret",
            LOGGING__LOG_SERVER_PORT=port_free_on(list(workers)),
            **settings,
        )
        self.settings = load_settings(env=self.env)
        self.engine = create_engine_for(self.settings.metastore)
        self.sessions = make_session_factory(self.engine)
        self.scheduler = TradewindProcess(self.env, ["scheduler"], base / "scheduler.log")
        self.workers: dict[str, TradewindProcess] = {}

    def start(self, dag_ids: set[str]) -> CeleryDeployment:
        """Write the DAGs, migrate, start the scheduler and every worker; wait for ``dag_ids``."""
        (self.home / "dags").mkdir(parents=True)
        self.side_effects.mkdir()
        for name, source in self.dags.items():
            text = dag_source(source, side_effects=self.side_effects)
            (self.home / "dags" / name).write_text(text)
        migrate(self.engine)  # before any process starts: none has to wait for it
        self.start_schedulers()
        for address, queues in self.worker_queues.items():  # all start at once
            self.workers[address] = launch_worker(
                self.env, self.base, address=address, queues=queues, concurrency=self.concurrency
            )
        for address, worker in self.workers.items():
            wait_until_ready(worker, address)
        wait_for_dags(self.sessions, dag_ids)
        return self

    def start_schedulers(self) -> None:
        """Start the scheduler; called once the metastore is migrated."""
        self.scheduler.start()

    def trigger(self, dag_id: str) -> str:
        run_id = f"manual__{uuid.uuid4().hex[:12]}"
        with self.sessions.begin() as session:
            actions.trigger(session, dag_id, actor=TEST_ACTOR, run_id=run_id, now=datetime.now(UTC))
        return run_id

    def processes(self) -> list[TradewindProcess]:
        return [self.scheduler, *self.workers.values()]

    def logs(self, lines: int = 40) -> str:
        parts = [f"--- scheduler ---\n{self.scheduler.log_tail(lines)}"]
        parts += [f"--- worker {a} ---\n{w.log_tail(lines)}" for a, w in self.workers.items()]
        return "\n".join(parts)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120) -> str:
        try:
            return wait_for_run(self.sessions, dag_id, run_id, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from exc

    def stop(self) -> None:
        """Stop every process (all drain at once), then release the engine."""
        for process in self.processes():
            if process.process is not None:
                process.terminate()
        for process in self.processes():
            process.stop()
        self.engine.dispose()
