"""High availability of the schedulers, with every part real: three ``tradewind
scheduler`` processes in a ZooKeeper election (a real three-node ensemble), Celery
workers on RabbitMQ, MariaDB or PostgreSQL (the tests that break a leader run on both).
Each test breaks the leader in one way and checks that
exactly one scheduler scheduled at any time, that another took over, and that every
task ran exactly once (one line per execution in its side-effect file).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble
from tests.cluster.ha_harness import (
    HaDeployment,
    assert_one_scheduler_at_a_time,
    freeze,
    kill_group,
    thaw,
)
from tests.databases import DatabaseServer
from tests.integration.celery_harness import TradewindProcess
from tests.waiting import wait_for

SUSPENDED = "ZooKeeper connection suspended"
#: kazoo's line when a (re)connection is established
CONNECTED = "Zookeeper connection established"
WORKERS = {"127.0.1.21": "default", "127.0.1.22": "default"}


def deploy(
    tmp_path: Path,
    server: DatabaseServer,
    broker: RabbitMQCluster,
    zookeeper: ZooKeeperEnsemble,
) -> HaDeployment:
    database = f"tw_ha_{tmp_path.name[-20:].replace('-', '_')}"
    return HaDeployment(
        tmp_path,
        zookeeper_hosts=zookeeper.hosts,
        metastore_url=server.create_database(database),
        broker_urls=broker.urls,
        workers=WORKERS,
        concurrency=4,
    )


@pytest.fixture
def cluster(
    tmp_path: Path,
    database_server: DatabaseServer,
    broker: RabbitMQCluster,
    zookeeper: ZooKeeperEnsemble,
) -> Iterator[HaDeployment]:
    deployment = deploy(tmp_path, database_server, broker, zookeeper)
    try:
        yield deployment.start()
    finally:
        deployment.stop()


def test_sigkill_of_the_leader_mid_run(cluster: HaDeployment) -> None:
    leader, lease = cluster.leader()
    standbys = [s for s in cluster.schedulers if s is not leader]
    cluster.wait_for_roles({leader.pid: "leader", **{s.pid: "standby" for s in standbys}})

    run_id = cluster.trigger("ha_wide")
    wait_for(lambda: len(cluster.side_effect_counts()) >= 60, timeout=120, interval=0.1)
    kill_group(leader)
    successor, new_lease = cluster.leader(newer_than=lease.epoch)
    assert successor in standbys

    assert cluster.wait_for_run("ha_wide", run_id, timeout=240) == "success"
    counts = cluster.side_effect_counts()
    assert len(counts) == 300
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
    epochs = assert_one_scheduler_at_a_time(cluster.dispatches("ha_wide", run_id))
    assert epochs[0] == lease.epoch and epochs[-1] >= new_lease.epoch
    remaining = [s for s in standbys if s is not successor]
    cluster.wait_for_roles(
        {leader.pid: "down", successor.pid: "leader", remaining[0].pid: "standby"}
    )


def test_frozen_leader_is_fenced_off_and_becomes_standby(cluster: HaDeployment) -> None:
    leader, lease = cluster.leader()
    cluster.wait_for_roles(
        {s.pid: "leader" if s is leader else "standby" for s in cluster.schedulers}
    )
    run_id = cluster.trigger("ha_chain")
    wait_for(lambda: len(cluster.side_effect_counts()) >= 3, timeout=120, interval=0.1)

    freeze(leader)
    try:
        successor, new_lease = cluster.leader(newer_than=lease.epoch, timeout=90)
    finally:
        thaw(leader)
    assert successor is not leader
    # back from its pause, the old leader finds itself fenced off or out of the election
    leader.wait_for_log("stepping down", timeout=60)
    cluster.wait_for_roles({leader.pid: "standby", successor.pid: "leader"})

    assert cluster.wait_for_run("ha_chain", run_id, timeout=240) == "success"
    counts = cluster.side_effect_counts()
    assert len(counts) == 30 and set(counts.values()) == {1}, counts
    dispatches = cluster.dispatches("ha_chain", run_id)
    assert_one_scheduler_at_a_time(dispatches)
    assert new_lease.acquired_at is not None
    late = [(e, q) for e, q in dispatches if e == lease.epoch and q > new_lease.acquired_at]
    assert late == [], "the fenced-off leader dispatched after the takeover"
    assert cluster.lease().pid == successor.pid


def test_clean_stop_hands_over_at_once(cluster: HaDeployment) -> None:
    leader, lease = cluster.leader()
    started = time.monotonic()
    leader.terminate()
    successor, _ = cluster.leader(newer_than=lease.epoch, timeout=30)
    handover = time.monotonic() - started
    leader.stop()
    assert successor is not leader and not leader.running()
    assert "stepping down (shutting down)" in leader.read_log()
    print(f"clean handover took {handover:.2f} s")  # figures live in bench/failover.py


@pytest.mark.mariadb
def test_zookeeper_node_loss_and_quorum_loss(
    tmp_path: Path,
    mariadb: MariaDB,
    broker: RabbitMQCluster,
    own_zookeeper: ZooKeeperEnsemble,
) -> None:
    cluster = deploy(tmp_path, mariadb, broker, own_zookeeper).start()
    try:
        _node_and_quorum_loss(cluster, own_zookeeper)
    finally:
        cluster.stop()


def _node_and_quorum_loss(cluster: HaDeployment, zookeeper: ZooKeeperEnsemble) -> None:
    leader, _lease = cluster.leader()
    cluster.wait_for_roles(
        {s.pid: "leader" if s is leader else "standby" for s in cluster.schedulers}
    )
    run_id = cluster.trigger("ha_chain")
    wait_for(lambda: len(cluster.side_effect_counts()) >= 2, timeout=120, interval=0.1)

    zookeeper.kill_node(1)
    done_before = len(cluster.side_effect_counts())
    wait_for(lambda: len(cluster.side_effect_counts()) >= done_before + 3, timeout=120)

    zookeeper.kill_node(2)
    # the quorum is gone once the last node stops serving; until it notices, it may still
    # take (re)connections, and a scheduler holding a session there rightly schedules on
    wait_for(lambda: zookeeper.mode(3) is None, timeout=60, interval=0.2)
    wait_for(lambda: _suspended_since_connected(leader), timeout=60, interval=0.1)
    # what was queued or running when scheduling paused finishes and is recorded...
    wait_for(lambda: not _in_flight(cluster, run_id), timeout=120, interval=0.2)
    paused_at = len(cluster.side_effect_counts())
    # ...and nothing new is queued while the quorum is gone (watched for two session timeouts)
    deadline = time.monotonic() + 2 * cluster.session_timeout
    while time.monotonic() < deadline:
        assert not _in_flight(cluster, run_id), "a scheduler queued work without a quorum"
        time.sleep(0.2)
    assert len(cluster.side_effect_counts()) == paused_at

    zookeeper.start_node(2)
    zookeeper.start_node(1)
    assert cluster.wait_for_run("ha_chain", run_id, timeout=240) == "success"
    counts = cluster.side_effect_counts()
    assert len(counts) == 30 and set(counts.values()) == {1}, counts
    assert_one_scheduler_at_a_time(cluster.dispatches("ha_chain", run_id))
    status = cluster.status()
    assert [s["role"] for s in status["schedulers"]].count("leader") == 1
    assert [s["role"] for s in status["schedulers"]].count("standby") == 2
    assert status["election"]["reachable"] is True
    assert len(status["election"]["contenders"]) == 3


def _suspended_since_connected(process: TradewindProcess) -> bool:
    """The process's last word on its ZooKeeper connection is a suspension."""
    log = process.read_log()
    return log.rfind(SUSPENDED) > log.rfind(CONNECTED)


def _in_flight(cluster: HaDeployment, run_id: str) -> bool:
    states = cluster.task_states("ha_chain", run_id)
    return any(state in ("queued", "running") for state in states.values())
