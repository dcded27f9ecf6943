"""The local executor: a pool of long-lived worker processes on this machine.

Workers are forked once when the executor starts (size = ``core.parallelism``); each
runs a task runner (a :class:`~cluster.execution.supervisor.Supervisor`), so a try
costs a fork of a warm process, never a new interpreter. Each worker has its own pipe
and the executor hands work to the most recently idle worker first: in a chain of
tasks the same warm worker (DAG imported, spare task child ready) takes each next
task. Workers report every finished try on a shared result queue; a thread turns the
reports into wake-ups of the scheduler loop.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cluster.executors.base import Dispatch, TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

_FORK = multiprocessing.get_context("fork")
_STOP = None
#: seconds between the checks of an idle worker that its scheduler is still alive
ORPHAN_CHECK_INTERVAL = 1.0


class TaskRunner(Protocol):
    """What a worker process runs each message with."""

    def run(self, message: TaskMessage) -> TaskState | None:
        """Run one try to its end; ``None`` when it ran nothing (claim lost)."""

    def prepare(self) -> None:
        """Get ready for the next message while idle (e.g. fork a spare task child)."""


#: builds the task runner in each worker process
WorkerFactory = Callable[[], TaskRunner]
#: called in the scheduler process for every finished try
OnFinished = Callable[[TaskMessage, TaskState | None], None]


@dataclass
class _Worker:
    process: Any
    inbox: Any  # the sending end of this worker's pipe


class LocalExecutor:
    """Runs tries in ``size`` forked worker processes."""

    def __init__(
        self, *, size: int, worker_factory: WorkerFactory, on_finished: OnFinished
    ) -> None:
        self._size = max(1, size)
        self._worker_factory = worker_factory
        self._on_finished = on_finished
        self._results: Any = _FORK.Queue()
        self._workers: list[_Worker] = []
        self._idle: list[int] = []
        self._running: dict[int, TaskMessage] = {}
        self._backlog: deque[TaskMessage] = deque()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self._workers = [self._spawn(number) for number in range(self._size)]
        self._idle = list(reversed(range(self._size)))
        self._reader = threading.Thread(
            target=self._read_results, name="local-results", daemon=True
        )
        self._reader.start()

    def _spawn(self, number: int) -> _Worker:
        receiver, sender = _FORK.Pipe(duplex=False)
        process = _FORK.Process(
            target=_worker_main,
            args=(self._worker_factory, receiver, self._results, number),
            name=f"tradewind-local-worker-{number}",
            daemon=True,
        )
        process.start()
        receiver.close()
        return _Worker(process, sender)

    def send(self, dispatches: list[Dispatch]) -> None:
        with self._lock:
            for dispatch in dispatches:
                self._assign(dispatch.message)

    def _assign(self, message: TaskMessage) -> None:
        """Give ``message`` to the most recently idle worker, or keep it for the next one."""
        if not self._idle:
            self._backlog.append(message)
            return
        number = self._idle.pop()
        self._running[number] = message
        try:
            self._workers[number].inbox.send(message.to_dict())
        except OSError:
            log.warning("local worker %s is gone; %s stays queued until re-sent", number, message)

    def free_slots(self) -> int | None:
        with self._lock:
            return self._size - len(self._running) - len(self._backlog)

    def stop(self, *, drain: bool) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.inbox.send(_STOP)
        for worker in self._workers:
            worker.process.join(timeout=None if drain else 5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
        self._results.put(_STOP)
        if self._reader is not None:
            self._reader.join(5)

    def _read_results(self) -> None:
        while True:
            item = self._results.get()
            if item is _STOP:
                return
            number, message_data, state = item
            message = TaskMessage.from_dict(message_data)
            with self._lock:
                if self._running.get(number) == message:
                    del self._running[number]
                    self._idle.append(number)
                    if self._backlog:
                        self._assign(self._backlog.popleft())
            try:
                self._on_finished(message, TaskState(state) if state else None)
            except Exception:
                log.exception("finished-callback failed")

    def reap_dead_workers(self) -> int:
        """Replace workers that died (``kill -9``); returns how many.

        A try the dead worker had claimed becomes a zombie; one it had not claimed yet
        is handed to another worker at once instead of waiting for the queued timeout.
        """
        replaced = 0
        with self._lock:
            for number, worker in enumerate(self._workers):
                if worker.process.is_alive():
                    continue
                worker.process.join(0)
                self._workers[number] = self._spawn(number)
                lost = self._running.pop(number, None)
                if number not in self._idle:
                    self._idle.append(number)
                if lost is not None:
                    # sending again is safe: if the dead worker had claimed the try, the
                    # claim fails (it is running, and will be reaped as a zombie)
                    self._assign(lost)
                replaced += 1
        return replaced


def _worker_main(factory: WorkerFactory, inbox: Any, results: Any, number: int) -> None:
    # the scheduler coordinates shutdown (sentinel, then drain): a signal to the whole
    # process group must not kill running tries
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    scheduler = os.getppid()
    runner = factory()
    runner.prepare()
    while True:
        try:
            if not inbox.poll(ORPHAN_CHECK_INTERVAL):
                if os.getppid() != scheduler:
                    return  # the scheduler died (kill -9): nobody will send work or read results
                continue
            item = inbox.recv()
        except (EOFError, OSError):
            return
        if item is _STOP:
            return
        state: TaskState | None = None
        try:
            state = runner.run(TaskMessage.from_dict(item))
        except Exception:
            log.exception("worker failed to run %s", item)
        with contextlib.suppress(Exception):
            results.put((number, item, str(state) if state else None))
        runner.prepare()
