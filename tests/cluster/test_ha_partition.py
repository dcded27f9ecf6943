"""The leader cut off from ZooKeeper by a real network partition.

Three schedulers each run in a network namespace of their own; MariaDB and a
three-node ZooKeeper ensemble run in an infra namespace, all joined by a bridge
(tests/cluster/netns.py). The partition is an nftables drop in the leader's namespace
of everything to and from the ZooKeeper nodes; the leader still reaches MariaDB, so
only its own reaction to SUSPENDED and the fencing epoch stand between the cluster
and two schedulers writing at once.

The schedulers run tasks with the local executor here: a broker would have to live
in the namespaces too, and the Celery path of failover is covered by
test_ha_scheduling.py. Side effects (one line per execution) show nothing ran twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.config import MetastoreSettings
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.zookeeper import ZkAddress, ZooKeeperEnsemble
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import SchedulerLease, SerializedDagRow, TaskInstance
from tests.cluster.ha_harness import HA_DAGS, assert_one_scheduler_at_a_time, wait_for_log_count
from tests.cluster.netns import INFRA_ADDRESS, NamespaceNet
from tests.dagfiles import write_dag
from tests.integration.celery_harness import TradewindProcess
from tests.integration.scheduler_harness import CLI, REPO, TEST_ACTOR, cli_env
from tests.waiting import wait_for

pytestmark = pytest.mark.mariadb

SESSION_TIMEOUT = 4.0
MARIADB_PORT = 23306
ZK_PORT = 2181


class NamespacedProcess(TradewindProcess):
    """A ``tradewind`` command run inside a network namespace."""

    def __init__(self, prefix: list[str], env: dict[str, str], args: list[str], log: Path) -> None:
        super().__init__(env, args, log)
        self.prefix = prefix

    def start(self) -> NamespacedProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, *CLI, *self.args],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self


@pytest.fixture
def net() -> Iterator[NamespaceNet]:
    if shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.fail("the partition test needs iproute2 and nftables (scripts/install-deps)")
    network = NamespaceNet(3, extra_infra_addresses=3).create()
    try:
        yield network
    finally:
        network.destroy()


@pytest.fixture
def infra(net: NamespaceNet, tmp_path: Path) -> Iterator[tuple[MariaDB, ZooKeeperEnsemble]]:
    prefix = net.exec_prefix(net.infra)
    mariadb = MariaDB(
        tmp_path / "mariadb", host=INFRA_ADDRESS, port=MARIADB_PORT, fsync=False, prefix=prefix
    )
    addresses = [ZkAddress(a, ZK_PORT, 2888, 3888) for a in net.service_addresses]
    zookeeper = ZooKeeperEnsemble(tmp_path / "zookeeper", addresses, prefix=prefix)
    try:
        mariadb.start()
        zookeeper.start()
        yield mariadb, zookeeper
    finally:
        zookeeper.stop()
        mariadb.stop()


def test_leader_cut_off_from_zookeeper(
    net: NamespaceNet, infra: tuple[MariaDB, ZooKeeperEnsemble], tmp_path: Path
) -> None:
    mariadb, zookeeper = infra
    database = f"tw_part_{uuid.uuid4().hex[:8]}"
    mariadb.create_database(database)
    sessions = _migrated_sessions(mariadb.socket_url_for(database))
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    write_dag(home / "dags" / "ha_dags.py", HA_DAGS, side_effects=side_effects)
    env = cli_env(home, mariadb.url_for(database), Fernet.generate_key().decode())
    env.update(
        {
            "TRADEWIND__CORE__EXECUTOR": "local",
            "TRADEWIND__CORE__PARALLELISM": "4",
            "TRADEWIND__HA__ELECTION": "zookeeper",
            "TRADEWIND__HA__ZOOKEEPER_HOSTS": json.dumps(zookeeper.hosts),
            "TRADEWIND__HA__SESSION_TIMEOUT": str(SESSION_TIMEOUT),
            "TRADEWIND__SCHEDULER__POLL_INTERVAL": "0.5",
            "TRADEWIND__SCHEDULER__HEARTBEAT_INTERVAL": "1.0",
        }
    )
    schedulers = [
        NamespacedProcess(
            net.exec_prefix(namespace),
            {**env, "TRADEWIND__CORE__HOSTNAME": f"master{n}"},
            ["scheduler"],
            tmp_path / f"scheduler{n}.log",
        ).start()
        for n, namespace in enumerate(net.nodes, start=1)
    ]
    try:
        _partition_the_leader(net, schedulers, sessions, side_effects, env)
    except AssertionError as exc:
        logs = "\n".join(f"--- {s.log_file.name} ---\n{s.log_tail(60)}" for s in schedulers)
        raise AssertionError(f"{exc}\n{logs}") from exc
    finally:
        for scheduler in schedulers:
            scheduler.terminate()
        for scheduler in schedulers:
            scheduler.stop()


def _partition_the_leader(
    net: NamespaceNet,
    schedulers: list[TradewindProcess],
    sessions: sessionmaker[Session],
    side_effects: Path,
    env: dict[str, str],
) -> None:
    leader, epoch = _leader(schedulers, sessions, newer_than=0)
    namespace = net.nodes[schedulers.index(leader)]
    run_id = _trigger(sessions)
    wait_for(lambda: len(list(side_effects.iterdir())) >= 3, timeout=180, interval=0.1)

    suspended = leader.read_log().count("ZooKeeper connection suspended")
    cut_at = datetime.now(UTC)
    net.cut(namespace, net.service_addresses)
    wait_for_log_count(leader, "ZooKeeper connection suspended", suspended + 1, timeout=60)
    successor, _ = _leader(schedulers, sessions, newer_than=epoch, timeout=120)
    assert successor is not leader

    assert _run_state(sessions, run_id, timeout=240) == "success"
    counts = {p.name: len(p.read_text().splitlines()) for p in side_effects.iterdir()}
    assert len(counts) == 30 and set(counts.values()) == {1}, counts
    dispatches = _dispatches(sessions, run_id)
    assert_one_scheduler_at_a_time(dispatches)
    late = [
        q for e, q in dispatches if e == epoch and q > cut_at + timedelta(seconds=SESSION_TIMEOUT)
    ]
    assert late == [], f"the cut-off leader kept scheduling: {late}"

    net.heal(namespace)
    roles = _wait_for_roles(net, env, {leader.pid: "standby", successor.pid: "leader"})
    assert roles["election"]["holder"].endswith(f":{successor.pid}")
    assert leader.running(), "the old leader must stay up as a standby"


def _migrated_sessions(url: str) -> sessionmaker[Session]:
    engine = create_engine_for(MetastoreSettings(url=url))
    migrate(engine)
    return make_session_factory(engine)


def _leader(
    schedulers: list[TradewindProcess],
    sessions: sessionmaker[Session],
    *,
    newer_than: int,
    timeout: float = 90,
) -> tuple[TradewindProcess, int]:
    def found() -> tuple[TradewindProcess, int] | None:
        with sessions() as session:
            lease = session.scalars(select(SchedulerLease)).first()
        if lease is None or lease.epoch <= newer_than:
            return None
        for scheduler in schedulers:
            if scheduler.running() and scheduler.pid == lease.leader_pid:
                return scheduler, lease.epoch
        return None

    return wait_for(found, timeout=timeout, interval=0.1, message="a leader with a newer epoch")


def _trigger(sessions: sessionmaker[Session]) -> str:
    wait_for(lambda: _has_dag(sessions), timeout=120, interval=0.2, message="ha_chain serialized")
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    with sessions.begin() as session:
        actions.trigger(session, "ha_chain", actor=TEST_ACTOR, run_id=run_id, now=datetime.now(UTC))
    return run_id


def _has_dag(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return session.get(SerializedDagRow, "ha_chain") is not None


def _run_state(sessions: sessionmaker[Session], run_id: str, *, timeout: float) -> str:
    def finished() -> str | None:
        with sessions() as session:
            states = set(
                session.scalars(
                    select(TaskInstance.state).where(
                        TaskInstance.dag_id == "ha_chain", TaskInstance.run_id == run_id
                    )
                )
            )
        if states == {"success"}:
            return "success"
        return "failed" if "failed" in states or "upstream_failed" in states else None

    return wait_for(finished, timeout=timeout, interval=0.2, message="the run to finish")


def _dispatches(sessions: sessionmaker[Session], run_id: str) -> list[tuple[int, datetime]]:
    with sessions() as session:
        rows = session.execute(
            select(TaskInstance.queued_by_epoch, TaskInstance.queued_at).where(
                TaskInstance.dag_id == "ha_chain", TaskInstance.run_id == run_id
            )
        ).all()
    return [(int(e), q) for e, q in rows if e is not None and q is not None]


def _wait_for_roles(net: NamespaceNet, env: dict[str, str], expected: dict[int, str]) -> Any:
    """``tradewind cluster status -o json``, run inside a node's namespace, until it agrees."""

    def status() -> Any:
        done = subprocess.run(
            [*net.exec_prefix(net.nodes[0]), *CLI, "cluster", "status", "-o", "json"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        roles = {s["pid"]: s["role"] for s in data["schedulers"]}
        return data if {pid: roles.get(pid) for pid in expected} == expected else None

    return wait_for(status, timeout=90, interval=0.5, message=f"roles {expected}")
