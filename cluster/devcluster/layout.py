"""The dev cluster's shape as an inventory, and what each node runs: no I/O here.

``tradewind dev-cluster up`` does not invent a topology of its own. It writes an
Ansible YAML inventory (:func:`dev_inventory`) with the same groups and host variables
as ``ansible/inventories/vagrant/hosts.yml``, reads it back with
:func:`cluster.deploy.topology.parse_inventory` like Ansible, the Vagrantfile and
``tradewind haproxy render`` do, and derives every address, URL and setting from that
:class:`~cluster.deploy.topology.Topology` (:func:`plan_cluster`), the way
``roles/common/vars/main.yml`` derives them for real hosts. So a dev cluster and a
deployed one cannot drift: the same inventory shape, the same settings, the same role
commands.

Every node gets its own loopback address (``127.0.2.N`` masters, ``127.0.3.N``
workers, ``127.0.1.N`` ZooKeeper nodes, ``127.0.4.1`` the metastore, ``127.0.4.2``
the load balancer). The RabbitMQ nodes are the exception: Erlang distribution is bound
to ``127.0.0.1`` (see TESTING.md), so the broker nodes share that address and differ
by port (host variable ``tradewind_broker_port``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cluster.deploy.topology import Node, Topology
from cluster.errors import UsageError

#: the most nodes of one role a dev cluster may have (addresses 127.0.x.1..MAX)
MAX_NODES = 9
#: the first three octets of each role's loopback addresses
SUBNETS = {"master": "127.0.2", "worker": "127.0.3", "zookeeper": "127.0.1"}
METASTORE_ADDRESS = "127.0.4.1"
LOADBALANCER_ADDRESS = "127.0.4.2"
BROKER_ADDRESS = "127.0.0.1"
#: the account and vhost of configs/rabbitmq/definitions.json
BROKER_USER = "tradewind"
BROKER_PASSWORD = "tradewind"
BROKER_VHOST = "tradewind"
DB_NAME = "tradewind"
DB_USER = "tradewind"
#: the database servers a dev cluster's metastore node can run (``--metastore``), each
#: also the kind of its service; the first is the default
METASTORE_ENGINES = ("mariadb", "postgresql")
#: services per role, in the order a node starts them (the metastore's: its engine)
ROLE_SERVICES = {
    "metastore": METASTORE_ENGINES[:1],
    "broker": ("rabbitmq",),
    "zookeeper": ("zookeeper",),
    "master": ("scheduler", "webserver", "triggerer"),
    "worker": ("worker",),
    "loadbalancer": ("haproxy",),
}
#: the order in which roles come up (and, reversed, go down)
START_ORDER = ("metastore", "zookeeper", "broker", "master", "worker", "loadbalancer")


@dataclass(frozen=True)
class Shape:
    """How many nodes of each scalable role: ``dev-cluster up``'s options."""

    masters: int = 2
    workers: int = 2
    zookeepers: int = 3
    rabbitmq: int = 3
    #: the metastore's database server, one of :data:`METASTORE_ENGINES`
    metastore: str = METASTORE_ENGINES[0]

    def validate(self) -> None:
        """:raises UsageError: a count below 1 or above :data:`MAX_NODES`, or an unknown
        metastore engine."""
        if self.metastore not in METASTORE_ENGINES:
            choices = " or ".join(METASTORE_ENGINES)
            raise UsageError(f"--metastore {self.metastore}: give {choices}")
        for label, count in (
            ("--masters", self.masters),
            ("--workers", self.workers),
            ("--zookeepers", self.zookeepers),
            ("--rabbitmq", self.rabbitmq),
        ):
            if not 1 <= count <= MAX_NODES:
                raise UsageError(f"{label} {count}: give a number from 1 to {MAX_NODES}")


@dataclass(frozen=True)
class Ports:
    """The ports chosen for one dev cluster (the same on every node of a role)."""

    metastore: int
    webserver: int
    log_server: int
    loadbalancer: int
    loadbalancer_stats: int
    zookeeper_client: int
    zookeeper_peer: int
    zookeeper_election: int
    brokers: tuple[int, ...]


@dataclass(frozen=True)
class Secrets:
    """What every node shares and nobody should guess."""

    secret_key: str
    fernet_key: str
    db_password: str
    admin_user: str
    admin_password: str
    stats_password: str


@dataclass(frozen=True)
class ServicePlan:
    """One process of one node, named ``NODE/KIND`` (``master1/scheduler``)."""

    node: str
    kind: str
    address: str
    port: int | None = None

    @property
    def name(self) -> str:
        return f"{self.node}/{self.kind}"


@dataclass(frozen=True)
class ClusterPlan:
    """Everything the launcher needs, derived from the topology alone."""

    topology: Topology
    metastore_url: str
    broker_urls: list[str]
    zookeeper_hosts: list[str]
    base_url: str
    services: list[ServicePlan]
    settings: Mapping[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def address(role: str, number: int) -> str:
    """The loopback address of node ``number`` (1-based) of a scalable role."""
    return f"{SUBNETS[role]}.{number}"


def dev_inventory(shape: Shape, ports: Ports) -> dict[str, Any]:
    """The Ansible YAML inventory of a dev cluster of ``shape`` (a plain document).

    :raises UsageError: an invalid shape, or not one broker port per RabbitMQ node.
    """
    shape.validate()
    if len(ports.brokers) != shape.rabbitmq:
        raise UsageError(f"{shape.rabbitmq} RabbitMQ nodes need as many ports")

    def hosts(role: str, count: int) -> dict[str, dict[str, Any]]:
        return {f"{role}{n}": {"ansible_host": address(role, n)} for n in range(1, count + 1)}

    zookeepers = hosts("zookeeper", shape.zookeepers)
    for number, variables in enumerate(zookeepers.values(), start=1):
        variables["zookeeper_id"] = number
    brokers = {
        f"broker{n}": {"ansible_host": BROKER_ADDRESS, "tradewind_broker_port": port}
        for n, port in enumerate(ports.brokers, start=1)
    }
    return {
        "all": {
            "vars": {
                "tradewind_webserver_port": ports.webserver,
                "tradewind_loadbalancer_port": ports.loadbalancer,
                "tradewind_loadbalancer_stats_port": ports.loadbalancer_stats,
                "tradewind_db_port": ports.metastore,
                "metastore_engine": shape.metastore,
                "tradewind_log_server_port": ports.log_server,
                "tradewind_zookeeper_client_port": ports.zookeeper_client,
                "tradewind_zookeeper_peer_port": ports.zookeeper_peer,
                "tradewind_zookeeper_election_port": ports.zookeeper_election,
            },
            "children": {
                "master": {"hosts": hosts("master", shape.masters)},
                "worker": {"hosts": hosts("worker", shape.workers)},
                "metastore": {"hosts": {"metastore1": {"ansible_host": METASTORE_ADDRESS}}},
                "broker": {"hosts": brokers},
                "zookeeper": {"hosts": zookeepers},
                "loadbalancer": {
                    "hosts": {"loadbalancer1": {"ansible_host": LOADBALANCER_ADDRESS}}
                },
            },
        }
    }


def plan_cluster(
    topology: Topology,
    secrets: Secrets,
    *,
    root: Path,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> ClusterPlan:
    """Addresses, URLs, services and each node's ``tradewind.toml`` settings.

    :param root: the dev cluster's directory; node ``N`` lives in ``root/nodes/N``.
    :param overrides: ``{section: {key: value}}`` laid over every node's settings.
    :raises UsageError: the topology lacks a role the cluster needs, or a port variable.
    """
    for role in ROLE_SERVICES:
        if not topology.with_role(role):
            raise UsageError(f"the inventory has no '{role}' node: a dev cluster needs one")
    metastore = topology.with_role("metastore")[0]
    account = f"{DB_USER}:{quote(secrets.db_password, safe='')}@{metastore.address}"
    port = _port(metastore, "tradewind_db_port")
    if metastore_engine(topology) == "postgresql":
        db_url = f"postgresql+psycopg://{account}:{port}/{DB_NAME}"
    else:
        db_url = f"mysql+pymysql://{account}:{port}/{DB_NAME}?charset=utf8mb4"
    broker_urls = [
        f"amqp://{BROKER_USER}:{BROKER_PASSWORD}@{node.address}:"
        f"{_port(node, 'tradewind_broker_port')}/{BROKER_VHOST}"
        for node in topology.with_role("broker")
    ]
    zookeeper_hosts = [
        f"{node.address}:{_port(node, 'tradewind_zookeeper_client_port')}"
        for node in topology.with_role("zookeeper")
    ]
    balancer = topology.with_role("loadbalancer")[0]
    base_url = f"http://{balancer.address}:{_port(balancer, 'tradewind_loadbalancer_port')}"
    plan = ClusterPlan(
        topology=topology,
        metastore_url=db_url,
        broker_urls=broker_urls,
        zookeeper_hosts=zookeeper_hosts,
        base_url=base_url,
        services=services_of(topology),
    )
    settings = {
        node.name: node_settings(node, plan, secrets, home=root / "nodes" / node.name)
        for node in topology.nodes
        if node.has("master") or node.has("worker")
    }
    if overrides:
        for values in settings.values():
            for section, extra in overrides.items():
                values.setdefault(section, {}).update(extra)
    return dataclasses.replace(plan, settings=settings)


def metastore_engine(topology: Topology) -> str:
    """The metastore node's database server (``metastore_engine``, as in group_vars).

    :raises UsageError: one the dev cluster cannot run.
    """
    engine = str(topology.with_role("metastore")[0].vars.get("metastore_engine", "mariadb"))
    if engine not in METASTORE_ENGINES:
        raise UsageError(f"metastore_engine {engine!r}: give {' or '.join(METASTORE_ENGINES)}")
    return engine


def services_of(topology: Topology) -> list[ServicePlan]:
    """Every service of the cluster, in start order (by role, then inventory order)."""
    found: list[ServicePlan] = []
    for role in START_ORDER:
        kinds = (metastore_engine(topology),) if role == "metastore" else ROLE_SERVICES[role]
        for node in topology.with_role(role):
            for kind in kinds:
                found.append(ServicePlan(node.name, kind, node.address, _service_port(node, kind)))
    return found


def node_settings(
    node: Node, plan: ClusterPlan, secrets: Secrets, *, home: Path
) -> dict[str, dict[str, Any]]:
    """The ``tradewind.toml`` of one master or worker (as roles/common writes it)."""
    return {
        "core": {
            "executor": "celery",
            "dags_folder": str(home.parent.parent / "dags"),
            "fernet_key": secrets.fernet_key,
            "hostname": node.address,
            "load_examples": True,
        },
        "metastore": {"url": plan.metastore_url},
        "celery": {"broker_urls": list(plan.broker_urls)},
        "ha": {
            "election": "zookeeper",
            "zookeeper_hosts": list(plan.zookeeper_hosts),
            "session_timeout": 4.0,
        },
        "webserver": {
            "secret_key": secrets.secret_key,
            "base_url": plan.base_url,
            "host": node.address,
            "port": _port(node, "tradewind_webserver_port"),
            "proxy_fix_x_for": 1,
        },
        "logging": {
            "base_log_folder": str(home / "logs"),
            "log_server_port": _port(node, "tradewind_log_server_port"),
        },
    }


def render_toml(settings: Mapping[str, Mapping[str, Any]], *, header: str = "") -> str:
    """``tradewind.toml`` text: one table per section, each value as JSON.

    The same rendering as roles/common/templates/tradewind.toml.j2 (``to_json``): JSON
    strings, numbers, booleans and lists of them are valid TOML.

    :raises UsageError: a value TOML cannot hold this way (a mapping, ``None``).
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in settings.items():
        lines += ["", f"[{section}]"]
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(section, key, value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def parse_setting(text: str) -> tuple[str, str, Any]:
    """``SECTION.KEY=VALUE`` → ``(section, key, value)``; the value is read as JSON
    when it parses as JSON (numbers, booleans, lists), else kept as a string, as
    ``TRADEWIND__SECTION__KEY`` environment values are.

    :raises UsageError: not of that form.
    """
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise UsageError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. core.parallelism=64")
    return section.lower(), key.lower(), _json_or_text(raw.strip())


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _toml_value(section: str, key: str, value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if value is None or isinstance(value, Mapping):
        raise UsageError(f"{section}.{key}: {value!r} cannot be written to tradewind.toml")
    return json.dumps(value)


def _port(node: Node, variable: str) -> int:
    value = node.vars.get(variable)
    text = "" if isinstance(value, bool) else str(value)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"node {node.name}: {variable} {value!r} is not a TCP port")
    return int(text)


def _service_port(node: Node, kind: str) -> int | None:
    variable = {
        "mariadb": "tradewind_db_port",
        "postgresql": "tradewind_db_port",
        "rabbitmq": "tradewind_broker_port",
        "zookeeper": "tradewind_zookeeper_client_port",
        "webserver": "tradewind_webserver_port",
        "worker": "tradewind_log_server_port",
        "haproxy": "tradewind_loadbalancer_port",
    }.get(kind)
    return _port(node, variable) if variable else None
