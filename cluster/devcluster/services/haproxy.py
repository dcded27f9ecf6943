"""A private HAProxy in front of webservers, for tests, benchmarks and the dev cluster.

It runs the config ``tradewind haproxy render`` makes (the same code path as
production) with its own frontend and stats ports, its own admin socket and log under
one directory, in the foreground as a child process stopped by its PID. The admin
socket answers ``show stat``, so tests assert what HAProxy thinks of each server
(``UP``/``DOWN``, the last check's result, requests served) rather than guessing from
timing.
"""

from __future__ import annotations

import csv
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path

from cluster.deploy.haproxy import BACKEND, HAProxyOptions, Webserver, render_config
from cluster.deploy.haproxy_validate import validate_file
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)
from cluster.errors import ConfigError

PACKAGE = "haproxy"
DEFAULT_HOST = "127.0.0.1"
#: a Unix socket path longer than this cannot be bound (sun_path is 108 bytes)
MAX_SOCKET_PATH = 100
#: seconds one admin-socket command may take
SOCKET_TIMEOUT = 10.0


class HAProxy(Service):
    """One ``haproxy`` balancing ``servers`` under ``base_dir``.

    :param base_dir: created if missing; holds ``haproxy.cfg``, ``admin.sock`` and
        ``haproxy.log`` (HAProxy's own messages and one line per request).
    :param stats_password: of the stats page; a random one when omitted.
    :param port, stats_port: free ports below the ephemeral range when omitted.
    """

    def __init__(
        self,
        base_dir: Path,
        servers: Sequence[Webserver],
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        stats_port: int | None = None,
        stats_password: str | None = None,
        backend: str = BACKEND,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.servers = list(servers)
        self.host = host
        self.port = port or free_port(host)
        self.stats_port = stats_port or free_port(host)
        self.stats_password = stats_password or secrets.token_urlsafe(16)
        self.backend = backend
        self.config_file = self.base_dir / "haproxy.cfg"
        self.admin_socket = self.base_dir / "admin.sock"
        self.log_file = self.base_dir / "haproxy.log"
        if len(str(self.admin_socket)) > MAX_SOCKET_PATH:
            raise ServiceError(
                f"{self.admin_socket} is too long for a Unix socket: use a shorter base_dir"
            )
        self._process = ServiceProcess("haproxy", self.log_file)
        self._haproxy = require_binary("haproxy", package=PACKAGE)

    # --- addresses --------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where clients send requests: the frontend."""
        return f"http://{self.host}:{self.port}"

    @property
    def stats_url(self) -> str:
        return f"http://{self.host}:{self.stats_port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def process(self) -> ServiceProcess:
        """The ``haproxy`` process (its command line, for the dev cluster's records)."""
        return self._process

    # --- life cycle -------------------------------------------------------------

    def config_text(self) -> str:
        """The config this instance runs: ``render`` output with private addresses."""
        options = HAProxyOptions(
            stats_password=self.stats_password,
            bind=f"{self.host}:{self.port}",
            stats_bind=f"{self.host}:{self.stats_port}",
            stats_socket=str(self.admin_socket),
            backend=self.backend,
        )
        return render_config(self.servers, options)

    def start(self, timeout: float = 30.0) -> None:
        """Write and validate the config, start HAProxy, wait until its socket answers.

        :raises ServiceError: HAProxy refused the config, exited, or did not answer in
            time; the message ends with the tail of its log.
        """
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config_text())
        try:
            validate_file(self.config_file, haproxy=self._haproxy)
        except ConfigError as exc:
            raise ServiceError(str(exc)) from exc
        self.admin_socket.unlink(missing_ok=True)
        self._process.start([self._haproxy, "-db", "-f", str(self.config_file)])
        try:
            wait_until(self._ready_or_dead, timeout=timeout, what="HAProxy start")
        except ServiceError as exc:
            self._process.kill()
            raise ServiceError(f"{exc}\n{self.log_tail()}") from exc
        if not self._process.alive():
            code = self._process.exit_code()
            raise ServiceError(f"haproxy exited with {code} at start:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop at once (SIGTERM by PID), SIGKILL after ``timeout`` seconds."""
        self._process.stop(timeout)

    def alive(self) -> bool:
        return self._process.alive()

    def log_tail(self, lines: int = 40) -> str:
        """The end of HAProxy's log, for failure reports."""
        return f"--- {self.log_file} ---\n{tail(self.log_file, lines)}"

    # --- the admin socket -------------------------------------------------------

    def command(self, line: str) -> str:
        """Send one command to the admin socket and return HAProxy's whole answer.

        :raises ServiceError: the socket cannot be reached.
        """
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(SOCKET_TIMEOUT)
                client.connect(str(self.admin_socket))
                client.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := client.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ServiceError(f"HAProxy admin socket {self.admin_socket}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def show_stat(self) -> list[dict[str, str]]:
        """``show stat`` as one dict per proxy and server (``pxname``, ``svname``,
        ``status``, ``check_status``, ``check_code``, ``stot``, ``hrsp_2xx``, ...)."""
        text = self.command("show stat").lstrip("# ")
        return [row for row in csv.DictReader(text.splitlines()) if row.get("pxname")]

    def server_stat(self, name: str) -> dict[str, str]:
        """The ``show stat`` row of server ``name`` in this instance's backend.

        :raises ServiceError: no such server.
        """
        for row in self.show_stat():
            if row["pxname"] == self.backend and row["svname"] == name:
                return row
        raise ServiceError(f"HAProxy has no server {name!r} in backend {self.backend!r}")

    def server_status(self, name: str) -> str:
        """``UP``, ``DOWN``, or a transition such as ``UP 1/2`` (going down)."""
        return self.server_stat(name)["status"]

    def server_sessions(self) -> dict[str, int]:
        """Requests each server of the backend was sent so far (``stot``), by name."""
        return {
            row["svname"]: int(row["stot"] or 0)
            for row in self.show_stat()
            if row["pxname"] == self.backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_for_status(self, name: str, status: str, *, timeout: float = 30.0) -> dict[str, str]:
        """Poll until server ``name`` is exactly ``status`` (``UP``, ``DOWN``); return its row."""
        return self.wait_for_server(name, timeout=timeout, status=status)

    def wait_for_server(self, name: str, *, timeout: float = 30.0, **fields: str) -> dict[str, str]:
        """Poll until the ``show stat`` row of server ``name`` has every value of
        ``fields`` (e.g. ``status="DOWN", check_status="L7STS", check_code="503"``).

        ``check_status`` is compared without the ``* `` HAProxy puts in front of it
        while the next check runs (it also blanks ``check_code`` meanwhile).

        :raises ServiceError: not in time; the message has the last row seen.
        """
        last: dict[str, str] = {}

        def reached() -> bool:
            nonlocal last
            last = self.server_stat(name)
            last["check_status"] = last.get("check_status", "").removeprefix("* ")
            return all(last.get(key) == value for key, value in fields.items())

        try:
            wait_until(reached, timeout=timeout, what=f"HAProxy to see {name} with {fields}")
        except ServiceError as exc:
            keys = ("status", "check_status", "check_code", "check_desc", *fields)
            seen = {key: last.get(key) for key in dict.fromkeys(keys)}
            raise ServiceError(f"{exc}; last seen {seen}\n{self.log_tail(15)}") from exc
        return last

    # --- internals --------------------------------------------------------------

    def _ready_or_dead(self) -> bool:
        if not self._process.alive():
            return True
        try:
            return "Name: HAProxy" in self.command("show info")
        except ServiceError:
            return False
