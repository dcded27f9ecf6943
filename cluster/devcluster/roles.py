"""The Tradewind processes of masters and workers, started as on a real node.

Each master and worker gets a home of its own (``DIR/nodes/NAME``) holding the one
``tradewind.toml`` a deployed node has, and runs exactly the commands of the systemd
units in ``roles/master`` and ``roles/worker``: ``tradewind scheduler``, ``tradewind
webserver``, ``tradewind triggerer`` and ``tradewind worker --hostname ADDRESS``, with
nothing in their environment but ``TRADEWIND_HOME`` (and what a shell needs to find
Python).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cluster.devcluster.layout import ServicePlan, render_toml
from cluster.devcluster.services.process import ServiceError
from cluster.devcluster.state import Probe, ServiceRecord

TOML_HEADER = (
    "Written by `tradewind dev-cluster up`: the same settings a deployed node gets\n"
    "from roles/common/templates/tradewind.toml.j2."
)
#: environment variables passed through to the role processes
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")
#: what a triggerer logs once its first heartbeat is written (cluster.triggerer.service)
TRIGGERER_READY = "triggerer ready"
#: seconds a one-shot CLI command (``db migrate``, ``users create``) may take
CLI_TIMEOUT = 300.0


def tradewind_argv() -> list[str]:
    """How to run ``tradewind`` with this interpreter: its console script if installed."""
    script = Path(sys.executable).with_name("tradewind")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cluster.cli"]


def node_env(home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a node's processes: ``TRADEWIND_HOME`` and little else.

    Nothing ``TRADEWIND__*`` of the caller leaks in: the node's settings are its file.
    """
    base = os.environ if base is None else base
    env = {key: base[key] for key in PASSED_THROUGH if key in base}
    env.update({"TRADEWIND_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    return env


def write_home(home: Path, settings: Mapping[str, Mapping[str, Any]]) -> Path:
    """Create a node's home with its ``tradewind.toml`` (mode 0600: it holds secrets)."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    path = home / "tradewind.toml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(render_toml(settings, header=TOML_HEADER))
    return path


def role_argv(service: ServicePlan) -> list[str]:
    """The role command of a master or worker service.

    :raises ServiceError: ``service`` is not a Tradewind process.
    """
    if service.kind == "scheduler":
        return [*tradewind_argv(), "scheduler"]
    if service.kind == "webserver":
        return [*tradewind_argv(), "webserver"]
    if service.kind == "triggerer":
        return [*tradewind_argv(), "triggerer"]
    if service.kind == "worker":
        return [*tradewind_argv(), "worker", "--hostname", service.address]
    raise ServiceError(f"{service.name} is not a Tradewind process")


def role_probe(service: ServicePlan) -> Probe:
    """Ready means: a webserver's ``/health`` is 200, a worker says it consumes, a
    triggerer says it started (its first heartbeat is written).

    A scheduler has nothing to ask (a standby serves nothing): it is ready when it runs;
    who leads is what ``dev-cluster status`` reads from ``cluster status``.
    """
    if service.kind == "webserver" and service.port:
        return Probe("http", host=service.address, port=service.port, path="/health")
    if service.kind == "worker":
        return Probe("log", text=f"tradewind@{service.address} ready")
    if service.kind == "triggerer":
        return Probe("log", text=TRIGGERER_READY)
    return Probe("process")


def role_record(service: ServicePlan, home: Path) -> ServiceRecord:
    """The (not yet started) record of one role process living in ``home``."""
    output = home / "logs" / f"{service.kind}.out"
    return ServiceRecord(
        name=service.name,
        node=service.node,
        kind=service.kind,
        address=service.address,
        port=service.port,
        argv=role_argv(service),
        env=node_env(home),
        output=str(output),
        log=str(output),
        probe=role_probe(service),
        cwd=str(home),
    )


def run_cli(home: Path, args: Sequence[str], *, timeout: float = CLI_TIMEOUT) -> str:
    """Run one ``tradewind`` command as an operator on the node of ``home``; its output.

    :raises ServiceError: it failed (with its error line) or took longer than ``timeout``.
    """
    try:
        done = subprocess.run(
            [*tradewind_argv(), *args],
            env=node_env(home),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"tradewind {args[0]} took longer than {timeout:g} s") from exc
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise ServiceError(f"tradewind {' '.join(args[:2])} failed: {reason}")
    return done.stdout
