"""The infrastructure of a dev cluster: MariaDB or PostgreSQL, RabbitMQ, ZooKeeper and HAProxy.

They are the private service fixtures of :mod:`cluster.devcluster.services` (the ones
the tests use), configured from the cluster's topology. ``up`` starts them through the
fixtures, which know how to bootstrap each (a data directory, a cluster join, a
validated config); what is recorded afterwards is each process's command line, so
``dev-cluster start`` can run a killed one again from its data directory without the
fixture object, as a restarted host would.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster.deploy.haproxy import webservers
from cluster.deploy.topology import Topology
from cluster.devcluster.layout import (
    BROKER_PASSWORD,
    BROKER_USER,
    BROKER_VHOST,
    DB_NAME,
    DB_USER,
    Secrets,
    metastore_engine,
)
from cluster.devcluster.pids import identify
from cluster.devcluster.services.haproxy import HAProxy
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.devcluster.services.process import ServiceError, ServiceProcess
from cluster.devcluster.services.rabbitmq import HOST as BROKER_HOST
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import ZkAddress, ZooKeeperEnsemble
from cluster.devcluster.state import Probe, ServiceRecord

#: the broker's vhost, user and quorum-queue policy (loaded by every node at boot)
DEFINITIONS = Path(__file__).resolve().parents[2] / "configs" / "rabbitmq" / "definitions.json"


@dataclass
class Infrastructure:
    """The fixtures of one dev cluster, built (not started) from its topology."""

    database: MariaDB | PostgreSQL
    rabbitmq: RabbitMQCluster
    zookeeper: ZooKeeperEnsemble
    topology: Topology

    @property
    def database_name(self) -> str:
        return "PostgreSQL" if isinstance(self.database, PostgreSQL) else "MariaDB"

    def start_backends(self, say: Callable[[str], None]) -> None:
        """Start the database, ZooKeeper and RabbitMQ side by side (RabbitMQ takes longest).

        :raises ServiceError: the first failure; every fixture that did start is stopped.
        """
        starts = {
            self.database_name: self.database.start,
            "ZooKeeper": self.zookeeper.start,
            "RabbitMQ": self.rabbitmq.start,
        }
        errors: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(len(starts)) as pool:
            futures = {pool.submit(start): name for name, start in starts.items()}
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                    say(f"{futures[future]} is up")
                except Exception as exc:  # every failure is reported together below
                    errors.append(f"{futures[future]}: {exc}")
        if errors:
            self.stop()
            raise ServiceError("; ".join(errors))

    def stop(self) -> None:
        """Stop every fixture (by PID); for a failed ``up``."""
        self.rabbitmq.stop(timeout=20)
        self.zookeeper.stop()
        self.database.stop(timeout=20)

    def records(self) -> list[ServiceRecord]:
        """The started services in start order: metastore, ZooKeeper, epmd, brokers."""
        metastore = self.topology.with_role("metastore")[0]
        database = self.database
        records = [
            _record(
                f"{metastore.name}/{metastore_engine(self.topology)}",
                database.process,
                address=database.host,
                port=database.port,
                log=database.error_log,
                probe=Probe("tcp", host=database.host, port=database.port),
            )
        ]
        for number, node in enumerate(self.topology.with_role("zookeeper"), start=1):
            zk = self.zookeeper.addresses[number - 1]
            records.append(
                _record(
                    f"{node.name}/zookeeper",
                    self.zookeeper.node_process(number),
                    address=zk.host,
                    port=zk.client_port,
                    log=self.zookeeper.base_dir / f"n{number}" / "logs" / "zookeeper.log",
                    probe=Probe("zookeeper", host=zk.host, port=zk.client_port),
                )
            )
        brokers = self.topology.with_role("broker")
        epmd = self.rabbitmq.epmd_process
        records.append(
            _record(f"{brokers[0].name}/epmd", epmd, address=BROKER_HOST, log=epmd.log_path)
        )
        for spec, node in zip(self.rabbitmq.specs, brokers, strict=True):
            records.append(
                _record(
                    f"{node.name}/rabbitmq",
                    self.rabbitmq.node_process(spec.number),
                    address=BROKER_HOST,
                    port=spec.amqp_port,
                    log=spec.log_file,
                    probe=Probe("tcp", host=BROKER_HOST, port=spec.amqp_port),
                )
            )
        return records


def build_infrastructure(
    root: Path, topology: Topology, secrets: Secrets, rabbitmq: RabbitMQCluster
) -> Infrastructure:
    """The database and ZooKeeper fixtures for ``topology``'s nodes, with ``rabbitmq``.

    The RabbitMQ fixture is built first (by :func:`broker_fixture`): it picks its ports,
    which go into the inventory the topology was read from.
    """
    metastore = topology.with_role("metastore")[0]
    server = PostgreSQL if metastore_engine(topology) == "postgresql" else MariaDB
    database = server(
        root / "services" / metastore.name,
        host=metastore.address,
        port=int(metastore.vars["tradewind_db_port"]),
        database=DB_NAME,
        user=DB_USER,
        password=secrets.db_password,
        fsync=False,
    )
    addresses = [
        ZkAddress(
            node.address,
            int(node.vars["tradewind_zookeeper_client_port"]),
            int(node.vars["tradewind_zookeeper_peer_port"]),
            int(node.vars["tradewind_zookeeper_election_port"]),
        )
        for node in topology.with_role("zookeeper")
    ]
    zookeeper = ZooKeeperEnsemble(root / "services" / "zookeeper", addresses)
    return Infrastructure(database, rabbitmq, zookeeper, topology)


def broker_fixture(root: Path, nodes: int) -> RabbitMQCluster:
    """A RabbitMQ cluster of ``nodes`` loaded with the repository's definitions.

    :raises ServiceError: RabbitMQ is not installed, or the definitions are missing
        (they come with a source checkout of Tradewind).
    """
    if not DEFINITIONS.exists():
        raise ServiceError(f"{DEFINITIONS} is missing: run the dev cluster from a checkout")
    return RabbitMQCluster(
        root / "services" / "rabbitmq",
        nodes=nodes,
        definitions=DEFINITIONS,
        user=BROKER_USER,
        password=BROKER_PASSWORD,
        vhost=BROKER_VHOST,
    )


def load_balancer(root: Path, topology: Topology, secrets: Secrets) -> HAProxy:
    """HAProxy on the load balancer node, over every master's webserver.

    Its config is ``tradewind haproxy render``'s for the same inventory.
    """
    node = topology.with_role("loadbalancer")[0]
    return HAProxy(
        root / "services" / node.name,
        webservers(topology),
        host=node.address,
        port=int(node.vars["tradewind_loadbalancer_port"]),
        stats_port=int(node.vars["tradewind_loadbalancer_stats_port"]),
        stats_password=secrets.stats_password,
    )


def haproxy_record(topology: Topology, haproxy: HAProxy) -> ServiceRecord:
    node = topology.with_role("loadbalancer")[0]
    return _record(
        f"{node.name}/haproxy",
        haproxy.process,
        address=haproxy.host,
        port=haproxy.port,
        log=haproxy.log_file,
        probe=Probe("tcp", host=haproxy.host, port=haproxy.port),
    )


def _record(
    name: str,
    process: ServiceProcess,
    *,
    address: str,
    log: Path,
    port: int | None = None,
    probe: Probe | None = None,
) -> ServiceRecord:
    """The record of a fixture's running process.

    :raises ServiceError: the process is not running any more.
    """
    found = identify(process.pid) if process.pid is not None else None
    if found is None:
        raise ServiceError(f"{name} is not running after its start; see {process.log_path}")
    node, _, kind = name.partition("/")
    return ServiceRecord(
        name=name,
        node=node,
        kind=kind,
        address=address,
        port=port,
        argv=list(process.argv),
        env=process.env,
        output=str(process.log_path),
        log=str(log),
        probe=probe or Probe("process"),
        pid=found.pid,
        started=found.started,
    )
