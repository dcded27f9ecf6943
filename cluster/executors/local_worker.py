"""One process of the local pool: it runs the claimed tries its executor hands it.

The executor's process claims and records (see :mod:`cluster.executors.local`); the
worker runs user code and reports. If the scheduler dies while a try runs, the worker
records that try itself and leaves. :func:`worker_main` is the process's side;
:class:`WorkerProcess` is the executor's handle on it (fork, pipe, signals, exit).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cluster.executors.cold_starts import Version
from cluster.executors.local_groups import GroupSlots
from cluster.executors.local_pipe import (
    Finished,
    FromWorker,
    GroupChanged,
    Run,
    Started,
    Stop,
    ToWorker,
)
from cluster.messages import TaskMessage
from cluster.sdk.runtime import watch_process_groups
from cluster.states import TaskState

log = logging.getLogger(__name__)

_FORK = multiprocessing.get_context("fork")
#: how the executor names its pool processes (``ps`` shows it; a cold shutdown finds them by it)
WORKER_NAME_PREFIX = "tradewind-local-worker-"
#: seconds a pool process gets to leave after :class:`Stop` (and again after SIGKILL)
LEAVE_TIMEOUT = 5.0
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


def worker_main(pool: WorkerPool, conn: Any, groups: GroupSlots) -> None:
    # the scheduler coordinates shutdown (sentinel, then drain): a signal to the whole
    # process group must not kill running tries. A handler that does nothing, not
    # SIG_IGN: an ignored signal stays ignored across exec, and a Bash task's process
    # group would then shrug off the SIGTERM that stops it
    signal.signal(signal.SIGINT, _disregard)
    signal.signal(signal.SIGTERM, _disregard)
    scheduler = os.getppid()
    runner = pool.runner()
    watch_process_groups(_group_watcher(conn, groups))
    # what the worker inherited lives as long as it does: the cyclic collector need not
    # walk it again each time a DAG import allocates thousands of objects
    gc.freeze()
    while True:
        try:
            if not conn.poll(ORPHAN_CHECK_INTERVAL):
                if os.getppid() != scheduler:
                    return  # the scheduler died (kill -9): nobody will send work
                continue
            order: ToWorker = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(order, Stop):
            return
        report = runner.run(order.message, order.claimed, _announcer(conn, cold=order.cold))
        groups.clear()
        if os.getppid() != scheduler:
            _record_alone(runner, report)
            return
        try:
            conn.send(Finished(report))
        except OSError:
            _record_alone(runner, report)
            return


def _disregard(signum: int, frame: object) -> None:
    """A signal handler that does nothing (see :func:`worker_main`)."""


def _announcer(conn: Any, *, cold: bool) -> Callable[[float | None], None]:
    """What the runner calls when the task starts: a :class:`Started` note when the
    executor needs one (an import to measure, a timeout to enforce)."""

    def announce(timeout: float | None) -> None:
        if cold or timeout is not None:
            _tell(conn, Started(timeout))

    return announce


def _group_watcher(conn: Any, groups: GroupSlots) -> Callable[[int, bool], None]:
    """Where the task's process groups go: the shared slots, the pipe when they are full."""

    def changed(pgid: int, running: bool) -> None:
        if not (groups.add(pgid) if running else groups.discard(pgid)):
            _tell(conn, GroupChanged(pgid, running))

    return changed


def _tell(conn: Any, note: FromWorker) -> None:
    """Send the executor a note about the running try; a gone executor is no error here."""
    with contextlib.suppress(OSError):
        conn.send(note)


def _record_alone(runner: TryRunner, report: Any) -> None:
    try:
        runner.record_alone(report)
    except Exception:
        log.exception("could not record the last try after the scheduler died")


class WorkerProcess:
    """The executor's handle on one pool process: the process, this end of its pipe,
    and the DAG versions it has imported."""

    def __init__(self, pool: WorkerPool, number: int) -> None:
        mine, theirs = _FORK.Pipe(duplex=True)
        #: the process groups its running try started
        self.groups = GroupSlots()
        self.process = _FORK.Process(
            target=worker_main,
            args=(pool, theirs, self.groups),
            name=f"{WORKER_NAME_PREFIX}{number}",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.conn = mine
        #: DAG versions this process has imported
        self.warm: set[Version] = set()
        #: died and handled; replaced by
        #: :meth:`~cluster.executors.local.LocalExecutor.reap_dead_workers`
        self.dead = False

    @property
    def pid(self) -> int:
        assert self.process.pid is not None  # started in __init__
        return self.process.pid

    def run(self, message: TaskMessage, claimed: Any, *, cold: bool = True) -> None:
        """Hand over a claimed try (``cold``: this process lacks its DAG version); a
        process that is gone shows up as dead instead."""
        with contextlib.suppress(OSError):
            self.conn.send(Run(message, claimed, cold))

    def notes(self) -> list[FromWorker]:
        """What the process sent since the last call (all of it, even once it died)."""
        notes: list[FromWorker] = []
        with contextlib.suppress(EOFError, OSError):
            while self.conn.poll():
                notes.append(self.conn.recv())
        return notes

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process, unless it is gone already."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def exit_reason(self) -> str:
        """Why the process ended, for the log of the try it held."""
        exitcode = self.process.exitcode
        if exitcode is not None and exitcode < 0:
            return f"Task process was killed by signal {signal.Signals(-exitcode).name}"
        return f"Task process exited with code {exitcode} before reporting"

    def send_stop(self) -> None:
        """Ask the process to leave once its try is over (see :meth:`join_or_kill`)."""
        with contextlib.suppress(OSError):
            self.conn.send(Stop())

    def join_or_kill(self) -> None:
        """Wait for the process to leave; kill it if it does not in time."""
        self.process.join(LEAVE_TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(LEAVE_TIMEOUT)


def kill_process_groups(groups: set[int]) -> None:
    """SIGKILL the process groups a dead pool process's task started, if any is left:
    they would run on beside the retry."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
