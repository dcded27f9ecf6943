"""Serving metrics: an HTTP endpoint per process, and multiprocess mode for forking ones.

A scheduler is one process: its recorder's registry is served as it is. A worker's
tries run in Celery's pool processes and a webserver's requests in gunicorn's
workers, so their numbers live in other processes than the one serving them. For
those, :func:`enable_multiprocess` (called once in the parent, before it forks)
switches prometheus_client to its multiprocess mode: every process writes its values
to memory-mapped files in one directory, and :func:`exposition_registry` reads them
all at scrape time. The directory is per parent process
(``metrics.multiproc_dir/<kind>-<pid>``) and wiped when it starts, as
prometheus_client requires.

What can go wrong: prometheus_client decides the mode from a module attribute that
it sets at import from ``PROMETHEUS_MULTIPROC_DIR``; we set both explicitly (settings
are read after the import), which must happen before the first metric is created.
Gauges of a process that died without :func:`mark_process_dead` (a SIGKILLed pool
process) linger until the parent restarts.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

from cluster.config import MetricsSettings
from cluster.errors import ConfigError

#: the variable prometheus_client reads for the directory of its multiprocess files
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_state: dict[str, Path] = {}


def process_directory(settings: MetricsSettings, kind: str, pid: int | None = None) -> Path:
    """``metrics.multiproc_dir/<kind>-<pid>``: one directory per forking parent."""
    return settings.multiproc_dir / f"{kind}-{os.getpid() if pid is None else pid}"


def enable_multiprocess(directory: Path) -> Path:
    """Wipe ``directory`` and switch this process and its future children to it.

    Call it in the parent before it forks and before any metric is created.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()
    _state["directory"] = directory
    return directory


def disable_multiprocess() -> None:
    """Back to single-process values (tests; a process that enabled it by mistake)."""
    values.ValueClass = values.MutexValue
    os.environ.pop(MULTIPROC_ENV, None)
    _state.pop("directory", None)


def multiprocess_directory() -> Path | None:
    """The directory of this process's multiprocess mode, ``None`` in single-process mode."""
    return _state.get("directory")


def exposition_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else ``own``."""
    directory = multiprocess_directory()
    if directory is None:
        return own
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return registry


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of a child that exited (gunicorn ``child_exit``, pool shutdown)."""
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.mark_process_dead(pid, path=str(directory))


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsServer:
    """Serves a registry at ``http://host:port/metrics`` from a daemon thread.

    :param port: ``0`` picks a free port (tests); :attr:`port` tells which.
    :raises ConfigError: when the address cannot be bound (in use, or not this host's).
    """

    def __init__(self, registry: CollectorRegistry, *, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MetricsServer:
        try:
            self._server, self._thread = start_http_server(
                self._requested_port, addr=self._host, registry=self._registry
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {self._host}:{self._requested_port}: {exc.strerror}"
                " (set metrics.host and the metrics port, or metrics.enabled = false)"
            ) from exc
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/metrics"

    def close_inherited_socket(self) -> None:
        """Close this process's copy of the listening socket (in a forked child)."""
        if self._server is not None:
            self._server.socket.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
