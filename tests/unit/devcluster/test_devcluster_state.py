"""The state file lets separate ``dev-cluster`` commands find and act on the services
that ``up`` started: names resolve to services, and the file survives a round trip."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cluster.devcluster import state as state_file
from cluster.devcluster.state import ClusterState, Probe, ServiceRecord
from cluster.errors import UsageError


def record(name: str, pid: int = 100) -> ServiceRecord:
    node, _, kind = name.partition("/")
    return ServiceRecord(
        name=name,
        node=node,
        kind=kind,
        address="127.0.2.1",
        port=8080 if kind == "webserver" else None,
        argv=["tradewind", kind],
        env={"TRADEWIND_HOME": f"/x/{node}"},
        output=f"/x/{node}/{kind}.out",
        log=f"/x/{node}/{kind}.out",
        probe=Probe("http", host="127.0.2.1", port=8080, path="/health"),
        pid=pid,
        started=12345,
    )


def cluster(root: Path) -> ClusterState:
    names = [
        "metastore1/mariadb",
        "master1/scheduler",
        "master1/webserver",
        "master2/scheduler",
        "master2/webserver",
        "loadbalancer1/haproxy",
    ]
    return ClusterState(
        root=str(root),
        inventory=str(root / "inventory.yml"),
        url="http://127.0.4.2:8080",
        admin_user="admin",
        admin_password="pw",
        services=[record(name, pid) for pid, name in enumerate(names, start=100)],
    )


def test_a_service_is_named_by_its_full_name(tmp_path: Path) -> None:
    assert [r.name for r in cluster(tmp_path).resolve("master2/scheduler")] == ["master2/scheduler"]


def test_a_node_names_all_of_its_services_in_start_order(tmp_path: Path) -> None:
    found = cluster(tmp_path).resolve("master1")
    assert [r.name for r in found] == ["master1/scheduler", "master1/webserver"]


def test_a_kind_only_one_service_has_names_it(tmp_path: Path) -> None:
    assert [r.name for r in cluster(tmp_path).resolve("haproxy")] == ["loadbalancer1/haproxy"]


def test_a_kind_several_services_have_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"ambiguous.*master1/scheduler, master2/scheduler"):
        cluster(tmp_path).resolve("scheduler")


def test_an_unknown_name_lists_the_nodes(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no node or service 'master9'.*master1, master2"):
        cluster(tmp_path).resolve("master9")


def test_replacing_a_record_keeps_the_others(tmp_path: Path) -> None:
    before = cluster(tmp_path)
    fresh = record("master1/webserver", pid=999)
    after = before.replaced(fresh)
    assert after.service("master1/webserver").pid == 999
    assert [r.pid for r in after.services if r.name != "master1/webserver"] == [
        r.pid for r in before.services if r.name != "master1/webserver"
    ]


def test_the_state_survives_a_round_trip_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    original = cluster(tmp_path)
    state_file.save(original)
    assert state_file.exists(tmp_path)
    assert stat.S_IMODE(state_file.state_path(tmp_path).stat().st_mode) == 0o600
    assert state_file.load(tmp_path) == original


def test_no_cluster_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no dev cluster in .*dev-cluster up"):
        state_file.load(tmp_path)


@pytest.mark.parametrize("text", ["not json", '{"version": 99}', '{"version": 1, "services": []}'])
def test_a_foreign_state_file_is_refused(tmp_path: Path, text: str) -> None:
    state_file.state_path(tmp_path).write_text(text)
    with pytest.raises(UsageError, match="is not a dev-cluster state file"):
        state_file.load(tmp_path)
