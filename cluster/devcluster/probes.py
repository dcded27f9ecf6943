"""Is a (re)started service ready? One real check per kind of service, polled.

A started process is not a working service: MariaDB replays its redo log, a RabbitMQ
node boots Erlang and rejoins its cluster, gunicorn imports the app. Each service is
asked the question its clients care about (see :class:`~cluster.devcluster.state.Probe`),
and a process that exits meanwhile ends the wait at once with the tail of its log.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
from pathlib import Path

from cluster.devcluster.pids import ProcessId, is_running
from cluster.devcluster.services.process import ServiceError, tail, wait_until
from cluster.devcluster.state import Probe

#: seconds one check may take
CHECK_TIMEOUT = 3.0


def tcp_open(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), CHECK_TIMEOUT):
        return True
    return False


def http_ok(host: str, port: int, path: str) -> bool:
    """Whether ``GET path`` on ``host:port`` answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=CHECK_TIMEOUT)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def zookeeper_mode(host: str, port: int) -> str | None:
    """``leader``, ``follower`` or ``standalone`` from ``srvr``; None when not serving."""
    try:
        with socket.create_connection((host, port), CHECK_TIMEOUT) as client:
            client.sendall(b"srvr")
            chunks = []
            while chunk := client.recv(4096):
                chunks.append(chunk)
    except OSError:
        return None
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def log_contains(path: Path, text: str, *, offset: int) -> bool:
    """Whether ``text`` was written to ``path`` after byte ``offset``."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return text.encode() in handle.read()
    except FileNotFoundError:
        return False


def is_ready(probe: Probe, *, output: Path, offset: int = 0) -> bool:
    """One check of ``probe``; ``output`` and ``offset`` serve ``log`` probes."""
    if probe.kind == "tcp":
        return tcp_open(probe.host, probe.port)
    if probe.kind == "http":
        return http_ok(probe.host, probe.port, probe.path or "/")
    if probe.kind == "zookeeper":
        return zookeeper_mode(probe.host, probe.port) is not None
    if probe.kind == "log":
        return log_contains(output, probe.text, offset=offset)
    return True


def wait_ready(
    name: str,
    probe: Probe,
    process: ProcessId,
    *,
    output: Path,
    offset: int = 0,
    timeout: float = 120.0,
) -> None:
    """Poll ``probe`` until it passes while ``process`` runs.

    :raises ServiceError: the process exited, or the probe did not pass in time; the
        message ends with the tail of the service's output.
    """

    def ready() -> bool:
        if not is_running(process):
            raise ServiceError(f"{name} (PID {process.pid}) exited at start:\n{tail(output, 30)}")
        return is_ready(probe, output=output, offset=offset)

    try:
        wait_until(ready, timeout=timeout, what=f"{name} to be ready", interval=0.2)
    except ServiceError as exc:
        if "exited at start" in str(exc):
            raise
        raise ServiceError(f"{exc}\n{tail(output, 30)}") from exc
