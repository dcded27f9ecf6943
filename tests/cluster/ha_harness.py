"""Harness of the HA tests: several ``tradewind scheduler`` processes under a real
ZooKeeper election, Celery workers on a real RabbitMQ, one MariaDB metastore.

Each deployment gets its own election path (``ha.chroot``), so tests can share one
ZooKeeper ensemble. Who leads is read from the metastore's ``scheduler_lease`` (the
fencing epoch) and from ``tradewind cluster status -o json``, never guessed.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble, free_loopback_addresses
from cluster.metastore.models import SchedulerLease, TaskInstance
from tests.integration.celery_harness import CeleryDeployment, TradewindProcess
from tests.integration.scheduler_harness import CLI, REPO
from tests.waiting import wait_for

HA_DAGS = """
import os
from datetime import datetime

from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator
from cluster.sdk import DAG

START = datetime(2024, 1, 1)


def mark(name):
    with open(os.path.join("@SIDE_EFFECTS@", name), "a") as fh:
        fh.write(f"{os.getpid()}\\n")


with DAG("ha_wide", schedule=None, start_date=START, max_active_tasks=64) as wide:
    for n in range(300):
        PythonOperator(task_id=f"t{n:03d}", python_callable=mark, op_args=[f"t{n:03d}"])

with DAG("ha_chain", schedule=None, start_date=START) as chain:
    previous = None
    for n in range(30):
        step = BashOperator(
            task_id=f"s{n:02d}", bash_command=f"sleep 0.3; echo x >> @SIDE_EFFECTS@/s{n:02d}"
        )
        if previous is not None:
            previous >> step
        previous = step
"""

HA_DAG_IDS = {"ha_wide", "ha_chain"}


def start_zookeeper(base: Path, *, size: int = 3) -> ZooKeeperEnsemble:
    """A started ensemble; fails (never skips) when ZooKeeper is not installed."""
    try:
        ensemble = ZooKeeperEnsemble(base, free_loopback_addresses(size))
    except ServiceError as exc:
        pytest.fail(f"ZooKeeper is needed by this test and is not installed: {exc}")
    ensemble.start()
    return ensemble


@dataclass(frozen=True)
class Lease:
    epoch: int
    host: str | None
    pid: int | None
    acquired_at: datetime | None


class HaDeployment(CeleryDeployment):
    """Schedulers (master1..3 by default) contending in ZooKeeper, plus Celery workers.

    :param dags: ``{file name: source}`` of the DAG folder (the two HA DAGs by default).
    """

    def __init__(
        self,
        base: Path,
        *,
        zookeeper_hosts: list[str],
        schedulers: int = 3,
        session_timeout: float = 4.0,
        dags: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            base,
            dags=dags or {"ha_dags.py": HA_DAGS},
            HA__ELECTION="zookeeper",
            HA__ZOOKEEPER_HOSTS=json.dumps(zookeeper_hosts),
            HA__SESSION_TIMEOUT=session_timeout,
            HA__CHROOT=f"/tw-{uuid.uuid4().hex[:8]}",
            SCHEDULER__POLL_INTERVAL=0.5,
            SCHEDULER__HEARTBEAT_INTERVAL=1.0,
            **kwargs,
        )
        self.session_timeout = session_timeout
        self.schedulers = [
            TradewindProcess(
                {**self.env, "TRADEWIND__CORE__HOSTNAME": f"master{n}"},
                ["scheduler"],
                base / f"scheduler{n}.log",
            )
            for n in range(1, schedulers + 1)
        ]
        # the base class's single scheduler is replaced by the contenders above
        self.scheduler = self.schedulers[0]

    def start(self, dag_ids: set[str] = HA_DAG_IDS) -> HaDeployment:
        """Migrate, then start every contender and the workers (see the base class)."""
        super().start(dag_ids)
        return self

    def start_schedulers(self) -> None:
        """Every contender, once the metastore is migrated: a contender started before
        would wait for the migration and join the election late."""
        for scheduler in self.schedulers:
            scheduler.start()

    def processes(self) -> list[TradewindProcess]:
        return [*self.schedulers, *self.workers.values()]

    def logs(self, lines: int = 40) -> str:
        parts = [
            f"--- scheduler{n} (pid {s.process.pid if s.process else '-'}) ---\n{s.log_tail(lines)}"
            for n, s in enumerate(self.schedulers, start=1)
        ]
        parts += [f"--- worker {a} ---\n{w.log_tail(lines)}" for a, w in self.workers.items()]
        return "\n".join(parts)

    # --- who leads ----------------------------------------------------------------

    def lease(self) -> Lease:
        with self.sessions() as session:
            row = session.scalars(select(SchedulerLease)).first()
        if row is None:
            return Lease(0, None, None, None)
        return Lease(row.epoch, row.leader_host, row.leader_pid, row.acquired_at)

    def leader(self, *, newer_than: int = 0, timeout: float = 60) -> tuple[TradewindProcess, Lease]:
        """The running scheduler holding an epoch newer than ``newer_than``."""

        def found() -> tuple[TradewindProcess, Lease] | None:
            lease = self.lease()
            if lease.epoch <= newer_than:
                return None
            for scheduler in self.schedulers:
                if scheduler.running() and scheduler.pid == lease.pid:
                    return scheduler, lease
            return None

        return wait_for(found, timeout=timeout, interval=0.05, message=lambda: self.logs())

    def status(self) -> dict[str, Any]:
        """``tradewind cluster status -o json``, run as an operator would."""
        done = subprocess.run(
            [*CLI, "cluster", "status", "-o", "json"],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def roles(self) -> dict[int, str]:
        """``pid → role`` of every scheduler in ``cluster status``."""
        return {s["pid"]: s["role"] for s in self.status()["schedulers"]}

    def wait_for_roles(self, expected: dict[int, str], *, timeout: float = 60) -> dict[str, Any]:
        """Poll ``cluster status`` until the schedulers' roles are ``expected``."""

        def matches() -> dict[str, Any] | None:
            status = self.status()
            roles = {s["pid"]: s["role"] for s in status["schedulers"]}
            wanted = {pid: roles.get(pid) for pid in expected}
            return status if wanted == expected else None

        return wait_for(matches, timeout=timeout, interval=0.5, message=lambda: str(self.status()))

    # --- what happened --------------------------------------------------------------

    def side_effect_counts(self) -> dict[str, int]:
        return {
            path.name: len(path.read_text().splitlines())
            for path in self.side_effects.iterdir()
            if path.is_file()
        }

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        with self.sessions() as session:
            rows = session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            ).all()
        return {task_id: state for task_id, state in rows}

    def dispatches(self, dag_id: str, run_id: str) -> list[tuple[int, datetime]]:
        """``(queued_by_epoch, queued_at)`` of every task instance's current try."""
        with self.sessions() as session:
            rows = session.execute(
                select(TaskInstance.queued_by_epoch, TaskInstance.queued_at).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            ).all()
        return [(int(e), q) for e, q in rows if e is not None and q is not None]


def assert_one_scheduler_at_a_time(dispatches: list[tuple[int, datetime]]) -> list[int]:
    """Every epoch's dispatches form a time span; the spans never overlap, in epoch order."""
    spans: dict[int, list[datetime]] = defaultdict(list)
    for epoch, queued_at in dispatches:
        spans[epoch].append(queued_at)
    epochs = sorted(spans)
    for older, newer in itertools.pairwise(epochs):
        assert max(spans[older]) <= min(spans[newer]), (
            f"epoch {older} dispatched at {max(spans[older])}, after epoch {newer} began "
            f"at {min(spans[newer])}"
        )
    return epochs


def wait_for_log_count(process: TradewindProcess, text: str, count: int, *, timeout: float) -> None:
    """Wait until ``text`` appears ``count`` times in the process's log."""
    wait_for(
        lambda: process.read_log().count(text) >= count,
        timeout=timeout,
        interval=0.1,
        message=lambda: f"{count}x {text!r} in the log\n{process.log_tail()}",
    )


def freeze(process: TradewindProcess) -> None:
    os.kill(process.pid, signal.SIGSTOP)


def thaw(process: TradewindProcess) -> None:
    os.kill(process.pid, signal.SIGCONT)


def kill_group(process: TradewindProcess) -> None:
    """SIGKILL the process and whatever it forked (a crashed master)."""
    process.remember_tree()
    os.killpg(process.pid, signal.SIGKILL)
    assert process.process is not None
    process.process.wait(30)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
