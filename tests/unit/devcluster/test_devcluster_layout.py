"""The dev cluster is laid out from an inventory like the ones Ansible and Vagrant read,
and each node's settings are a ``tradewind.toml`` the production loader reads."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
import yaml

from cluster.config import load_settings
from cluster.deploy.haproxy import webservers
from cluster.deploy.topology import ROLES, Topology, load_inventory, parse_inventory
from cluster.devcluster.layout import (
    Ports,
    Secrets,
    ServicePlan,
    Shape,
    dev_inventory,
    parse_setting,
    plan_cluster,
    render_toml,
)
from cluster.devcluster.roles import role_argv, role_probe
from cluster.devcluster.state import Probe
from cluster.errors import UsageError

REPO = Path(__file__).resolve().parents[3]
VAGRANT_INVENTORY = REPO / "ansible" / "inventories" / "vagrant" / "hosts.yml"
PORTS = Ports(
    metastore=23306,
    webserver=28080,
    log_server=28793,
    loadbalancer=28000,
    loadbalancer_stats=28001,
    zookeeper_client=12181,
    zookeeper_peer=12887,
    zookeeper_election=13887,
    brokers=(21001, 21002, 21003),
)
SECRETS = Secrets(
    secret_key="s3cret",
    fernet_key="bm90LWEtcmVhbC1rZXktYnV0LTMyLWJ5dGVzLWxvbmc=",
    db_password="dbpw",
    admin_user="admin",
    admin_password="adminpw",
    stats_password="statspw",
)


def topology(shape: Shape = Shape(), ports: Ports = PORTS) -> Topology:
    return parse_inventory(dev_inventory(shape, ports), source="dev")


def test_the_inventory_has_the_groups_and_variables_of_the_vagrant_one() -> None:
    document = dev_inventory(Shape(), PORTS)
    vagrant = yaml.safe_load(VAGRANT_INVENTORY.read_text())
    assert set(document["all"]["children"]) == set(vagrant["all"]["children"]) == set(ROLES)
    assert document["all"]["vars"]["tradewind_webserver_port"] == PORTS.webserver


def test_every_node_has_its_own_loopback_address_by_role() -> None:
    nodes = topology(Shape(masters=3, workers=2, zookeepers=3, rabbitmq=3))
    masters = [n.address for n in nodes.with_role("master")]
    workers = [n.address for n in nodes.with_role("worker")]
    zookeepers = [n.address for n in nodes.with_role("zookeeper")]
    assert masters == ["127.0.2.1", "127.0.2.2", "127.0.2.3"]
    assert workers == ["127.0.3.1", "127.0.3.2"]
    assert zookeepers == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
    assert len({*masters, *workers, *zookeepers}) == 8


def test_haproxy_balances_every_master_at_its_address_and_port() -> None:
    servers = webservers(topology(Shape(masters=2)))
    assert [(s.name, s.endpoint) for s in servers] == [
        ("master1", f"127.0.2.1:{PORTS.webserver}"),
        ("master2", f"127.0.2.2:{PORTS.webserver}"),
    ]


def test_the_plan_derives_urls_from_the_topology(tmp_path: Path) -> None:
    plan = plan_cluster(topology(), SECRETS, root=tmp_path)
    assert plan.broker_urls == [
        f"amqp://tradewind:tradewind@127.0.0.1:{port}/tradewind" for port in PORTS.brokers
    ]
    assert plan.zookeeper_hosts == [f"127.0.1.{n}:{PORTS.zookeeper_client}" for n in (1, 2, 3)]
    assert plan.metastore_url.startswith(
        f"mysql+pymysql://tradewind:dbpw@127.0.4.1:{PORTS.metastore}/"
    )
    assert plan.base_url == f"http://127.0.4.2:{PORTS.loadbalancer}"


def test_a_postgresql_metastore_is_a_postgresql_service_and_url(tmp_path: Path) -> None:
    nodes = topology(Shape(metastore="postgresql"))
    assert nodes.with_role("metastore")[0].vars["metastore_engine"] == "postgresql"
    plan = plan_cluster(nodes, SECRETS, root=tmp_path)
    assert (
        plan.metastore_url
        == f"postgresql+psycopg://tradewind:dbpw@127.0.4.1:{PORTS.metastore}/tradewind"
    )
    assert plan.services[0].name == "metastore1/postgresql"
    assert plan.services[0].port == PORTS.metastore
    for settings in plan.settings.values():
        assert settings["metastore"]["url"] == plan.metastore_url


def test_services_come_up_backends_first_and_the_load_balancer_last(tmp_path: Path) -> None:
    plan = plan_cluster(
        topology(
            Shape(masters=2, workers=1, zookeepers=1, rabbitmq=2),
            dataclasses.replace(PORTS, brokers=(21001, 21002)),
        ),
        SECRETS,
        root=tmp_path,
    )
    names = [s.name for s in plan.services]
    assert names == [
        "metastore1/mariadb",
        "zookeeper1/zookeeper",
        "broker1/rabbitmq",
        "broker2/rabbitmq",
        "master1/scheduler",
        "master1/webserver",
        "master1/triggerer",
        "master2/scheduler",
        "master2/webserver",
        "master2/triggerer",
        "worker1/worker",
        "loadbalancer1/haproxy",
    ]


def test_each_node_gets_a_tradewind_toml_the_settings_loader_reads(tmp_path: Path) -> None:
    plan = plan_cluster(
        topology(),
        SECRETS,
        root=tmp_path,
        overrides={"core": {"load_examples": False}, "scheduler": {"poll_interval": 0.2}},
    )
    assert set(plan.settings) == {"master1", "master2", "worker1", "worker2"}
    home = tmp_path / "nodes" / "master2"
    home.mkdir(parents=True)
    (home / "tradewind.toml").write_text(render_toml(plan.settings["master2"], header="test"))
    settings = load_settings({}, home=home)
    assert settings.core.hostname == "127.0.2.2"
    assert settings.core.executor == "celery"
    assert settings.core.load_examples is False
    assert settings.scheduler.poll_interval == 0.2
    assert settings.ha.election == "zookeeper"
    assert settings.ha.zookeeper_hosts == plan.zookeeper_hosts
    assert settings.celery.broker_urls == plan.broker_urls
    assert settings.webserver.host == "127.0.2.2"
    assert settings.webserver.port == PORTS.webserver
    assert settings.webserver.secret_key == SECRETS.secret_key
    assert settings.logging.log_server_port == PORTS.log_server
    assert settings.core.dags_folder == tmp_path / "dags"


def test_the_toml_is_plain_toml_with_one_table_per_section() -> None:
    text = render_toml(
        {"core": {"parallelism": 8, "dags_folder": Path("/x")}, "ha": {"zookeeper_hosts": ["a:1"]}}
    )
    assert tomllib.loads(text) == {
        "core": {"parallelism": 8, "dags_folder": "/x"},
        "ha": {"zookeeper_hosts": ["a:1"]},
    }
    with pytest.raises(UsageError, match=r"core.bad"):
        render_toml({"core": {"bad": None}})


def test_a_topology_without_a_needed_role_is_refused(tmp_path: Path) -> None:
    inventory = dev_inventory(Shape(), PORTS)
    del inventory["all"]["children"]["loadbalancer"]
    with pytest.raises(UsageError, match="no 'loadbalancer' node"):
        plan_cluster(parse_inventory(inventory), SECRETS, root=tmp_path)


def test_the_vagrant_inventory_lacks_the_dev_ports_and_says_which(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="tradewind_db_port None is not a TCP port"):
        plan_cluster(load_inventory(VAGRANT_INVENTORY), SECRETS, root=tmp_path)


@pytest.mark.parametrize(
    ("shape", "option"),
    [
        (Shape(masters=0), "--masters"),
        (Shape(workers=10), "--workers"),
        (Shape(zookeepers=-1), "--zookeepers"),
        (Shape(metastore="oracle"), "--metastore"),
    ],
)
def test_impossible_shapes_are_one_clear_error(shape: Shape, option: str) -> None:
    with pytest.raises(UsageError, match=f"^{option} "):
        shape.validate()


def test_a_broker_port_per_rabbitmq_node_is_required() -> None:
    with pytest.raises(UsageError, match="need as many ports"):
        dev_inventory(Shape(rabbitmq=2), PORTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("core.parallelism=64", ("core", "parallelism", 64)),
        ("core.dags_are_paused_at_creation=false", ("core", "dags_are_paused_at_creation", False)),
        ("Webserver.Base_URL=http://x:1", ("webserver", "base_url", "http://x:1")),
        ('ha.zookeeper_hosts=["a:1","b:2"]', ("ha", "zookeeper_hosts", ["a:1", "b:2"])),
    ],
)
def test_settings_given_on_the_command_line(text: str, expected: tuple[str, str, object]) -> None:
    assert parse_setting(text) == expected


@pytest.mark.parametrize(
    "text", ["parallelism=4", "core.parallelism", "core.=1", ".x=1", "a.b.c=1"]
)
def test_malformed_settings_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match=r"expected SECTION\.KEY=VALUE"):
        parse_setting(text)


def test_a_masters_triggerer_runs_its_role_command_and_says_when_it_is_ready() -> None:
    service = ServicePlan("master1", "triggerer", "127.0.2.1")
    assert role_argv(service)[-1:] == ["triggerer"]
    assert role_probe(service) == Probe("log", text="triggerer ready")
