"""The on-disk record of a running dev cluster: ``DIR/state.json``.

``dev-cluster up`` writes it; ``status``, ``kill``, ``start``, ``logs`` and ``down`` are
separate processes that only know the cluster through it. For each service it holds
what is needed to act on it later without the objects that started it: the PID and
start time (to signal only that process), the exact command line and environment (to
start it again the same way), its log files and how to tell it is ready.

Changes go through :func:`locked` (an ``flock`` on ``DIR/state.lock``) and are written
to a temporary file then renamed, so two commands run at once never leave a torn file.
The file holds the admin password and the cluster's secrets: it is created mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cluster.devcluster.pids import ProcessId
from cluster.errors import UsageError

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
VERSION = 1


@dataclass(frozen=True)
class Probe:
    """How to tell a (re)started service is ready.

    ``kind`` is one of ``tcp`` (something listens on ``host:port``), ``http``
    (``GET http://host:port{path}`` answers 200), ``zookeeper`` (``srvr`` on the client
    port names a mode), ``log`` (``text`` appears in the service's output after its
    start) or ``process`` (it runs: for a service with nothing to ask).
    """

    kind: str = "process"
    host: str = ""
    port: int = 0
    path: str = ""
    text: str = ""


@dataclass(frozen=True)
class ServiceRecord:
    """One service of the cluster as ``up`` (or the last ``start``) left it."""

    name: str
    node: str
    kind: str
    address: str
    port: int | None
    argv: list[str]
    #: the exact environment; None: the environment of whoever starts it
    env: dict[str, str] | None
    output: str
    log: str
    probe: Probe = field(default_factory=Probe)
    pid: int = 0
    started: int = 0
    cwd: str | None = None

    @property
    def process(self) -> ProcessId:
        return ProcessId(self.pid, self.started)

    def with_process(self, process: ProcessId) -> ServiceRecord:
        return replace(self, pid=process.pid, started=process.started)


@dataclass(frozen=True)
class ClusterState:
    """The whole dev cluster: where it lives, how to reach it, and its services."""

    root: str
    inventory: str
    url: str
    admin_user: str
    admin_password: str
    services: list[ServiceRecord]
    #: the home of master1: ``TRADEWIND_HOME`` for operator commands against the cluster
    operator_home: str = ""
    stats_url: str = ""
    stats_socket: str = ""

    def service(self, name: str) -> ServiceRecord:
        """The service called ``name``.

        :raises UsageError: there is none.
        """
        for record in self.services:
            if record.name == name:
                return record
        raise UsageError(f"no service {name!r} in the dev cluster")

    def resolve(self, target: str) -> list[ServiceRecord]:
        """The services ``target`` names, in start order.

        ``target`` is a service (``master1/scheduler``), a node (``master1``: all of its
        services), or a kind that only one service has (``haproxy``, ``mariadb``,
        ``postgresql``).

        :raises UsageError: nothing or more than one service matches; the message lists
            what would.
        """
        exact = [r for r in self.services if r.name == target]
        if exact:
            return exact
        on_node = [r for r in self.services if r.node == target]
        if on_node:
            return on_node
        of_kind = [r for r in self.services if r.kind == target]
        if len(of_kind) == 1:
            return of_kind
        if of_kind:
            names = ", ".join(r.name for r in of_kind)
            raise UsageError(f"{target!r} is ambiguous: say which one of {names}")
        nodes = ", ".join(dict.fromkeys(r.node for r in self.services))
        raise UsageError(f"no node or service {target!r} in the dev cluster (nodes: {nodes})")

    def replaced(self, record: ServiceRecord) -> ClusterState:
        """A copy with ``record`` in place of the service of the same name."""
        services = [record if r.name == record.name else r for r in self.services]
        return replace(self, services=services)

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, **asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> ClusterState:
        """:raises UsageError: not a state file this version wrote."""
        try:
            data: dict[str, Any] = json.loads(text)
            if data.pop("version", None) != VERSION:
                raise ValueError(f"version is not {VERSION}")
            services = [
                ServiceRecord(**{**s, "probe": Probe(**s["probe"])}) for s in data.pop("services")
            ]
            return cls(services=services, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{source} is not a dev-cluster state file: {exc}") from exc


def state_path(root: Path) -> Path:
    return root / STATE_FILE


def exists(root: Path) -> bool:
    return state_path(root).exists()


def load(root: Path) -> ClusterState:
    """The state of the dev cluster in ``root``.

    :raises UsageError: no dev cluster was brought up there.
    """
    path = state_path(root)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"no dev cluster in {root}: start one with 'tradewind dev-cluster up'"
        ) from None
    return ClusterState.from_json(text, source=str(path))


def save(state: ClusterState) -> None:
    """Write the state atomically (temporary file, then rename), readable by its owner only."""
    path = state_path(Path(state.root))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(state.to_json())
    temporary.replace(path)


def remove(root: Path) -> None:
    state_path(root).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the dev cluster's lock: one command changes the state at a time."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
