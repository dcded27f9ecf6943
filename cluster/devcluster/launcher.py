"""Bring a whole dev cluster up, and start, kill and stop its services by their records.

``up`` goes in the order a real cluster is stood up: the inventory, the backends
(MariaDB or PostgreSQL, ZooKeeper, RabbitMQ, side by side), the schema and the first admin user
(``tradewind db migrate`` and ``tradewind users create`` on master1, as an operator
would), then every master's scheduler, webserver and triggerer and every worker, and
last the load balancer in front of the webservers. The state file is written after each step,
so a failed or interrupted ``up`` leaves nothing running that ``down`` cannot find;
a failed ``up`` stops what it started itself and keeps the logs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import secrets as random_secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.fernet import Fernet

from cluster.deploy.topology import load_inventory
from cluster.devcluster import state as state_file
from cluster.devcluster.infra import (
    broker_fixture,
    build_infrastructure,
    haproxy_record,
    load_balancer,
)
from cluster.devcluster.layout import (
    LOADBALANCER_ADDRESS,
    METASTORE_ADDRESS,
    ClusterPlan,
    Ports,
    Secrets,
    Shape,
    address,
    dev_inventory,
    plan_cluster,
)
from cluster.devcluster.pids import ProcessId, is_running, kill, spawn, stop
from cluster.devcluster.probes import wait_ready
from cluster.devcluster.roles import role_record, run_cli, write_home
from cluster.devcluster.services.ports import free_port, is_port_free
from cluster.devcluster.services.postgres import clear_stale_lock
from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import free_loopback_addresses
from cluster.devcluster.state import ClusterState, ServiceRecord
from cluster.errors import UsageError

Say = Callable[[str], None]
#: seconds a service may take to be ready after it was (re)started
READY_TIMEOUT = 180.0
#: stop order: the front first, the state last (epmd after the broker nodes)
STOP_TIERS = (
    ("haproxy", "webserver", "scheduler", "triggerer", "worker"),
    ("rabbitmq", "zookeeper"),
)
ADMIN_USER = "admin"


def new_secrets() -> Secrets:
    """Fresh random secrets for one dev cluster (hex: safe in URLs, SQL and configs)."""
    return Secrets(
        secret_key=random_secrets.token_hex(24),
        fernet_key=Fernet.generate_key().decode(),
        db_password=random_secrets.token_hex(12),
        admin_user=ADMIN_USER,
        admin_password=random_secrets.token_hex(8),
        stats_password=random_secrets.token_hex(12),
    )


def choose_ports(shape: Shape, broker: RabbitMQCluster) -> Ports:
    """Free ports below the ephemeral range; one webserver port free on every master's
    address and one log-server port on every worker's (as on real nodes)."""
    zookeeper = free_loopback_addresses(shape.zookeepers)[0]
    return Ports(
        metastore=free_port(METASTORE_ADDRESS),
        webserver=_port_free_on([address("master", n) for n in range(1, shape.masters + 1)]),
        log_server=_port_free_on([address("worker", n) for n in range(1, shape.workers + 1)]),
        loadbalancer=free_port(LOADBALANCER_ADDRESS),
        loadbalancer_stats=free_port(LOADBALANCER_ADDRESS),
        zookeeper_client=zookeeper.client_port,
        zookeeper_peer=zookeeper.peer_port,
        zookeeper_election=zookeeper.election_port,
        brokers=tuple(spec.amqp_port for spec in broker.specs),
    )


def bring_up(
    root: Path,
    shape: Shape,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    dags: Path | None = None,
    say: Say = print,
) -> ClusterState:
    """Start the whole cluster in ``root`` and return its recorded state.

    :raises UsageError: a dev cluster (running or not) is already recorded in ``root``.
    :raises ServiceError: a service did not start; everything started is stopped again
        and the logs stay in ``root``.
    """
    shape.validate()
    if state_file.exists(root):
        raise UsageError(
            f"a dev cluster is already in {root}: 'tradewind dev-cluster down' removes it"
        )
    if root.exists() and any(p.name != state_file.LOCK_FILE for p in root.iterdir()):
        raise UsageError(f"{root} is not empty: give another --dir or remove it")
    keys = new_secrets()
    broker = broker_fixture(root, shape.rabbitmq)
    inventory = root / "inventory.yml"
    root.mkdir(parents=True, exist_ok=True)
    inventory.write_text(yaml.safe_dump(dev_inventory(shape, choose_ports(shape, broker))))
    plan = plan_cluster(load_inventory(inventory), keys, root=root, overrides=overrides)
    say(f"Inventory written to {inventory}")
    _prepare_nodes(root, plan, dags)
    current = ClusterState(
        root=str(root),
        inventory=str(inventory),
        url=plan.base_url,
        admin_user=keys.admin_user,
        admin_password=keys.admin_password,
        services=[],
        operator_home=str(_home(root, plan.topology.with_role("master")[0].name)),
    )
    try:
        return _start_everything(current, plan, keys, broker, say)
    except BaseException as exc:
        say("Start failed: stopping what was started")
        if state_file.exists(root):
            stop_all(state_file.load(root))
        if isinstance(exc, ServiceError):
            raise ServiceError(
                f"{exc}\n(logs stay in {root}: 'tradewind dev-cluster logs SERVICE' shows "
                "them, 'tradewind dev-cluster down' removes them)"
            ) from exc
        raise


def _start_everything(
    current: ClusterState, plan: ClusterPlan, keys: Secrets, broker: RabbitMQCluster, say: Say
) -> ClusterState:
    root = Path(current.root)
    infra = build_infrastructure(root, plan.topology, keys, broker)
    say(f"Starting {infra.database_name}, ZooKeeper and RabbitMQ")
    infra.start_backends(say)
    current = _record(current, infra.records())
    home = Path(current.operator_home)
    run_cli(home, ["db", "migrate"])
    run_cli(
        home,
        ["users", "create", "-u", keys.admin_user, "-r", "Admin", "-p", keys.admin_password],
    )
    say(f"Metastore migrated; user {keys.admin_user!r} created")
    roles = [
        role_record(service, _home(root, service.node))
        for service in plan.services
        if service.kind in ("scheduler", "webserver", "triggerer", "worker")
    ]
    started = [record.with_process(_spawn(record)) for record in roles]
    current = _record(current, started)
    for record in started:
        wait_ready(
            record.name,
            record.probe,
            record.process,
            output=Path(record.output),
            timeout=READY_TIMEOUT,
        )
    say(f"{len(started)} schedulers, webservers, triggerers and workers are up")
    haproxy = load_balancer(root, plan.topology, keys)
    haproxy.start()
    current = _record(current, [haproxy_record(plan.topology, haproxy)])
    return state_file_update(
        current, stats_url=haproxy.stats_url, stats_socket=str(haproxy.admin_socket)
    )


def start_services(current: ClusterState, records: list[ServiceRecord], say: Say) -> ClusterState:
    """Start again each of ``records`` that is not running, and wait until it is ready.

    :raises ServiceError: one did not become ready (the others stay as they are).
    """
    for record in records:
        if is_running(record.process):
            say(f"{record.name} is already running (PID {record.pid})")
            continue
        if record.kind == "postgresql":
            clear_stale_lock(record.argv)
        output = Path(record.output)
        offset = output.stat().st_size if output.exists() else 0
        fresh = record.with_process(_spawn(record))
        current = current.replaced(fresh)
        state_file.save(current)
        wait_ready(
            fresh.name,
            fresh.probe,
            fresh.process,
            output=output,
            offset=offset,
            timeout=READY_TIMEOUT,
        )
        say(f"{fresh.name} started (PID {fresh.pid})")
    return current


def kill_services(records: list[ServiceRecord], say: Say) -> None:
    """SIGKILL each of ``records`` (its whole process group): a crash."""
    for record in records:
        if kill(record.process):
            say(f"{record.name} killed (PID {record.pid})")
        else:
            say(f"{record.name} was not running")


def stop_all(current: ClusterState) -> list[str]:
    """Stop every service (SIGTERM, then SIGKILL), front first; the names stopped."""
    stopped: list[str] = []
    remaining = list(reversed(current.services))
    tiers = [[r for r in remaining if r.kind in kinds] for kinds in STOP_TIERS]
    tiers.append([r for r in remaining if not any(r in tier for tier in tiers)])
    for tier in tiers:
        if not tier:
            continue
        with concurrent.futures.ThreadPoolExecutor(len(tier)) as pool:
            results = pool.map(lambda r: stop(r.process, timeout=30), tier)
            stopped += [r.name for r, done in zip(tier, results, strict=True) if done]
    return stopped


def remove_cluster(root: Path) -> None:
    """Delete a stopped dev cluster's directory (only one holding a state file), and the
    folders its services keep outside it (PostgreSQL's data when run by root: linked from
    its service folder as ``postgres-run``)."""
    if not state_file.exists(root):
        raise UsageError(f"{root} holds no dev cluster: not removing it")
    for link in (root / "services").glob("*/*-run"):
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)
    shutil.rmtree(root)


def state_file_update(current: ClusterState, **changes: Any) -> ClusterState:
    """``current`` with ``changes``, saved."""
    updated = dataclasses.replace(current, **changes)
    state_file.save(updated)
    return updated


def _record(current: ClusterState, records: list[ServiceRecord]) -> ClusterState:
    return state_file_update(current, services=[*current.services, *records])


def _spawn(record: ServiceRecord) -> ProcessId:
    return spawn(
        record.argv,
        output=Path(record.output),
        env=record.env,
        cwd=Path(record.cwd) if record.cwd else None,
    )


def _prepare_nodes(root: Path, plan: ClusterPlan, dags: Path | None) -> None:
    """Every master's and worker's home and ``tradewind.toml``; the shared DAG folder."""
    folder = root / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    if dags is not None:
        if not dags.is_dir():
            raise UsageError(f"--dags {dags}: not a directory")
        shutil.copytree(dags, folder, dirs_exist_ok=True)
    for node, settings in plan.settings.items():
        write_home(_home(root, node), settings)


def _home(root: Path, node: str) -> Path:
    return root / "nodes" / node


def _port_free_on(addresses: list[str]) -> int:
    for _ in range(100):
        port = free_port(addresses[0])
        if all(is_port_free(host, port) for host in addresses):
            return port
    raise ServiceError(f"no port free on all of {', '.join(addresses)}")
