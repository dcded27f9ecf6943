"""The local executor: a pool of long-lived worker processes on this machine.

Workers are forked once when the executor starts (size = ``core.parallelism``) and
each runs a :class:`~cluster.execution.supervisor.Supervisor`; a try costs a fork of a
warm process, never a new interpreter. Each worker reports every finished try on a
result queue; a thread turns those reports into wake-ups of the scheduler loop.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from cluster.executors.base import Dispatch, TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

_FORK = multiprocessing.get_context("fork")
_STOP = None
#: seconds between the checks of an idle worker that its scheduler is still alive
ORPHAN_CHECK_INTERVAL = 1.0

#: builds the function a worker process calls for each message (runs in the worker)
WorkerFactory = Callable[[], Callable[[TaskMessage], TaskState | None]]
#: called in the scheduler process for every finished try
OnFinished = Callable[[TaskMessage, TaskState | None], None]


class LocalExecutor:
    """Runs tries in ``size`` forked worker processes."""

    def __init__(
        self, *, size: int, worker_factory: WorkerFactory, on_finished: OnFinished
    ) -> None:
        self._size = max(1, size)
        self._worker_factory = worker_factory
        self._on_finished = on_finished
        self._tasks: Any = _FORK.Queue()
        self._results: Any = _FORK.Queue()
        self._workers: list[Any] = []
        self._in_flight = 0
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        for number in range(self._size):
            process = _FORK.Process(
                target=_worker_main,
                args=(self._worker_factory, self._tasks, self._results),
                name=f"tradewind-local-worker-{number}",
                daemon=True,
            )
            process.start()
            self._workers.append(process)
        self._reader = threading.Thread(
            target=self._read_results, name="local-results", daemon=True
        )
        self._reader.start()

    def send(self, dispatches: list[Dispatch]) -> None:
        with self._lock:
            self._in_flight += len(dispatches)
        for dispatch in dispatches:
            self._tasks.put(dispatch.message.to_dict())

    def free_slots(self) -> int | None:
        with self._lock:
            return self._size - self._in_flight

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._workers if p.pid is not None]

    def stop(self, *, drain: bool) -> None:
        for _ in self._workers:
            self._tasks.put(_STOP)
        for process in self._workers:
            process.join(timeout=None if drain else 5)
            if process.is_alive():
                process.kill()
                process.join(5)
        self._results.put(_STOP)
        if self._reader is not None:
            self._reader.join(5)

    def _read_results(self) -> None:
        while True:
            item = self._results.get()
            if item is _STOP:
                return
            message_data, state = item
            with self._lock:
                self._in_flight = max(0, self._in_flight - 1)
            try:
                self._on_finished(
                    TaskMessage.from_dict(message_data), TaskState(state) if state else None
                )
            except Exception:
                log.exception("finished-callback failed")

    def reap_dead_workers(self) -> int:
        """Replace workers that died (``kill -9``); their tries become zombies. Returns how many."""
        replaced = 0
        for index, process in enumerate(self._workers):
            if process.is_alive():
                continue
            process.join(0)
            fresh = _FORK.Process(
                target=_worker_main,
                args=(self._worker_factory, self._tasks, self._results),
                name=process.name,
                daemon=True,
            )
            fresh.start()
            self._workers[index] = fresh
            replaced += 1
        if replaced:
            # a dead worker's message never reports back: free its slot
            with self._lock:
                self._in_flight = max(0, self._in_flight - replaced)
        return replaced


def _worker_main(factory: WorkerFactory, tasks: Any, results: Any) -> None:
    scheduler = os.getppid()
    run = factory()
    while True:
        try:
            item = tasks.get(timeout=ORPHAN_CHECK_INTERVAL)
        except queue.Empty:
            if os.getppid() != scheduler:
                return  # the scheduler died (kill -9): nobody will send work or read results
            continue
        except (EOFError, OSError):
            return
        if item is _STOP:
            return
        message = TaskMessage.from_dict(item)
        state: TaskState | None = None
        try:
            state = run(message)
        except Exception:
            log.exception("worker failed to run %s", message)
        with contextlib.suppress(Exception):
            results.put((item, str(state) if state else None))
