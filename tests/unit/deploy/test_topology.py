"""The inventory model that Ansible, the Vagrantfile and the dev cluster share."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.deploy.topology import load_inventory, parse_inventory
from cluster.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_vagrant_inventory_has_the_documented_nodes():
    topology = load_inventory(REPO / "ansible/inventories/vagrant/hosts.yml")
    assert [n.name for n in topology.with_role("master")] == ["master1", "master2"]
    assert [n.name for n in topology.with_role("worker")] == ["worker1", "worker2"]
    infra = topology.node("infra1")
    assert infra.roles == {"metastore", "broker", "zookeeper", "loadbalancer"}
    assert infra.address == "192.168.56.10"
    assert infra.vars["zookeeper_id"] == 1


def test_single_node_inventory_plays_every_role():
    topology = load_inventory(REPO / "ansible/inventories/local/hosts.yml")
    (node,) = topology.nodes
    assert node.address == "127.0.0.1"
    assert len(node.roles) == 6


def test_top_level_groups_and_unknown_groups():
    topology = parse_inventory(
        {
            "master": {"hosts": {"m1": {"ansible_host": "10.0.0.1"}}},
            "monitoring": {"hosts": {"x": {}}},
        }
    )
    assert [(n.name, n.address) for n in topology.nodes] == [("m1", "10.0.0.1")]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "YAML mapping"),
        ({"all": {"children": {}}}, "no hosts"),
        ({"master": ["m1"]}, "mapping with 'hosts'"),
        ({"master": {"hosts": ["m1"]}}, "map host names"),
    ],
)
def test_bad_inventories_are_clear_errors(document, message):
    with pytest.raises(ConfigError, match=message):
        parse_inventory(document)


def test_unknown_role_and_node(tmp_path):
    topology = load_inventory(REPO / "ansible/inventories/vagrant/hosts.yml")
    with pytest.raises(ConfigError, match="unknown role"):
        topology.with_role("database")
    with pytest.raises(ConfigError, match="no node 'nope'"):
        topology.node("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_inventory(tmp_path / "missing.yml")
