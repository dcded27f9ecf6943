"""Real nodes for the deployment test: systemd-nspawn containers on a private bridge.

Each node boots the cached image (see :mod:`tests.cluster.nspawn_image`) through an
overlay mount, so nodes share the image read-only and write only to their own upper
directory under the test's temp dir. Each runs real systemd in its own network
namespace, joined by a veth pair to a bridge that lives in a *controller* namespace:
Ansible, SSH and every HTTP request of the test run there, so nothing the test sends
can leave the machine (:meth:`Network.check_route` asserts the route before use).

Everything is torn down by what the harness recorded: nspawn processes by PID (SIGTERM
powers the container off, SIGKILL after a deadline), overlay mounts by path, and the
namespaces it created by name (deleting a namespace deletes its veths and bridge).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cluster.devcluster.services.process import ServiceError, tail, wait_until

SSH_OPTIONS = (
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
)


def sh(argv: Sequence[str], *, timeout: float = 60, check: bool = True) -> str:
    """Run a setup command; :class:`ServiceError` with its output when it fails."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise ServiceError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Network:
    """A controller namespace holding a bridge, and one namespace per node on it."""

    tag: str = field(default_factory=lambda: f"tw{os.getpid() % 100000}")
    subnet: str = field(
        default_factory=lambda: f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
    )
    namespaces: list[str] = field(default_factory=list)

    @property
    def controller(self) -> str:
        return f"{self.tag}-ctl"

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def create(self) -> None:
        self._add_namespace(self.controller)
        ns = ["ip", "netns", "exec", self.controller]
        sh([*ns, "ip", "link", "set", "lo", "up"])
        sh([*ns, "ip", "link", "add", self.bridge, "type", "bridge"])
        sh([*ns, "ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        sh([*ns, "ip", "link", "set", self.bridge, "up"])

    def add_node(self, index: int) -> tuple[str, str]:
        """A namespace for node ``index`` wired to the bridge: (its name, its address)."""
        name = f"{self.tag}-n{index}"
        address = f"{self.subnet}.{10 + index}"
        inner, outer = f"{self.tag}v{index}", f"{self.tag}p{index}"
        self._add_namespace(name)
        sh(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        sh(["ip", "link", "set", inner, "netns", name])
        sh(["ip", "link", "set", outer, "netns", self.controller])
        ctl = ["ip", "netns", "exec", self.controller]
        sh([*ctl, "ip", "link", "set", outer, "master", self.bridge])
        sh([*ctl, "ip", "link", "set", outer, "up"])
        node = ["ip", "netns", "exec", name]
        sh([*node, "ip", "link", "set", "lo", "up"])
        sh([*node, "ip", "link", "set", inner, "name", "eth0"])
        sh([*node, "ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        sh([*node, "ip", "link", "set", "eth0", "up"])
        return name, address

    def check_route(self, address: str) -> None:
        """Fail unless the controller reaches ``address`` through this test's bridge."""
        route = sh(["ip", "netns", "exec", self.controller, "ip", "route", "get", address])
        if f"dev {self.bridge}" not in route:
            raise ServiceError(f"route to {address} does not use {self.bridge}: {route.strip()}")

    def in_controller(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.controller, *argv]

    def delete(self) -> None:
        for name in reversed(self.namespaces):
            sh(["ip", "netns", "del", name], check=False)
        self.namespaces.clear()

    def _add_namespace(self, name: str) -> None:
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)


@dataclass
class Node:
    """One booted container: a name, an address, its nspawn process and overlay mount."""

    name: str
    address: str
    namespace: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    mounted: bool = False

    def boot(self, image: Path, public_key: str) -> None:
        """Mount the overlay, install the SSH key and start systemd-nspawn."""
        upper, work = self.root / "upper", self.root / "work"
        merged = self.root / "merged"
        for path in (upper, work, merged):
            path.mkdir(parents=True, exist_ok=True)
        options = f"lowerdir={image},upperdir={upper},workdir={work}"
        sh(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
        self.mounted = True
        keys = merged / "root" / ".ssh" / "authorized_keys"
        keys.write_text(public_key)
        keys.chmod(0o600)
        argv = [
            "systemd-nspawn",
            "-q",
            "-D",
            str(merged),
            "-b",
            "--register=no",
            "--keep-unit",
            "-M",
            self.name,
            f"--network-namespace-path=/run/netns/{self.namespace}",
            "--console=read-only",
        ]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60) -> None:
        """Power the container off (SIGTERM to nspawn), SIGKILL it after ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        if self.mounted:
            merged = str(self.root / "merged")
            if subprocess.run(["umount", merged], check=False).returncode != 0:
                subprocess.run(["umount", "-l", merged], check=False)
            self.mounted = False


@dataclass
class Cluster:
    """The nodes of one test, their network, and the controller's SSH key."""

    base: Path
    image: Path
    network: Network = field(default_factory=Network)
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def key(self) -> Path:
        return self.base / "id_ed25519"

    def start(self, names: Sequence[str]) -> None:
        """Create the network, boot every node, and wait until each answers over SSH."""
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)])
        public_key = self.key.with_suffix(".pub").read_text()
        self.network.create()
        for index, name in enumerate(names, start=1):
            namespace, address = self.network.add_node(index)
            node = Node(name, address, namespace, self.base / name, self.base / f"{name}.log")
            self.nodes[name] = node
            self.network.check_route(address)
            node.boot(self.image, public_key)
        for node in self.nodes.values():
            self.wait_for_ssh(node)

    def ssh(
        self, node: Node, command: str, *, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = self.network.in_controller(
            ["ssh", *SSH_OPTIONS, "-i", str(self.key), f"root@{node.address}", command]
        )
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def wait_for_ssh(self, node: Node, timeout: float = 180) -> None:
        def ready() -> bool:
            if not node.alive():
                raise ServiceError(f"node {node.name} exited while booting:\n{tail(node.log)}")
            return (
                self.ssh(node, "systemctl is-system-running --wait >/dev/null; true").returncode
                == 0
            )

        wait_until(ready, timeout=timeout, what=f"SSH on {node.name} ({node.address})", interval=1)

    def journal(self, node: Node, unit: str, lines: int = 40) -> str:
        """The last lines of a unit's journal on ``node`` (for failure reports)."""
        if not node.alive():
            return f"({node.name} is not running)"
        done = self.ssh(node, f"journalctl -u {unit} -n {lines} --no-pager", timeout=30)
        return done.stdout + done.stderr

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.network.delete()


def elapsed(started: float) -> float:
    return round(time.monotonic() - started, 1)
