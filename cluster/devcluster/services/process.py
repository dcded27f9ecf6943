"""A daemon run as a child process: start, poll for readiness, stop by PID, read its log.

Every private service (MariaDB here; RabbitMQ, ZooKeeper and HAProxy alike) is one
of these. They are stopped by their own PID, never by name, because other people's
services of the same kind may run on the same machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from cluster.errors import TradewindError


class ServiceError(TradewindError):
    """A private service is not installed, did not start, or did not stop."""


def require_binary(name: str, *, package: str) -> str:
    """The full path of ``name``, looked up in ``PATH`` and the sbin directories.

    :raises ServiceError: naming the missing binary and the Debian package to install.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise ServiceError(
            f"'{name}' is not installed: apt-get -o DPkg::Lock::Timeout=120 install -y {package}"
        )
    return found


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed.

    :raises ServiceError: ``what`` did not happen in time.
    """
    deadline = clock() + timeout
    while not condition():
        if clock() >= deadline:
            raise ServiceError(f"{what}: not done within {timeout:g} s")
        time.sleep(interval)


class ServiceProcess:
    """One daemon process, its output appended to ``log_path``.

    :param stop_signal: what :meth:`stop` sends first: SIGTERM for most daemons;
        PostgreSQL's SIGTERM waits for every client to leave, its SIGINT does not.
    """

    def __init__(
        self, name: str, log_path: Path, *, stop_signal: signal.Signals = signal.SIGTERM
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None
        #: the command line and environment of the last start, so the dev cluster can
        #: record them and start the service again from another process
        self.argv: list[str] = []
        self.env: dict[str, str] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        """Start ``argv`` in its own session (signals to the test run do not reach it)."""
        if self.alive():
            raise ServiceError(f"{self.name} is already running as PID {self.pid}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def stop(self, timeout: float = 30.0, *, sig: signal.Signals | None = None) -> None:
        """``sig`` (default: the stop signal), wait up to ``timeout`` seconds, then SIGKILL."""
        if not self.alive():
            return
        assert self._popen is not None
        self._popen.send_signal(sig if sig is not None else self.stop_signal)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL and reap: a crash, as far as the service can tell."""
        if not self.alive():
            return
        assert self._popen is not None
        self._popen.kill()
        self._popen.wait(30)


class Service:
    """Base of the private services: ``with service:`` starts it and stops it by PID."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
