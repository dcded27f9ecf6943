"""What ``dev-cluster status`` shows: each service up or down, and who leads.

Up or down comes from the recorded PIDs (the same process, not a reuse of its number).
The schedulers' roles come from ``tradewind cluster status -o json`` run on master1 as
an operator would, so the dev cluster reports leadership exactly as a deployed cluster
does; ZooKeeper nodes report their own mode (``srvr``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.devcluster.pids import is_running
from cluster.devcluster.probes import zookeeper_mode
from cluster.devcluster.roles import node_env, tradewind_argv
from cluster.devcluster.state import ClusterState, ServiceRecord

#: seconds ``cluster status`` may take (it gives up on ZooKeeper after a few)
STATUS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Members:
    """``cluster status``'s schedulers, or why they could not be read."""

    roles: dict[int, str]
    error: str | None = None


def read_members(current: ClusterState, *, timeout: float = STATUS_TIMEOUT) -> Members:
    """Every scheduler's role by PID, from ``tradewind cluster status -o json``.

    Never raises: with the metastore down the answer is the error, and the rest of the
    status still shows.
    """
    home = Path(current.operator_home)
    try:
        done = subprocess.run(
            [*tradewind_argv(), "cluster", "status", "-o", "json"],
            env=node_env(home),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Members({}, f"cluster status took longer than {timeout:g} s")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return Members({}, lines[-1] if lines else f"cluster status exited {done.returncode}")
    try:
        data = json.loads(done.stdout)
        return Members({int(s["pid"]): str(s["role"]) for s in data["schedulers"]})
    except (ValueError, KeyError, TypeError) as exc:
        return Members({}, f"cluster status said something unexpected: {exc}")


def service_rows(current: ClusterState, members: Members) -> list[dict[str, Any]]:
    """One row per service: name, node, kind, address, port, pid, state and detail."""
    return [_row(record, members) for record in current.services]


def leader(current: ClusterState, members: Members) -> str | None:
    """The name of the running scheduler ``cluster status`` calls the leader."""
    for record in current.services:
        if (
            record.kind == "scheduler"
            and members.roles.get(record.pid) == "leader"
            and is_running(record.process)
        ):
            return record.name
    return None


def _row(record: ServiceRecord, members: Members) -> dict[str, Any]:
    running = is_running(record.process)
    detail = ""
    if running and record.kind == "scheduler":
        detail = members.roles.get(record.pid, "unknown")
    elif running and record.kind == "zookeeper" and record.port:
        detail = zookeeper_mode(record.address, record.port) or "not serving"
    return {
        "name": record.name,
        "node": record.node,
        "kind": record.kind,
        "address": record.address,
        "port": record.port,
        "pid": record.pid if running else None,
        "state": "up" if running else "down",
        "detail": detail,
    }
