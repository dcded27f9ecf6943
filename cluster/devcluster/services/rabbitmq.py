"""A private RabbitMQ cluster of N nodes on loopback, for tests and the dev cluster.

Every node runs ``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly (the ``/usr/sbin``
wrappers switch to the ``rabbitmq`` user and its Erlang cookie) with its own data, log
and pid file under one directory, and a ``HOME`` holding the cookie the nodes and
``rabbitmqctl`` share. The run starts its own ``epmd`` on a private port, so node names
never clash with another run's, and stops it by PID at the end like every node: nothing
is ever stopped by name. Nodes 2..N join node 1 with ``join_cluster``; a stopped node
started again on its data directory rejoins by itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)

PACKAGE = "rabbitmq-server"
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
HOST = "127.0.0.1"
#: private ranges below the ephemeral ports (a node bound in it crashed, see TESTING.md)
AMQP_PORTS = (20000, 26000)
DIST_PORTS = (26000, 30000)
CTL_PORTS = (30000, 32000)
MANAGEMENT_PORTS = (15000, 20000)
#: seconds ``rabbitmqctl`` may take for one administrative command
CTL_TIMEOUT = 120.0


@dataclass(frozen=True)
class NodeSpec:
    """Where node ``number`` lives and listens."""

    number: int
    name: str
    amqp_port: int
    dist_port: int
    base: Path
    management_port: int = 0

    @property
    def pid_file(self) -> Path:
        return self.base / "pid"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.name}.log"


class RabbitMQCluster(Service):
    """``nodes`` RabbitMQ nodes clustered on ``127.0.0.1`` under ``base_dir``.

    :param definitions: a definitions file (vhost, users, policies) every node loads at
        boot; ``None`` keeps RabbitMQ's ``guest`` user on ``/``.
    :param user, password, vhost: what :attr:`urls` name; they must exist in
        ``definitions``.
    :param consumer_timeout: milliseconds a consumer may hold an unacked message.
    :param management: enable the management plugin (HTTP API on a port of each node's
        own, see :meth:`management_url`); it adds a few seconds to every boot.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        nodes: int = 3,
        definitions: Path | None = None,
        user: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        consumer_timeout: int = 604_800_000,
        management: bool = False,
    ) -> None:
        if nodes < 1:
            raise ServiceError("a RabbitMQ cluster needs at least one node")
        self.base_dir = Path(base_dir)
        self.home = self.base_dir / "home"
        self.definitions = definitions
        self.user = user
        self.password = password
        self.vhost = vhost
        self.consumer_timeout = consumer_timeout
        self.management = management
        self._server = _require_script("rabbitmq-server")
        self._ctl = _require_script("rabbitmqctl")
        self._epmd_binary = require_binary("epmd", package="erlang-base")
        self._epmd_port = free_port(HOST, low=DIST_PORTS[0], high=DIST_PORTS[1])
        self._ctl_port = free_port(HOST, low=CTL_PORTS[0], high=CTL_PORTS[1] - 20)
        self._epmd = ServiceProcess("epmd", self.base_dir / "epmd.log")
        self.specs = [self._spec(n) for n in range(1, nodes + 1)]
        self._processes = [
            ServiceProcess(spec.name, spec.base / "stdout.log") for spec in self.specs
        ]

    # --- addresses --------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """One AMQP URL per node, node 1 first (give them all to clients: failover)."""
        return [self.url(number) for number in range(1, len(self.specs) + 1)]

    def url(self, number: int) -> str:
        """The AMQP URL of node ``number`` (1-based)."""
        spec = self._node(number)
        vhost = "" if self.vhost == "/" else self.vhost
        return f"amqp://{self.user}:{self.password}@{HOST}:{spec.amqp_port}/{vhost}"

    def management_url(self, number: int) -> str:
        """The management API base URL of node ``number``, with the credentials."""
        port = self._node(number).management_port
        return f"http://{self.user}:{self.password}@{HOST}:{port}"

    def pid(self, number: int) -> int | None:
        return self._processes[number - 1].pid

    def node_process(self, number: int) -> ServiceProcess:
        """Node ``number``'s process (its command line, for the dev cluster's records)."""
        self._node(number)
        return self._processes[number - 1]

    @property
    def epmd_process(self) -> ServiceProcess:
        """This cluster's own ``epmd``."""
        return self._epmd

    # --- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        """Start epmd and every node, wait until each is booted, then cluster them.

        :raises ServiceError: when a node exits or does not boot in time; the message
            ends with the tail of its log.
        """
        self._prepare_home()
        self._start_epmd()
        for spec in self.specs:
            self._write_node_files(spec)
        for number in range(1, len(self.specs) + 1):
            self._launch(number)
        for number in range(1, len(self.specs) + 1):
            self._wait_booted(number, timeout)
        first = self.specs[0].name
        for spec in self.specs[1:]:
            self.ctl(spec.number, "stop_app")
            self.ctl(spec.number, "join_cluster", first)
            self.ctl(spec.number, "start_app")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every node (SIGTERM by PID, all at once; SIGKILL after ``timeout``), then epmd."""
        running = [p for p in self._processes if p.alive() and p.pid is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)  # type: ignore[arg-type]
        with contextlib.suppress(ServiceError):
            wait_until(
                lambda: not any(p.alive() for p in running),
                timeout=timeout,
                what="RabbitMQ nodes to stop",
                interval=0.2,
            )
        for process in running:
            process.kill()
        self._epmd.stop(10)

    def stop_node(self, number: int, timeout: float = 60.0) -> None:
        """Shut node ``number`` down cleanly, by its PID."""
        self._processes[number - 1].stop(timeout)

    def kill_node(self, number: int) -> None:
        """SIGKILL node ``number``: a crash."""
        self._processes[number - 1].kill()

    def start_node(self, number: int, timeout: float = 90.0) -> None:
        """Start node ``number`` again on its data directory; it rejoins the cluster."""
        self._launch(number)
        self._wait_booted(number, timeout)

    def node_alive(self, number: int) -> bool:
        return self._processes[number - 1].alive()

    # --- administration ---------------------------------------------------------

    def ctl(self, number: int, *args: str, timeout: float = CTL_TIMEOUT) -> str:
        """Run ``rabbitmqctl`` against node ``number`` and return its output.

        :raises ServiceError: with its output when it fails.
        """
        done = subprocess.run(
            [self._ctl, "-n", self._node(number).name, *args],
            env=self._env(self._node(number)),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise ServiceError(
                f"rabbitmqctl {' '.join(args)} on node {number} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        """The end of every node's log, for failure reports."""
        parts = []
        for spec in self.specs:
            parts.append(f"--- {spec.log_file} ---\n{tail(spec.log_file, lines)}")
            stdout = spec.base / "stdout.log"
            parts.append(f"--- {stdout} ---\n{tail(stdout, 10)}")
        return "\n".join(parts)

    # --- internals --------------------------------------------------------------

    def _spec(self, number: int) -> NodeSpec:
        return NodeSpec(
            number=number,
            name=f"rabbit{number}@localhost",
            amqp_port=free_port(HOST, low=AMQP_PORTS[0], high=AMQP_PORTS[1]),
            dist_port=free_port(HOST, low=DIST_PORTS[0], high=DIST_PORTS[1]),
            base=self.base_dir / f"n{number}",
            management_port=(
                free_port(HOST, low=MANAGEMENT_PORTS[0], high=MANAGEMENT_PORTS[1])
                if self.management
                else 0
            ),
        )

    def _node(self, number: int) -> NodeSpec:
        if not 1 <= number <= len(self.specs):
            raise ServiceError(f"no node {number}: the cluster has {len(self.specs)} nodes")
        return self.specs[number - 1]

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(os.urandom(16).hex().upper())
            cookie.chmod(0o400)

    def _start_epmd(self) -> None:
        """An epmd of this run's own, on a private port: stopped by PID at the end."""
        if self._epmd.alive():
            return
        self._epmd.start(
            [self._epmd_binary, "-port", str(self._epmd_port), "-address", HOST],
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.home)},
        )

        def listening() -> bool:
            if not self._epmd.alive():
                raise ServiceError(f"epmd exited at start:\n{tail(self._epmd.log_path)}")
            return not _port_free(self._epmd_port)

        wait_until(listening, timeout=10, what="epmd start")

    def _write_node_files(self, spec: NodeSpec) -> None:
        for sub in ("mnesia", "log"):
            (spec.base / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "loopback_users = none",
            f"listeners.tcp.1 = {HOST}:{spec.amqp_port}",
            f"consumer_timeout = {self.consumer_timeout}",
            "log.file.level = info",
            "log.console = false",
        ]
        if self.definitions is not None:
            lines.append(f"load_definitions = {self.definitions}")
        plugins = "[]."
        if self.management:
            lines += [
                f"management.tcp.ip = {HOST}",
                f"management.tcp.port = {spec.management_port}",
            ]
            plugins = "[rabbitmq_management]."
        (spec.base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (spec.base / "enabled_plugins").write_text(plugins + "\n")
        (spec.base / "rabbitmq-env.conf").write_text("")

    def _env(self, spec: NodeSpec) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(self._epmd_port),
            "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_CONF_ENV_FILE": str(spec.base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": spec.name,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(spec.amqp_port),
            "RABBITMQ_DIST_PORT": str(spec.dist_port),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self._ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self._ctl_port + 10),
            "RABBITMQ_MNESIA_BASE": str(spec.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(spec.base / "log"),
            "RABBITMQ_PID_FILE": str(spec.pid_file),
            "RABBITMQ_CONFIG_FILE": str(spec.base / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(spec.base / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _launch(self, number: int) -> None:
        spec = self._node(number)
        spec.pid_file.unlink(missing_ok=True)
        self._processes[number - 1].start([self._server], env=self._env(spec))

    def _wait_booted(self, number: int, timeout: float) -> None:
        """``rabbitmqctl wait`` on the pid file, while watching the node's own PID.

        ``rabbitmqctl wait`` on a node that crashed only returns at its timeout, so the
        node's death ends the wait at once.
        """
        spec = self._node(number)
        process = self._processes[number - 1]
        waiter = subprocess.Popen(
            [
                self._ctl,
                "-n",
                spec.name,
                "wait",
                "--timeout",
                str(int(timeout)),
                str(spec.pid_file),
            ],
            env=self._env(spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: waiter.poll() is not None or not process.alive(),
                timeout=timeout + 5,
                what=f"RabbitMQ node {spec.name} boot",
                interval=0.2,
            )
        finally:
            if waiter.poll() is None:
                waiter.kill()
            output = waiter.communicate(timeout=10)[0].decode(errors="replace")
        if not process.alive():
            raise ServiceError(
                f"RabbitMQ node {spec.name} exited with {process.exit_code()} at start:\n"
                f"{self.log_tail()}"
            )
        if waiter.returncode != 0:
            raise ServiceError(
                f"RabbitMQ node {spec.name} did not boot: {output.strip()[-1000:]}\n"
                f"{self.log_tail()}"
            )


def _require_script(name: str) -> str:
    path = SCRIPTS / name
    if not path.exists():
        raise ServiceError(
            f"'{path}' is not installed: apt-get -o DPkg::Lock::Timeout=120 install -y {PACKAGE}"
        )
    return str(path)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((HOST, port)) != 0
