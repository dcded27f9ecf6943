"""The Celery worker's runner: Celery delivers on threads, a local process pool runs the tries.

The worker consumes with Celery's *threads* pool and each thread only hands its message to a :class:`~cluster.executors.local.LocalExecutor` that
lives in the worker's main process, then waits for the try's end. That executor runs
tries in long-lived processes without a fork (see :mod:`cluster.execution.isolation`)
and batches the metastore work of every try of this worker (see
:class:`~cluster.execution.pool.PoolBook`): claims of the messages that arrived
together in one commit, all heartbeats in one transaction, the tries that ended
together recorded in one transaction.

The delivery guarantees of :mod:`cluster.executors.celery_app` hold:

- late ack: a thread returns (and Celery acknowledges) only once the try is recorded,
  or once the claim said this message runs nothing;
- a message delivered twice runs once: the claim decides, and a copy that arrives
  while this worker already runs the same try is refused here without a claim;
- a message taken while the metastore cannot be reached is not acknowledged: its
  thread raises :class:`~cluster.errors.MetastoreError` and the message goes back;
- ``kill -9`` of the worker: its pool processes die with it (parent-death signal), so
  the try stops heartbeating, becomes a zombie and is retried elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import Reject

from cluster.errors import MetastoreError, TradewindError
from cluster.executors.base import Dispatch
from cluster.executors.local import STOP_SIGNAL, LocalExecutor, OnFinished
from cluster.executors.local_worker import WORKER_NAME_PREFIX, TryBook, TryRunner, WorkerPool
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: seconds between checks for pool processes that died and must be replaced
REAP_INTERVAL = 0.5

#: builds the executor of the pool, given the callback of finished tries
ExecutorFactory = Callable[[OnFinished], LocalExecutor]
#: called after a try's end state was recorded (e.g. to publish a "finished" event)
OnRecorded = Callable[[TaskMessage, TaskState], object]


class OutageBook:
    """A :class:`TryBook` that turns a claim the metastore refused into "send it back".

    The local executor keeps a message whose claim failed and tries again; a Celery
    worker must instead give the message back to the broker (another worker, or this
    one later, claims it once the metastore answers). So a failed claim claims
    nothing, and the messages it held are remembered as :meth:`unreachable`.
    """

    def __init__(self, book: TryBook) -> None:
        self._book = book
        self._lock = threading.Lock()
        self._unreachable: set[TaskMessage] = set()
        self.heartbeat_interval = book.heartbeat_interval

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        try:
            return self._book.claim(assignments)
        except TradewindError as exc:
            log.warning("could not claim %d tries; they go back: %s", len(assignments), exc)
            with self._lock:
                self._unreachable.update(message for message, _ in assignments)
            return {}

    def unreachable(self, message: TaskMessage) -> bool:
        """Whether ``message`` was not claimed because the metastore was away (asked once)."""
        with self._lock:
            if message in self._unreachable:
                self._unreachable.discard(message)
                return True
            return False

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        return self._book.record(reports)

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        return self._book.record_lost(claimed, reason, pid=pid)

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        return self._book.heartbeat(tries)

    def say(self, claimed: Any, line: str) -> None:
        self._book.say(claimed, line)


class OutagePool:
    """The :class:`WorkerPool` of ``pool`` with its book wrapped in an :class:`OutageBook`."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self.book_built: OutageBook | None = None

    def book(self) -> OutageBook:
        self.book_built = OutageBook(self._pool.book())
        return self.book_built

    def runner(self) -> TryRunner:
        return self._pool.runner()


@dataclass
class _Waiter:
    """One Celery thread waiting for its try's end."""

    done: threading.Event = field(default_factory=threading.Event)
    state: TaskState | None = None
    #: set instead of ``state`` when the message must go back to the broker
    error: BaseException | None = None


class PooledRunner:
    """The Celery worker's task runner (see the module docstring); thread-safe.

    :param executor: builds the pool's executor around this runner's callback.
    :param pool: the executor's worker pool, to learn which claims met an outage.
    :param on_recorded: called (on the executor's pump thread) after each recorded try.
    """

    def __init__(
        self,
        executor: ExecutorFactory,
        pool: OutagePool,
        *,
        on_recorded: OnRecorded | None = None,
        reap_interval: float = REAP_INTERVAL,
    ) -> None:
        self._executor = executor(self._finished)
        self._pool = pool
        self._on_recorded = on_recorded
        self._reap_interval = reap_interval
        self._lock = threading.Lock()
        self._waiting: dict[TaskMessage, _Waiter] = {}
        self._started = False
        self._closed = False
        self._cut = False
        self._stopped = threading.Event()
        self._keeper: threading.Thread | None = None

    def prepare(self) -> None:
        """Start the pool once: fork its processes (call from the thread that lives longest).

        The pool processes die with the thread that forked them (parent-death signal),
        so the first call must come from the worker's main thread; replacements are
        forked by the keeper thread, which lives until :meth:`stop`.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
        self._executor.start()
        self._keeper = threading.Thread(target=self._keep, name="pool-keeper", daemon=True)
        self._keeper.start()

    def run(self, message: TaskMessage) -> TaskState | None:
        """Run one message's try in the pool and wait for its end; ``None`` if it ran nothing.

        :raises MetastoreError: the claim met a metastore outage: give the message back.
        :raises Reject: (requeue) the worker stops at once and the try was cut.
        """
        waiter = _Waiter()
        with self._lock:
            if self._closed:
                raise Reject("the worker is stopping", requeue=True)
            if message in self._waiting:
                log.info("not claimed (a copy of this message runs here already): %s", message)
                return None
            self._waiting[message] = waiter
        self._executor.send([Dispatch(message)])
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        return waiter.state

    def cut(self) -> None:
        """The worker stops at once: release every waiting thread, its message going back.

        Called in a signal handler, so it only sets flags and events and leaves the
        rest to a thread of its own: the pool processes are told to stop their tries
        (a Bash task's process group is killed) and the pool is stopped. The cut tries
        are never recorded: they end as zombies and run again elsewhere.
        """
        if self._cut:
            return
        self._closed = True
        self._cut = True
        for waiter in list(self._waiting.values()):
            waiter.error = Reject("the worker stopped at once; the try was cut", requeue=True)
            waiter.done.set()
        # not a daemon: the interpreter waits for it before it exits
        threading.Thread(target=self.stop, name="pool-cut").start()

    def stop(self) -> None:
        """Stop the pool: drain it (a warm shutdown), or end its tries after :meth:`cut`."""
        with self._lock:
            self._closed = True
            started, self._started = self._started, False
        if not started:
            return
        if self._cut:
            self._executor.abandon_running()
            stop_pool_processes()
        self._executor.stop(drain=not self._cut)
        self._stopped.set()
        if self._keeper is not None:
            self._keeper.join(5)

    # --- internals ------------------------------------------------------------------

    def _finished(self, message: TaskMessage, state: TaskState | None) -> None:
        """The executor's callback, on its pump thread: tell the waiting thread."""
        if state is not None and self._on_recorded is not None:
            try:
                self._on_recorded(message, state)
            except Exception:
                log.warning("on_recorded hook failed for %s", message, exc_info=True)
        book = self._pool.book_built
        with self._lock:
            waiter = self._waiting.pop(message, None)
        if waiter is None:
            return
        if state is None and book is not None and book.unreachable(message):
            waiter.error = MetastoreError(f"the metastore was unreachable to claim {message}")
        waiter.state = state
        waiter.done.set()

    def _keep(self) -> None:
        """Replace pool processes that died, until :meth:`stop`."""
        while not self._stopped.wait(self._reap_interval):
            try:
                self._executor.reap_dead_workers()
            except Exception:
                log.exception("could not replace a dead pool process; trying again")


def stop_pool_processes() -> None:
    """Send :data:`~cluster.executors.local.STOP_SIGNAL` to this process's pool processes.

    A process running a try calls its task's ``on_kill`` and exits; an idle one exits.
    """
    for child in multiprocessing.active_children():
        if child.name.startswith(WORKER_NAME_PREFIX) and child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, STOP_SIGNAL)
