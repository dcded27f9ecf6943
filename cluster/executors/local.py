"""The local executor: a pool of long-lived worker processes on this machine.

Workers are forked once when the executor starts (size = ``core.parallelism``) and
run each try in their own process: no new interpreter, no fork per try. The
executor's process keeps the metastore side of every try (the pool's *book*): one
thread, the pump, claims the tries it hands out several at a time, heartbeats all
running tries at once, and records the tries that ended in one transaction. So a
short task costs a fraction of a transaction instead of three.

Each worker has its own pipe; the most recently idle worker gets the next try, so in
a chain the same warm worker takes each next task. The pump also watches the workers:
one that dies (``kill -9``, a task's segfault or ``os._exit``) is replaced and its try
recorded as failed with the reason, and the process groups its task started (a Bash
command's session, which its death would orphan) are killed; one whose task overran its
``execution_timeout`` beyond a grace period, or whose try was cleared or marked
meanwhile, is stopped.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from cluster.errors import TradewindError
from cluster.executors.base import Dispatch
from cluster.executors.cold_starts import COLD_STARTS, ColdStarts, Version
from cluster.executors.local_worker import TryBook, WorkerPool, worker_main
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

_FORK = multiprocessing.get_context("fork")
_STOP = None


#: seconds a task gets past its timeout (or after a stop request) before SIGKILL
KILL_GRACE = 5.0
#: the signal that asks a worker to stop its try (see cluster.execution.isolation)
STOP_SIGNAL = signal.SIGUSR1
#: seconds the pump waits before trying a failed claim again
RETRY_DELAY = 1.0


#: called in the scheduler process for every finished try
OnFinished = Callable[[TaskMessage, TaskState | None], None]


@dataclass
class _Worker:
    process: Any
    conn: Any  # this end of the worker's duplex pipe
    #: DAG versions ``(dag_id, fingerprint)`` this worker has imported
    warm: set[tuple[str, str]] = field(default_factory=set)
    #: died and handled; replaced by :meth:`LocalExecutor.reap_dead_workers`
    dead: bool = False


@dataclass
class _Try:
    """The try a worker holds: claimed, and what the pump must still do about it."""

    message: TaskMessage
    #: the worker imports the DAG version first
    cold: bool = False
    claimed: Any = None
    timeout: float | None = None
    kill_at: float | None = None
    #: why the pump stopped the worker (timeout), or ``None``
    killed: str | None = None
    #: the try was cleared or marked meanwhile: record nothing
    abandoned: bool = False
    #: when the pump handed it to its worker, and when the worker said it has the DAG
    #: and starts the task (monotonic)
    handed_at: float = 0.0
    started_at: float | None = None
    #: process groups the task started that still run (a Bash command's session)
    groups: set[int] = field(default_factory=set)


class LocalExecutor:
    """Runs tries in ``size`` forked worker processes."""

    def __init__(self, *, size: int, worker_factory: WorkerPool, on_finished: OnFinished) -> None:
        self._size = max(1, size)
        self._pool = worker_factory
        self._on_finished = on_finished
        self._book: TryBook | None = None
        self._workers: list[_Worker] = []
        self._idle: list[int] = []
        self._running: dict[int, _Try] = {}
        #: tries whose worker reported, not yet recorded
        self._unrecorded = 0
        self._backlog: deque[TaskMessage] = deque()
        self._lock = threading.Condition()
        #: held around the pump's metastore work and around a fork: a child forked
        #: while another thread is inside a SQLite transaction inherits SQLite's
        #: in-process lock table and finds the database locked for good
        self._fork_guard = threading.Lock()
        self._wake_r, self._wake_w = -1, -1
        self._pump: threading.Thread | None = None
        self._stopping = False
        self._accepting = True
        self._next_beat = 0.0
        self._retry_at = 0.0
        self._cold = ColdStarts()

    # --- the executor contract ------------------------------------------------------

    def start(self) -> None:
        self._workers = [self._spawn(number) for number in range(self._size)]
        self._idle = list(reversed(range(self._size)))
        # built after the fork: the workers never inherit its connections
        self._book = self._pool.book()
        self._next_beat = time.monotonic() + self._book.heartbeat_interval
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._pump = threading.Thread(target=self._pump_forever, name="local-pump", daemon=True)
        self._pump.start()

    def send(self, dispatches: list[Dispatch]) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._backlog.extend(d.message for d in dispatches)
            now = time.monotonic()
            for dispatch in dispatches:
                self._cold.waiting(_version(dispatch.message), now)
        self._poke()

    def free_slots(self) -> int | None:
        with self._lock:
            return self._size - len(self._running) - len(self._backlog)

    def stop(self, *, drain: bool) -> None:
        """Stop taking work; with ``drain`` wait for running tries to end and be recorded."""
        with self._lock:
            self._accepting = False
            self._backlog.clear()  # still queued in the metastore: re-sent by a next scheduler
            self._cold.forget_waiting()
            if drain:
                self._lock.wait_for(lambda: not self._running and not self._unrecorded)
            self._stopping = True
        self._poke()
        if self._pump is not None:
            self._pump.join(10)
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(_STOP)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def abandon_running(self) -> None:
        """Record nothing more for the tries running now, nor start new ones.

        For a cold shutdown: the pool processes are about to be stopped, and their
        tries must end as zombies (retried elsewhere), not be recorded as failed.
        """
        with self._lock:
            self._accepting = False
            self._backlog.clear()
            self._cold.forget_waiting()
            for current in self._running.values():
                current.abandoned = True

    def reap_dead_workers(self) -> int:
        """Replace the workers that died; returns how many.

        The pump already recorded the try a dead worker held (failed or up for
        retry, with the reason in its log). The fork happens here, in the caller's
        thread between its transactions, with the pump's metastore work held off.
        """
        replaced = 0
        with self._fork_guard, self._lock:
            for number, worker in enumerate(self._workers):
                if worker.dead:
                    self._workers[number] = self._spawn(number)
                    self._idle.append(number)
                    replaced += 1
        if replaced:
            self._poke()
        return replaced

    # --- workers --------------------------------------------------------------------

    def _spawn(self, number: int) -> _Worker:
        mine, theirs = _FORK.Pipe(duplex=True)
        process = _FORK.Process(
            target=worker_main,
            args=(self._pool, theirs),
            name=f"tradewind-local-worker-{number}",
            daemon=True,
        )
        process.start()
        theirs.close()
        return _Worker(process, mine)

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # --- the pump -------------------------------------------------------------------

    def _pump_forever(self) -> None:
        while not self._stopping:
            try:
                self._pump_once()
            except Exception:
                log.exception("local executor pump failed; going on")
                time.sleep(RETRY_DELAY)

    def _pump_once(self) -> None:
        live = [(n, w) for n, w in enumerate(self._workers) if not w.dead]
        by_conn = {w.conn: n for n, w in live}
        sentinels = [w.process.sentinel for _, w in live]
        ready = wait([*by_conn, *sentinels, self._wake_r], timeout=self._tick())
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 4096)
        reports = []
        for conn in ready:
            if conn in by_conn:
                reports.extend(self._receive(by_conn[conn]))
        # a worker that reported is free: its next try is claimed and handed over
        # before the last one is recorded, so it does not wait for that transaction
        ended = self._release(reports)
        self._dispatch()
        self._record(ended)
        self._handle_deaths()
        self._enforce_deadlines()
        self._heartbeat_if_due()
        self._dispatch()

    def _tick(self) -> float:
        now = time.monotonic()
        wake = [self._next_beat]
        wake.extend(t.kill_at for t in self._running.values() if t.kill_at is not None)
        if self._backlog and self._idle:
            if self._retry_at > now:
                wake.append(self._retry_at)
            # a version waiting for warm workers may take a cold one after a while
            # (one whose patience ran out waits for a report: no busy loop)
            wake.extend(until for until in self._cold.patience_ends() if until > now)
        return max(0.0, min(wake) - now)

    def _receive(self, number: int) -> list[tuple[int, Any]]:
        """Read what worker ``number`` sent: announcements and at most one report."""
        conn = self._workers[number].conn
        reports = []
        with contextlib.suppress(EOFError, OSError):
            while conn.poll():
                kind, payload = conn.recv()
                current = self._running.get(number)
                if current is None:
                    continue
                if kind == "started":
                    current.started_at = time.monotonic()
                    if current.cold:
                        load = current.started_at - current.handed_at
                        self._cold.imported(_version(current.message), load)
                    if payload is not None:
                        current.timeout = payload
                        current.kill_at = time.monotonic() + payload + KILL_GRACE
                elif kind == "group":
                    pgid, running = payload
                    (current.groups.add if running else current.groups.discard)(pgid)
                elif kind == "finished":
                    reports.append((number, payload))
        return reports

    def _release(self, reports: list[tuple[int, Any]]) -> list[tuple[TaskMessage, Any]]:
        """Free the workers that reported; their ``(message, report)`` await the record."""
        ended = []
        now = time.monotonic()
        with self._lock:
            for number, report in reports:
                current = self._running.pop(number)
                version = _version(current.message)
                began = current.started_at if current.cold else current.handed_at
                if began is not None:
                    self._cold.ran(version, now - began)
                self._workers[number].warm.add(version)
                self._idle.append(number)
                ended.append((current.message, report))
            self._unrecorded += len(ended)
        return ended

    def _record(self, ended: list[tuple[TaskMessage, Any]]) -> None:
        """Record released tries in one transaction, then tell the scheduler."""
        if not ended:
            return
        assert self._book is not None
        try:
            with self._fork_guard:
                states: list[TaskState | None] = self._book.record([r for _, r in ended])
        except TradewindError:
            log.exception("could not record %d tries; the zombie reaper will end them", len(ended))
            states = [None] * len(ended)
        with self._lock:
            self._unrecorded -= len(ended)
            self._lock.notify_all()
        for (message, _), state in zip(ended, states, strict=True):
            self._tell(message, state)

    def _handle_deaths(self) -> None:
        for number, worker in enumerate(self._workers):
            if worker.dead or worker.process.is_alive():
                continue
            leftover = self._receive(number)  # a report sent just before dying still counts
            self._record(self._release(leftover))
            worker.process.join(0)
            with self._lock:
                worker.dead = True
                if number in self._idle:
                    self._idle.remove(number)
                current = self._running.pop(number, None)
                self._lock.notify_all()
            if current is None:
                continue
            _kill_groups(current.groups)  # they would run on, orphaned, beside the retry
            if current.claimed is None:
                continue
            state = None
            if not current.abandoned:
                reason = current.killed or _describe_exit(worker.process.exitcode)
                state = self._record_lost(current, reason, worker.process.pid)
            self._tell(current.message, state)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for number, current in list(self._running.items()):
            if current.kill_at is None or now < current.kill_at:
                continue
            current.kill_at = None
            if not current.abandoned and current.killed is None:
                current.killed = (
                    f"Task timed out after {current.timeout:g} s and was killed "
                    "(it did not stop at its execution_timeout)"
                )
                self._say(
                    current, f"Task did not stop after its {current.timeout:g} s timeout: killed"
                )
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._workers[number].process.pid, signal.SIGKILL)

    def _heartbeat_if_due(self) -> None:
        assert self._book is not None
        if time.monotonic() < self._next_beat:
            return
        self._next_beat = time.monotonic() + self._book.heartbeat_interval
        watched = [(n, t) for n, t in self._running.items() if t.claimed and not t.abandoned]
        if not watched:
            return
        with self._fork_guard:
            alive = self._book.heartbeat([t.claimed for _, t in watched])
        for (number, current), ok in zip(watched, alive, strict=True):
            if ok:
                continue
            current.abandoned = True
            self._say(current, "State of this instance was changed externally: killing the task")
            current.kill_at = time.monotonic() + KILL_GRACE
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._workers[number].process.pid, STOP_SIGNAL)

    def _pick(self) -> list[tuple[int, TaskMessage]]:
        """Pair backlog messages with idle workers (call with the lock held).

        A worker that already imported the message's DAG version goes first (most
        recently idle first). A cold worker imports the version only while fewer than
        :data:`COLD_STARTS` workers import it, and while some worker runs that version,
        only when :meth:`ColdStarts.pays` says so. A message that must wait keeps its
        place; later messages of other DAGs may pass it. Each version's backlog clock
        (see :class:`ColdStarts`) restarts at a cold start and ends when none of it waits.
        """
        pairs: list[tuple[int, TaskMessage]] = []
        importing = Counter(
            _version(t.message) for t in self._running.values() if t.cold and t.started_at is None
        )
        # the workers that will be free for a version soonest: those running it
        working = Counter(_version(t.message) for t in self._running.values())
        waiting_of = Counter(_version(m) for m in self._backlog)
        waiting: list[TaskMessage] = []
        now = time.monotonic()
        running_for: dict[Version, float] = {}  # the longest a try of each has run
        for current in self._running.values():
            if current.started_at is not None:
                version = _version(current.message)
                elapsed = now - current.started_at
                running_for[version] = max(running_for.get(version, 0.0), elapsed)
        while self._idle and self._backlog:
            message = self._backlog.popleft()
            version = _version(message)
            warm = [n for n in self._idle if version in self._workers[n].warm]
            if warm:
                number = warm[-1]
            elif importing[version] < COLD_STARTS and (
                working[version] == importing[version]  # none runs it yet: import now
                or self._cold.pays(
                    version,
                    waiting=waiting_of[version],
                    workers=working[version],
                    now=now,
                    running_for=running_for.get(version, 0.0),
                )
            ):
                number = self._idle[-1]
                importing[version] += 1
                self._cold.cold_started(version, now)
            else:
                waiting.append(message)
                continue
            waiting_of[version] -= 1
            working[version] += 1
            self._idle.remove(number)
            self._running[number] = _Try(message, cold=not warm, handed_at=now)
            pairs.append((number, message))
        self._backlog.extendleft(reversed(waiting))
        self._cold.waiting_only({_version(m) for m in self._backlog})
        return pairs

    def _dispatch(self) -> None:
        """Claim backlog messages for idle workers in one transaction and hand them over."""
        if time.monotonic() < self._retry_at:
            return
        with self._lock:
            pairs = self._pick() if not self._stopping else []
        if not pairs:
            return
        assert self._book is not None
        try:
            with self._fork_guard:
                claimed = self._book.claim([(m, self._workers[n].process.pid) for n, m in pairs])
        except TradewindError:
            log.warning("could not claim %d tries; trying again", len(pairs), exc_info=True)
            self._retry_at = time.monotonic() + RETRY_DELAY
            with self._lock:
                for number, message in reversed(pairs):
                    del self._running[number]
                    self._idle.append(number)
                    self._backlog.appendleft(message)
                    # it keeps the right to a cold worker it had: its patience is spent
                    self._cold.patience_spent(_version(message), time.monotonic())
            return
        lost = []
        for number, message in pairs:
            current = self._running[number]
            current.claimed = claimed.get(message)
            if current.claimed is None:
                lost.append(message)
                with self._lock:
                    del self._running[number]
                    self._idle.append(number)
                    self._lock.notify_all()
                continue
            with contextlib.suppress(OSError):
                self._workers[number].conn.send((message, current.claimed))
            # a worker that is gone shows up in _handle_deaths: its try is recorded lost
        for message in lost:
            self._tell(message, None)

    # --- small things ---------------------------------------------------------------

    def _record_lost(self, current: _Try, reason: str, pid: int) -> TaskState | None:
        assert self._book is not None
        try:
            with self._fork_guard:
                return self._book.record_lost(current.claimed, reason, pid=pid)
        except TradewindError:
            log.exception("could not record a lost try; the zombie reaper will end it")
            return None

    def _say(self, current: _Try, line: str) -> None:
        assert self._book is not None
        with contextlib.suppress(OSError):
            self._book.say(current.claimed, line)

    def _tell(self, message: TaskMessage, state: TaskState | None) -> None:
        try:
            self._on_finished(message, state)
        except Exception:
            log.exception("finished-callback failed")


def _version(message: TaskMessage) -> Version:
    return message.dag_id, message.fingerprint


def _kill_groups(groups: set[int]) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"Task process was killed by signal {name}"
    return f"Task process exited with code {exitcode} before reporting"
