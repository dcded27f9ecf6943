"""One process of the local pool: it runs the claimed tries its executor hands it.

The executor's process claims and records (see :mod:`cluster.executors.local`); the
worker runs user code and reports. If the scheduler dies while a try runs, the worker
records that try itself and leaves.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cluster.messages import TaskMessage
from cluster.sdk.runtime import watch_process_groups
from cluster.states import TaskState

log = logging.getLogger(__name__)

_STOP = None
#: seconds between the checks of an idle worker that its scheduler is still alive
ORPHAN_CHECK_INTERVAL = 1.0


class TryRunner(Protocol):
    """What a local worker process runs each claimed try with."""

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        """Run one claimed try; return its picklable report (for :meth:`TryBook.record`)."""

    def record_alone(self, report: Any) -> TaskState | None:
        """Record a report without the executor (it died while the try ran)."""


class TryBook(Protocol):
    """The metastore side of every try, in the executor's process."""

    heartbeat_interval: float

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        """Claim ``(message, worker pid)`` pairs; return the claimed tries won."""

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        """Record ended tries; ``None`` for one that lost its claim."""

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        """Record a try whose worker died before reporting."""

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        """Heartbeat running tries; ``False`` for one that was cleared or marked meanwhile."""

    def say(self, claimed: Any, line: str) -> None:
        """Add a line to the try's log."""


class WorkerPool(Protocol):
    """Builds the book (once, in the executor's process) and a runner (in each worker)."""

    def book(self) -> TryBook: ...

    def runner(self) -> TryRunner: ...


def worker_main(pool: WorkerPool, conn: Any) -> None:
    # the scheduler coordinates shutdown (sentinel, then drain): a signal to the whole
    # process group must not kill running tries. A handler that does nothing, not
    # SIG_IGN: an ignored signal stays ignored across exec, and a Bash task's process
    # group would then shrug off the SIGTERM that stops it
    signal.signal(signal.SIGINT, _disregard)
    signal.signal(signal.SIGTERM, _disregard)
    scheduler = os.getppid()
    runner = pool.runner()
    watch_process_groups(lambda pgid, running: _tell(conn, ("group", (pgid, running))))
    # what the worker inherited lives as long as it does: the cyclic collector need not
    # walk it again each time a DAG import allocates thousands of objects
    gc.freeze()
    while True:
        try:
            if not conn.poll(ORPHAN_CHECK_INTERVAL):
                if os.getppid() != scheduler:
                    return  # the scheduler died (kill -9): nobody will send work
                continue
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is _STOP:
            return
        message, claimed = item
        report = runner.run(message, claimed, lambda timeout: _announce(conn, timeout))
        if os.getppid() != scheduler:
            _record_alone(runner, report)
            return
        try:
            conn.send(("finished", report))
        except OSError:
            _record_alone(runner, report)
            return


def _disregard(signum: int, frame: object) -> None:
    """A signal handler that does nothing (see :func:`_worker_main`)."""


def _announce(conn: Any, timeout: float | None) -> None:
    """Tell the executor the try starts: it has its DAG (the executor measures imports)
    and will be killed past ``timeout``."""
    _tell(conn, ("started", timeout))


def _tell(conn: Any, note: tuple[str, Any]) -> None:
    """Send the executor a note about the running try; a gone executor is no error here."""
    with contextlib.suppress(OSError):
        conn.send(note)


def _record_alone(runner: TryRunner, report: Any) -> None:
    try:
        runner.record_alone(report)
    except Exception:
        log.exception("could not record the last try after the scheduler died")
