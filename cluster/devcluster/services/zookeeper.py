"""A private ZooKeeper ensemble for tests, benchmarks and the dev cluster.

Each node is one JVM running Debian's ``zookeeper`` package with its own data
directory, ``myid`` and log under ``base_dir``, listening on the client address and
port it is given. Nodes are started, killed and restarted one by one, which is how
tests lose one node (the ensemble goes on) or the quorum (it stops answering).
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.devcluster.services.ports import is_port_free
from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)

PACKAGE = "zookeeper"
JAR = Path("/usr/share/java/zookeeper.jar")
CONF_DIR = Path("/etc/zookeeper/conf")


@dataclass(frozen=True)
class ZkAddress:
    """Where one node listens: clients on ``host:client_port``, peers on ``host``'s peer ports."""

    host: str
    client_port: int
    peer_port: int
    election_port: int

    @property
    def client(self) -> str:
        return f"{self.host}:{self.client_port}"


#: a four-letter-word probe, run as a script so that it can run inside a namespace
_PROBE = """
import socket, sys
host, port, word = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(word.encode())
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
except OSError:
    sys.exit(1)
sys.stdout.write(b"".join(chunks).decode(errors="replace"))
"""


def loopback_addresses(size: int, *, client_port: int, first: int = 1) -> list[ZkAddress]:
    """One loopback address per node (127.0.1.N), all on the same ports, as TESTING.md does."""
    return [
        ZkAddress(f"127.0.1.{n}", client_port, client_port + 706, client_port + 1706)
        for n in range(first, first + size)
    ]


def free_loopback_addresses(size: int, *, first: int = 1) -> list[ZkAddress]:
    """Loopback addresses whose client, peer and election ports are all free right now.

    :raises ServiceError: when no such port triple was found.
    """
    for _ in range(200):
        candidate = loopback_addresses(
            size, client_port=random.randrange(12000, 18000), first=first
        )
        if all(
            is_port_free(a.host, port)
            for a in candidate
            for port in (a.client_port, a.peer_port, a.election_port)
        ):
            return candidate
    raise ServiceError("no free ports for a ZooKeeper ensemble on 127.0.1.x")


class ZooKeeperEnsemble(Service):
    """``len(addresses)`` ZooKeeper nodes forming one ensemble.

    :param prefix: argv prefix for every node, e.g. ``["ip", "netns", "exec", "ns"]`` to
        run the ensemble inside a network namespace.
    """

    def __init__(
        self,
        base_dir: Path,
        addresses: Sequence[ZkAddress],
        *,
        tick_ms: int = 1000,
        prefix: Sequence[str] = (),
    ) -> None:
        if not JAR.exists():
            raise ServiceError(
                f"{JAR} is missing: apt-get -o DPkg::Lock::Timeout=120 install -y {PACKAGE}"
            )
        self._java = require_binary("java", package="default-jre-headless")
        self.base_dir = Path(base_dir)
        self.addresses = list(addresses)
        self.tick_ms = tick_ms
        self.prefix = list(prefix)
        self._nodes = [
            ServiceProcess(f"zookeeper{n}", self._node_dir(n) / "stdout.log")
            for n in range(1, len(self.addresses) + 1)
        ]

    # --- addresses --------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        """``host:port`` of every node, as ``ha.zookeeper_hosts`` takes them."""
        return [a.client for a in self.addresses]

    def pid(self, node: int) -> int | None:
        return self._nodes[node - 1].pid

    def node_process(self, node: int) -> ServiceProcess:
        """Node ``node``'s JVM (its command line, for the dev cluster's records)."""
        return self._nodes[node - 1]

    # --- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start every node and wait until the ensemble has a leader and followers."""
        for n in range(1, len(self.addresses) + 1):
            self._launch(n)
        self.wait_for_quorum(timeout)

    def start_node(self, node: int, timeout: float = 60.0) -> None:
        """Start one node again (on its old data) and wait until it serves."""
        self._launch(node)
        wait_until(
            lambda: self.mode(node) in ("leader", "follower", "standalone"),
            timeout=timeout,
            what=f"ZooKeeper node {node} joining",
            interval=0.2,
        )

    def stop_node(self, node: int) -> None:
        self._nodes[node - 1].stop(timeout=15)

    def kill_node(self, node: int) -> None:
        """SIGKILL one node by its PID."""
        self._nodes[node - 1].kill()

    def stop(self) -> None:
        for process in self._nodes:
            process.kill()

    def alive(self, node: int) -> bool:
        return self._nodes[node - 1].alive()

    def wait_for_quorum(self, timeout: float = 60.0) -> None:
        """Wait until every running node serves clients (leader, followers)."""

        def served() -> bool:
            for n in range(1, len(self.addresses) + 1):
                if not self._nodes[n - 1].alive():
                    raise ServiceError(f"ZooKeeper node {n} exited:\n{self.log_tail(n)}")
            running = [n for n in range(1, len(self.addresses) + 1) if self.alive(n)]
            return all(self.mode(n) is not None for n in running)

        try:
            wait_until(served, timeout=timeout, what="ZooKeeper ensemble start", interval=0.2)
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{exc}\n{self.log_tail(1)}") from exc

    def mode(self, node: int) -> str | None:
        """``leader``, ``follower`` or ``standalone`` from ``srvr``; None when not serving."""
        answer = self.four_letter(node, "srvr")
        for line in answer.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def four_letter(self, node: int, word: str) -> str:
        """Send a four-letter word to one node's client port ('' when it does not answer).

        The probe runs through ``prefix`` too (inside the ensemble's network namespace,
        if any), so it never sends anything from this one.
        """
        address = self.addresses[node - 1]
        done = subprocess.run(
            [
                *self.prefix,
                sys.executable,
                "-c",
                _PROBE,
                address.host,
                str(address.client_port),
                word,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return done.stdout if done.returncode == 0 else ""

    def log_tail(self, node: int, lines: int = 40) -> str:
        log = self._node_dir(node) / "logs" / "zookeeper.log"
        stdout = self._node_dir(node) / "stdout.log"
        return f"--- zookeeper{node} ---\n{tail(log, lines)}\n{tail(stdout, lines)}"

    # --- files ------------------------------------------------------------------

    def _node_dir(self, node: int) -> Path:
        return self.base_dir / f"n{node}"

    def _launch(self, node: int) -> None:
        node_dir = self._node_dir(node)
        (node_dir / "logs").mkdir(parents=True, exist_ok=True)
        (node_dir / "myid").write_text(f"{node}\n")
        config = node_dir / "zoo.cfg"
        config.write_text(self.config_text(node))
        argv = [
            *self.prefix,
            self._java,
            "-Xmx256m",
            f"-Dzookeeper.log.dir={node_dir / 'logs'}",
            "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
            "-cp",
            f"{CONF_DIR}:{JAR}",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(config),
        ]
        self._nodes[node - 1].start(argv)

    def config_text(self, node: int) -> str:
        """The ``zoo.cfg`` of one node (the same shape as configs/zookeeper/zoo.cfg)."""
        me = self.addresses[node - 1]
        lines = [
            f"tickTime={self.tick_ms}",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={self._node_dir(node)}",
            f"clientPort={me.client_port}",
            f"clientPortAddress={me.host}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr",
            "maxSessionTimeout=60000",
        ]
        if len(self.addresses) > 1:
            lines += [
                f"server.{k}={a.host}:{a.peer_port}:{a.election_port}"
                for k, a in enumerate(self.addresses, start=1)
            ]
        return "\n".join(lines) + "\n"
