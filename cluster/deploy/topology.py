"""The cluster's topology, read from the one inventory file Ansible also reads.

The inventory is a plain Ansible YAML inventory whose groups are the node roles
(``master``, ``worker``, ``metastore``, ``broker``, ``zookeeper``, ``loadbalancer``).
Ansible provisions from it, the Vagrantfile builds its VMs from it and the dev
cluster lays its loopback nodes out from it, so the three cannot drift apart.

A node's address is its ``ansible_host``; every other host variable is kept as is, over
the variables of its role groups and of ``all`` (Ansible's precedence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cluster.errors import ConfigError

ROLES = ("master", "worker", "metastore", "broker", "zookeeper", "loadbalancer")


@dataclass(frozen=True)
class Node:
    """One machine of the cluster and the roles it plays."""

    name: str
    address: str
    roles: frozenset[str]
    vars: Mapping[str, Any] = field(default_factory=dict)

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class Topology:
    """Every node of one cluster, in inventory order."""

    nodes: tuple[Node, ...]

    def with_role(self, role: str) -> list[Node]:
        """The nodes playing ``role``, in inventory order.

        :raises ConfigError: ``role`` is not one of :data:`ROLES`.
        """
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        return [node for node in self.nodes if role in node.roles]

    def node(self, name: str) -> Node:
        """The node called ``name``.

        :raises ConfigError: no such node in the inventory.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"no node {name!r} in the inventory (nodes: {known})")


def load_inventory(path: str | Path) -> Topology:
    """Read the topology from an Ansible YAML inventory file.

    :raises ConfigError: the file is missing, is not YAML, or is not an inventory
        with at least one node in a known role.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"inventory {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"inventory {path} is not valid YAML: {exc}") from exc
    return parse_inventory(data, source=str(path))


def parse_inventory(data: Any, *, source: str = "inventory") -> Topology:
    """Build a :class:`Topology` from an already parsed inventory document.

    Groups named after roles may sit at the top level or under ``all.children``;
    other groups are ignored, so an inventory may carry groups of its own.
    """
    groups = _role_groups(data, source)
    order: list[str] = []
    roles: dict[str, set[str]] = {}
    host_vars: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        hosts = (groups.get(role) or {}).get("hosts") or {}
        if not isinstance(hosts, Mapping):
            raise ConfigError(f"{source}: group {role!r} must map host names to variables")
        for name, variables in hosts.items():
            if name not in roles:
                order.append(name)
                roles[name] = set()
                host_vars[name] = {}
            roles[name].add(role)
            host_vars[name].update(variables or {})
    if not order:
        raise ConfigError(f"{source}: no hosts in any of the groups {', '.join(ROLES)}")
    for name in order:  # as in Ansible: host vars over group vars over all.vars
        inherited = dict(_group_vars(data.get("all"), source))
        for role in ROLES:
            if role in roles[name]:
                inherited.update(_group_vars(groups.get(role), source))
        host_vars[name] = {**inherited, **host_vars[name]}
    nodes = tuple(
        Node(
            name=name,
            address=str(host_vars[name].get("ansible_host", name)),
            roles=frozenset(roles[name]),
            vars=host_vars[name],
        )
        for name in order
    )
    return Topology(nodes=nodes)


def _group_vars(group: Any, source: str) -> Mapping[str, Any]:
    """A group's ``vars`` mapping (empty when the group has none)."""
    variables = group.get("vars") if isinstance(group, Mapping) else None
    if variables is not None and not isinstance(variables, Mapping):
        raise ConfigError(f"{source}: group vars must be a mapping")
    return variables or {}


def _role_groups(data: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: an inventory must be a YAML mapping of groups")
    children = (data.get("all") or {}).get("children") if "all" in data else None
    groups = children if isinstance(children, Mapping) else data
    for role in ROLES:
        if role in groups and groups[role] is not None and not isinstance(groups[role], Mapping):
            raise ConfigError(f"{source}: group {role!r} must be a mapping with 'hosts'")
    return groups
