"""The local executor: a pool of long-lived worker processes on this machine.

Workers are forked once when the executor starts (size = ``core.parallelism``) and
run each try in their own process: no new interpreter, no fork per try. The
executor's process keeps the metastore side of every try (the pool's *book*): one
thread, the pump, claims the tries it hands out several at a time, heartbeats all
running tries at once, and records the tries that ended in one transaction. So a
short task costs a fraction of a transaction instead of three.

Each worker has its own pipe (what travels on it: :mod:`cluster.executors.local_pipe`).
:mod:`cluster.executors.placement` decides which idle worker takes which waiting
message (warm workers first, the most recently idle first: in a chain the same warm
worker takes each next task), and which busy one gets its next try queued behind a
quick one; this module keeps the snapshots it reads and does what it decides (the
queued tries: :mod:`cluster.executors.local_tries`). The pump also watches
the workers: one that dies (``kill -9``, a task's segfault or ``os._exit``) is replaced
and its try recorded as failed with the reason, and the process groups its task started
(a Bash command's session, which its death would orphan) are killed; one whose task
overran its ``execution_timeout`` beyond a grace period, or whose try was cleared or
marked meanwhile, is stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cluster.errors import TradewindError
from cluster.executors.base import Dispatch
from cluster.executors.cold_starts import ColdStarts, Version
from cluster.executors.cpu_gauge import CpuGauge
from cluster.executors.local_book import GuardedBook
from cluster.executors.local_pipe import Finished, GroupChanged, Started
from cluster.executors.local_tries import HeldTry, QueuedTries
from cluster.executors.local_watch import PumpWatch
from cluster.executors.local_worker import WorkerPool, WorkerProcess, kill_process_groups
from cluster.executors.placement import (
    Assignment,
    IdleWorker,
    RunningTry,
    place,
    version_of,
)
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: seconds a task gets past its timeout (or after a stop request) before SIGKILL
KILL_GRACE = 5.0
#: the signal that asks a worker to stop its try (see cluster.execution.isolation)
STOP_SIGNAL = signal.SIGUSR1
#: seconds the pump waits before trying a failed claim again
RETRY_DELAY = 1.0


#: called in the scheduler process for every finished try
OnFinished = Callable[[TaskMessage, TaskState | None], None]


class LocalExecutor:
    """Runs tries in ``size`` forked worker processes.

    :param clock: monotonic seconds; every deadline, heartbeat and measured cost of the
        executor reads it (tests move it instead of sleeping).
    :param cpu_gauge: how busy the processors are, asked before a cold start.

    The public methods run on their callers' threads, the rest on the pump thread; what
    both sides touch changes only under ``_lock`` (each attribute says who writes it).
    """

    def __init__(
        self,
        *,
        size: int,
        worker_factory: WorkerPool,
        on_finished: OnFinished,
        clock: Callable[[], float] = time.monotonic,
        cpu_gauge: CpuGauge | None = None,
    ) -> None:
        self._size = max(1, size)
        self._pool = worker_factory
        self._on_finished = on_finished
        self._clock = clock
        #: built in :meth:`start`, after the fork
        self._book: GuardedBook | None = None
        #: by number; reap_dead_workers replaces a dead one under the lock, and the pump
        #: reads the list without it (swapping one entry is atomic; it skips dead ones)
        self._workers: list[WorkerProcess] = []
        #: idle worker numbers, most recently idle last: the pump and reap_dead_workers
        #: change it, and the pump reads it, always under the lock
        self._idle: list[int] = []
        #: the try each busy worker runs, and the claimed tries not started. Only the pump
        #: changes them, under the lock for the callers that read them (free_slots, a
        #: drain, abandon_running, which also flags them ``abandoned``)
        self._running: dict[int, HeldTry] = {}
        self._queued = QueuedTries()
        #: tries whose worker reported, not yet recorded (under the lock)
        self._unrecorded = 0
        #: messages not yet placed, oldest first; under the lock on every side
        self._backlog: deque[TaskMessage] = deque()
        self._lock = threading.Condition()
        #: held around the pump's metastore work and around a fork (see GuardedBook)
        self._fork_guard = threading.Lock()
        self._wake_r, self._wake_w = -1, -1
        #: the pump's epoll set over the workers' pipes (the pump's alone)
        self._watch: PumpWatch | None = None
        self._pump: threading.Thread | None = None
        self._stopping = False
        self._accepting = True
        self._next_beat = 0.0  # set by start()
        #: until when a failed claim holds off the next one (none yet: any clock is past it)
        self._retry_at = -math.inf
        #: callers start and stop its backlog clocks under the lock, and so does the
        #: pump; the pump alone feeds it measured costs, and may do so without the lock
        self._cold = ColdStarts()
        self._cpu = cpu_gauge or CpuGauge()  # the pump's alone

    # --- the executor contract ------------------------------------------------------

    def start(self) -> None:
        self._workers = [WorkerProcess(self._pool, n) for n in range(self._size)]
        self._idle = list(reversed(range(self._size)))
        # built after the fork: the workers never inherit its connections
        self._book = GuardedBook(self._pool.book(), self._fork_guard)
        self._next_beat = self._clock() + self._book.heartbeat_interval
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._watch = PumpWatch(self._wake_r)
        self._pump = threading.Thread(target=self._pump_forever, name="local-pump", daemon=True)
        self._pump.start()

    def send(self, dispatches: list[Dispatch]) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._backlog.extend(d.message for d in dispatches)
            now = self._clock()
            for dispatch in dispatches:
                self._cold.waiting(version_of(dispatch.message), now)
        self._poke()

    def free_slots(self) -> int | None:
        with self._lock:
            return self._size - len(self._running) - len(self._queued) - len(self._backlog)

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
            worker.send_stop()
        for worker in self._workers:
            worker.join_or_kill()
        if self._watch is not None:
            self._watch.close()
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
            for current in (*self._running.values(), *self._queued):
                current.abandoned = True

    def reap_dead_workers(self) -> int:
        """Replace the workers that died; returns how many.

        The pump already recorded the try a dead worker held (failed or up for
        retry, with the reason in its log). The fork happens here, in the caller's
        thread between its transactions, with the pump's metastore work held off.
        """
        if not any(worker.dead for worker in self._workers):
            # the usual answer, read without the guard: taking it waited for the pump's
            # transaction in every iteration (a death seen late is reaped next time)
            return 0
        replaced = 0
        with self._fork_guard, self._lock:
            for number, worker in enumerate(self._workers):
                if worker.dead:
                    self._workers[number] = WorkerProcess(self._pool, number)
                    self._idle.append(number)
                    replaced += 1
        if replaced:
            self._poke()
        return replaced

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
        assert self._watch is not None
        ready = self._watch.wait(self._workers, self._tick())
        if ready.woken:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 4096)
        reports = []
        for number in ready.readable:
            reports.extend(self._receive(number))
        # a worker that reported is free: its next try is claimed and handed over
        # before the last one is recorded, so it does not wait for that transaction
        ended = self._release(reports)
        self._dispatch()
        self._record(ended)
        if ready.died:
            self._handle_deaths()
        self._enforce_deadlines()
        self._heartbeat_if_due()
        self._dispatch()

    def _tick(self) -> float:
        """Seconds the pump may wait for its pipes: until a heartbeat, a kill or a
        retry is due, or a waiting version's patience ends."""
        now = self._clock()
        wake = [self._next_beat]
        wake.extend(t.kill_at for t in self._running.values() if t.kill_at is not None)
        # under the lock: send() starts backlog clocks on its caller's thread, and a
        # dict that grows while it is read raises
        with self._lock:
            if self._backlog and self._idle:
                if self._retry_at > now:
                    wake.append(self._retry_at)
                # a version waiting for warm workers may take a cold one after a while
                # (one whose patience ran out waits for a report: no busy loop)
                wake.extend(until for until in self._cold.patience_ends() if until > now)
        return max(0.0, min(wake) - now)

    def _receive(self, number: int) -> list[tuple[int, Any]]:
        """Read what worker ``number`` sent: announcements and reports, in order; after a
        report, what follows is about the try it had queued next."""
        notes = self._workers[number].notes()
        current = self._running.get(number)
        reports = []
        for note in notes:
            if current is None:
                break
            match note:
                case Started(timeout):
                    self._started(current, timeout)
                case GroupChanged(pgid, running):
                    (current.groups.add if running else current.groups.discard)(pgid)
                case Finished(report):
                    reports.append((number, report))
                    current = self._queued.behind.get(number)
        return reports

    def _started(self, current: HeldTry, timeout: float | None) -> None:
        """A worker has its try's DAG version: its import is measured, its deadline set."""
        current.started_at = now = self._clock()
        if current.cold:
            self._cold.imported(version_of(current.message), now - current.handed_at)
        if timeout is not None:
            current.timeout = timeout
            current.kill_at = now + timeout + KILL_GRACE

    def _release(self, reports: list[tuple[int, Any]]) -> list[tuple[TaskMessage, Any]]:
        """Free the workers that reported, or move on to the try each had queued; their
        ``(message, report)`` await the record."""
        ended = []
        now = self._clock()
        with self._lock:
            for number, report in reports:
                current = self._running.pop(number)
                version = version_of(current.message)
                began = current.started_at if current.cold else current.handed_at
                if began is not None:
                    self._cold.ran(version, now - began)
                self._workers[number].warm.add(version)
                ended.append((current.message, report))
                following = self._queued.start_next(number, now)
                if following is None:
                    self._idle.append(number)
                    continue
                self._running[number] = following
                if following.stop_when_started:
                    following.kill_at = now + KILL_GRACE
                    self._workers[number].signal(STOP_SIGNAL)
            self._unrecorded += len(ended)
        return ended

    def _record(self, ended: list[tuple[TaskMessage, Any]]) -> None:
        """Record released tries in one transaction, then tell the scheduler."""
        if not ended:
            return
        assert self._book is not None
        states = self._book.record([r for _, r in ended])
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
                dropped = self._queued.orphan(number)
                self._lock.notify_all()
            if dropped is not None:
                self._tell(dropped.message, None)
            if current is None:
                continue
            kill_process_groups(current.groups | worker.groups.running())  # else orphaned
            if current.claimed is None:
                continue
            state = None
            if not current.abandoned:
                reason = current.killed or worker.exit_reason()
                assert self._book is not None
                state = self._book.record_lost(current.claimed, reason, pid=worker.pid)
            self._tell(current.message, state)

    def _enforce_deadlines(self) -> None:
        now = self._clock()
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
            self._workers[number].signal(signal.SIGKILL)

    def _heartbeat_if_due(self) -> None:
        assert self._book is not None
        now = self._clock()
        if now < self._next_beat:
            return
        self._next_beat = now + self._book.heartbeat_interval
        held = [*self._running.items(), *self._queued.held()]
        watched = [(n, t) for n, t in held if t.claimed and not t.abandoned]
        if not watched:
            return
        alive = self._book.heartbeat([t.claimed for _, t in watched])
        for (number, current), ok in zip(watched, alive, strict=True):
            if ok:
                continue
            current.abandoned = True
            self._say(current, "State of this instance was changed externally: killing the task")
            if self._running.get(number) is current:
                current.kill_at = self._clock() + KILL_GRACE
                self._workers[number].signal(STOP_SIGNAL)
            else:  # not started yet: stopped as soon as it starts
                current.stop_when_started = True

    def _pick(self) -> list[Assignment]:
        """Carry out :mod:`~cluster.executors.placement` (call with the lock held); with no
        message there is nothing to decide, nor any backlog clock to end."""
        if not self._backlog:
            return []
        now = self._clock()
        placed = self._place(now) if self._idle else []
        return placed + self._queued.prefetch(
            self._backlog, self._running, self._warm_of, self._cold, now
        )

    def _place(self, now: float) -> list[Assignment]:
        idle = [IdleWorker(n, self._workers[n].warm) for n in self._idle]
        running = [
            RunningTry(version_of(t.message), t.cold, t.started_at) for t in self._running.values()
        ]
        placement = place(self._backlog, idle, running, self._cold, now, cpu_busy=self._cpu.busy())
        self._backlog = deque(placement.waiting)
        for assignment in placement.assignments:
            self._idle.remove(assignment.worker)  # a warm worker starts its task at once
            self._running[assignment.worker] = HeldTry(
                assignment.message,
                cold=assignment.cold,
                handed_at=now,
                started_at=None if assignment.cold else now,
            )
        return placement.assignments

    def _dispatch(self) -> None:
        """Hand the tries of dead workers on, then claim backlog messages for idle workers
        (and for busy ones to queue) in one transaction and hand them over."""
        if self._queued.orphans:
            self._hand_off()
        if self._clock() < self._retry_at:
            return
        with self._lock:
            assignments = self._pick() if not self._stopping else []
        if not assignments:
            return
        assert self._book is not None
        pids = [(a.message, self._workers[a.worker].pid) for a in assignments]
        try:
            claimed = self._book.claim(pids)
        except TradewindError:
            log.warning("could not claim %d tries; trying again", len(pids), exc_info=True)
            self._unassign(assignments)
            return
        lost = []
        for assignment in assignments:
            number, message = assignment.worker, assignment.message
            current = (self._queued.behind if assignment.ahead else self._running)[number]
            current.claimed = claimed.pop(message, None)  # a message sent twice runs once
            if current.claimed is None:
                lost.append(message)
                with self._lock:
                    self._take_back(assignment)
                    self._lock.notify_all()
                continue
            # a worker that is gone shows up in _handle_deaths: its try is recorded lost
            self._workers[number].run(message, current.claimed, cold=current.cold)
        for message in lost:
            self._tell(message, None)

    def _take_back(self, assignment: Assignment) -> None:
        """Undo an assignment whose claim failed or was lost (call with the lock held)."""
        if assignment.ahead:
            del self._queued.behind[assignment.worker]
        else:
            del self._running[assignment.worker]
            self._idle.append(assignment.worker)

    def _hand_off(self) -> None:
        """Give the claimed tries of dead workers to idle ones, without a new claim (if
        every worker died, a drain ends without them: they end as zombies)."""
        with self._lock:
            handed, dropped = self._queued.hand_out(self._idle, self._warm_of, self._clock())
            self._running.update(handed)
        for number, current in handed:
            self._workers[number].run(current.message, current.claimed, cold=current.cold)
        for message in dropped:
            self._tell(message, None)

    def _warm_of(self, number: int) -> set[Version]:
        return self._workers[number].warm

    def _unassign(self, assignments: list[Assignment]) -> None:
        """Put back the messages of a failed claim, ahead of the backlog, and free their workers."""
        now = self._clock()
        self._retry_at = now + RETRY_DELAY
        with self._lock:
            for assignment in reversed(assignments):
                self._take_back(assignment)
                self._backlog.appendleft(assignment.message)
                # it keeps the right to a cold worker it had: its patience is spent
                self._cold.patience_spent(version_of(assignment.message), now)

    # --- small things ---------------------------------------------------------------

    def _say(self, current: HeldTry, line: str) -> None:
        assert self._book is not None
        self._book.say(current.claimed, line)

    def _tell(self, message: TaskMessage, state: TaskState | None) -> None:
        try:
            self._on_finished(message, state)
        except Exception:
            log.exception("finished-callback failed")
