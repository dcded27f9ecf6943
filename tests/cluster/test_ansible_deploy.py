"""A real deployment: ansible/site.yml provisions systemd-nspawn nodes, twice, then runs a DAG.

Four nodes boot the cached Debian image with real systemd: master1 and master2
(webserver and scheduler), worker1 (Celery worker) and infra1 (MariaDB, RabbitMQ,
ZooKeeper, HAProxy). Nodes have no network but the test's bridge: the wheelhouse the
controller built is what ``common`` installs from. The second run of the playbook must
change nothing on any host; then a DAG triggered through HAProxy's REST API must succeed.

Each phase's duration is printed (run with ``-s``) and recorded as a user property.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cluster.devcluster.services.process import ServiceError, tail, wait_until
from tests.cluster.nspawn_image import ensure_image
from tests.cluster.nspawn_nodes import Cluster, elapsed
from tests.cluster.wheelhouse import build_wheelhouse

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
ROLES = {
    "master1": ["master"],
    "master2": ["master"],
    "worker1": ["worker"],
    "infra1": ["metastore", "broker", "zookeeper", "loadbalancer"],
}
ADMIN = ("admin", f"admin-{uuid.uuid4().hex[:8]}")
DAG_ID = "cluster_smoke"
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
#: values of group_vars/all.yml that say "change me", replaced for this run
SECRETS = {
    "tradewind_secret_key": uuid.uuid4().hex,
    "tradewind_fernet_key": "zyGR2knmsqhUFYjA6RaUmZO8JQ9aqSbBHxNIXF_HfG0=",
    "tradewind_db_password": uuid.uuid4().hex[:12],
    "tradewind_broker_password": uuid.uuid4().hex[:12],
    "rabbitmq_erlang_cookie": uuid.uuid4().hex.upper(),
    "tradewind_admin_user": ADMIN[0],
    "tradewind_admin_password": ADMIN[1],
    "haproxy_stats_password": uuid.uuid4().hex[:12],
}
#: smaller processes: four nodes share two busy cores
SMALL = {
    "common_webserver_workers": 1,
    "common_worker_concurrency": 2,
    "rabbitmq_plugins": [],
    "metastore_innodb_buffer_pool_size": "64M",
    "zookeeper_heap": "128m",
}


def require_tools() -> None:
    """Fail (never skip) when this machine cannot run the test, saying what is missing."""
    if os.geteuid() != 0:
        pytest.fail("the deployment test needs root (network namespaces, mounts, nspawn)")
    for name, package in (
        ("mmdebstrap", "mmdebstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("ssh", "openssh-client"),
        ("curl", "curl"),
        ("ip", "iproute2"),
    ):
        if shutil.which(name) is None:
            pytest.fail(f"'{name}' is needed by the deployment test: apt-get install {package}")


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    return {}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]
) -> Iterator[Cluster]:
    require_tools()
    base = tmp_path_factory.mktemp("deploy")
    started = time.monotonic()
    image, build_seconds = ensure_image(base / "mmdebstrap.log")
    timings["image_build_s"] = round(build_seconds, 1)
    timings["image_lookup_s"] = elapsed(started)
    started = time.monotonic()
    build_wheelhouse(base / "wheelhouse", base / "pip.log")
    timings["wheelhouse_s"] = elapsed(started)
    nodes = Cluster(base, image)
    try:
        started = time.monotonic()
        nodes.start(list(ROLES))
        timings["boot_s"] = elapsed(started)
        yield nodes
    finally:
        nodes.stop()


def write_inventory(cluster: Cluster) -> Path:
    """An inventory with the Vagrant inventory's groups, for the nodes' real addresses."""
    groups: dict[str, dict[str, dict[str, object]]] = {}
    for name, roles in ROLES.items():
        for role in roles:
            host: dict[str, object] = {"ansible_host": cluster.nodes[name].address}
            if role == "zookeeper":
                host["zookeeper_id"] = 1
            groups.setdefault(role, {"hosts": {}})["hosts"][name] = host
    inventory = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_ssh_private_key_file": str(cluster.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null",
            },
            "children": groups,
        }
    }
    path = cluster.base / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_playbook(cluster: Cluster, inventory: Path, log: Path) -> dict[str, dict[str, int]]:
    """Run site.yml from the controller namespace; the recap per host."""
    extra = cluster.base / "extra-vars.json"
    extra.write_text(
        json.dumps({**SECRETS, **SMALL, "tradewind_wheelhouse": str(cluster.base / "wheelhouse")})
    )
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # the same output with a timestamp on every line: where a slow run spent its time
        "ANSIBLE_LOG_PATH": str(log.with_suffix(".timed.log")),
    }
    argv = cluster.network.in_controller(
        ["ansible-playbook", "-i", str(inventory), "-e", f"@{extra}", "site.yml"]
    )
    with open(log, "w") as out:
        done = subprocess.run(
            argv, cwd=ANSIBLE, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=2400
        )
    text = log.read_text()
    if done.returncode != 0:
        pytest.fail(f"site.yml exited {done.returncode}:\n{tail(log, 80)}")
    recap = {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP.finditer(text)
    }
    assert set(recap) == set(ROLES), text[-3000:]
    return recap


def api(cluster: Cluster, method: str, path: str, body: object = None) -> tuple[int, object]:
    """One REST call to HAProxy on infra1, made from the controller namespace."""
    url = f"http://{cluster.nodes['infra1'].address}:8080/api/v1{path}"
    argv = ["curl", "-sS", "-m", "20", "-u", ":".join(ADMIN), "-X", method, "-w", "\n%{http_code}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    done = subprocess.run(
        cluster.network.in_controller([*argv, url]), capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return 0, done.stderr.strip()
    text, _, status = done.stdout.rpartition("\n")
    try:
        return int(status), json.loads(text) if text else None
    except ValueError:
        return int(status), text


def diagnostics(cluster: Cluster) -> str:
    parts = []
    for name, unit in (
        ("master1", "tradewind-scheduler"),
        ("master2", "tradewind-scheduler"),
        ("master1", "tradewind-triggerer"),
        ("master1", "tradewind-webserver"),
        ("worker1", "tradewind-worker"),
        ("infra1", "haproxy"),
    ):
        parts.append(f"--- {name} {unit}\n{cluster.journal(cluster.nodes[name], unit)}")
    return "\n".join(parts)


def test_site_yml_deploys_an_idempotent_cluster_that_runs_a_dag(
    cluster: Cluster, timings: dict[str, float], record_property: pytest.RecordProperty
) -> None:
    for node in cluster.nodes.values():
        cluster.network.check_route(node.address)
    inventory = write_inventory(cluster)

    started = time.monotonic()
    first = run_playbook(cluster, inventory, cluster.base / "first-run.log")
    timings["first_run_s"] = elapsed(started)
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in first.values()), first
    assert all(r["changed"] > 0 for r in first.values()), first

    started = time.monotonic()
    second = run_playbook(cluster, inventory, cluster.base / "second-run.log")
    timings["second_run_s"] = elapsed(started)
    changed = {host: r["changed"] for host, r in second.items() if r["changed"]}
    assert not changed, f"the second run changed something: {changed}\n" + tail(
        cluster.base / "second-run.log", 120
    )

    started = time.monotonic()
    run_id = trigger_through_haproxy(cluster)
    state = wait_for_run(cluster, run_id)
    timings["dag_run_s"] = elapsed(started)
    for key, value in timings.items():
        record_property(key, value)
    print(f"\ndeployment timings (s): {json.dumps(timings)}")
    assert state == "success", diagnostics(cluster)
    # the tasks went through RabbitMQ to the worker node, which recorded them
    status, body = api(cluster, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    assert status == 200, body
    assert isinstance(body, dict)
    ran = {ti["task_id"]: (ti["state"], ti["hostname"]) for ti in body["task_instances"]}
    worker = cluster.nodes["worker1"].address
    assert ran == {"hello": ("success", worker), "where": ("success", worker)}, ran


def trigger_through_haproxy(cluster: Cluster) -> str:
    """Unpause the DAG once a scheduler has parsed it, and trigger one run."""

    def unpaused() -> bool:
        status, _ = api(cluster, "PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
        return status == 200

    try:
        wait_until(unpaused, timeout=240, what=f"DAG {DAG_ID} known to the API", interval=2)
    except ServiceError as exc:
        pytest.fail(f"{exc}\n{diagnostics(cluster)}")
    run_id = f"deploy_{uuid.uuid4().hex[:8]}"
    status, body = api(cluster, "POST", f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id})
    assert status in (200, 201), (status, body)
    return run_id


def wait_for_run(cluster: Cluster, run_id: str) -> str:
    """Poll the run through HAProxy until it ends; its final state."""
    seen: dict[str, str] = {}

    def ended() -> bool:
        status, body = api(cluster, "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        if status == 200 and isinstance(body, dict):
            seen["state"] = str(body.get("state"))
        return seen.get("state") in ("success", "failed")

    try:
        wait_until(ended, timeout=300, what=f"DAG run {run_id}", interval=2)
    except ServiceError as exc:
        pytest.fail(f"{exc} (last state {seen.get('state')})\n{diagnostics(cluster)}")
    return seen["state"]
