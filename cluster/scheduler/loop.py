"""The scheduling loop: load a snapshot, ask the policy, write with compare-and-set, dispatch.

One iteration creates due DAG runs, starts queued runs, moves ready task instances
forward, queues what fits and hands it to the executor. It wakes on a "task finished"
event and otherwise polls. Every write transaction first checks the fencing epoch, so
a scheduler that lost leadership stops writing at its next transaction; a leader whose
ZooKeeper connection is suspended during a transaction rolls it back instead of
committing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.errors import ElectionLost, FencedOff, MetastoreError
from cluster.executors.base import Dispatch, Executor
from cluster.metastore.engine import transaction
from cluster.scheduler import dagruns, dataset_runs, queueing, reaper, takeover
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.fencing import Fence
from cluster.scheduler.leadership import Leadership

log = logging.getLogger(__name__)

T = TypeVar("T")


#: an iteration that took longer (seconds) makes the loop rest for the excess
FREE_ITERATION = 0.02
#: the longest rest after one iteration (seconds)
MAX_REST = 0.25


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LoopStats:
    """Counters of the last iterations, for metrics and benchmarks."""

    iterations: int = 0
    runs_created: int = 0
    queued: int = 0
    last_duration: float = 0.0
    durations: list[float] = field(default_factory=list)


class SchedulerLoop:
    """The loop of the (leading) scheduler."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        executor: Executor,
        fence: Fence,
        clock: Callable[[], datetime] = utcnow,
        on_iteration: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._executor = executor
        self._fence = fence
        self._clock = clock
        self._on_iteration = on_iteration
        self._dags = DagCache(settings.celery.default_queue)
        #: dataset consumers found waiting, by what they waited on (see dataset_runs)
        self._waiting_consumers: dict[str, Hashable] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_reap = 0.0
        self._next_creation: datetime | None = None
        #: the metastore failed since the last successful iteration
        self._outage = False
        self._leadership: Leadership | None = None
        self.stats = LoopStats()

    # --- control from other threads -------------------------------------------------

    def wake(self) -> None:
        """Ask for an iteration now (a task finished, a user acted)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop ---------------------------------------------------------------------

    def run(self, leadership: Leadership | None = None) -> None:
        """Iterate until :meth:`stop`; while not leading, wait without writing.

        Without ``leadership`` the loop assumes it leads and a newer epoch ends it
        with :class:`FencedOff`; with it, being fenced off means stepping down.
        """
        poll = self._settings.scheduler.poll_interval
        self._leadership = leadership
        while not self._stop.is_set():
            self._wake.clear()
            if leadership is None or leadership.is_leader():
                try:
                    self.run_once()
                except FencedOff as exc:
                    if leadership is None:
                        raise
                    leadership.fenced_off(str(exc))
                except ElectionLost as exc:
                    log.warning("%s", exc)  # the next is_leader() steps down
                except MetastoreError as exc:
                    log.warning("metastore unavailable, retrying: %s", exc)
                    self._outage = True
                    self._stop.wait(min(poll * 2, 5.0))
                self._rest()
            self._wake.wait(poll)

    def _rest(self) -> None:
        """After a costly iteration, rest about as long before the next one.

        Each finished try wakes the loop; when an iteration costs more than
        :data:`FREE_ITERATION` (a run of thousands of tasks, a busy metastore), waking
        for each one would spend the scheduler's core on iterations that each queue a
        try or two. Resting lets the finished tries gather, so the next iteration queues
        them together, and bounds the loop at about half a core. Cheap iterations (a
        chain, small fan-outs) never rest.
        """
        rest = min(self.stats.last_duration - FREE_ITERATION, MAX_REST)
        if rest > 0:
            self._stop.wait(rest)

    def reset(self) -> None:
        """Forget cached DAGs: a new leader rebuilds its view from the metastore alone."""
        self._dags = DagCache(self._settings.celery.default_queue)
        self._waiting_consumers.clear()
        self._next_reap = 0.0
        self._next_creation = None

    def resend_orphans(self) -> int:
        """Send again what an older leader queued; a duplicate message is claimed only once.

        An old leader may have committed ``queued`` and died before its messages left:
        without this they would wait for ``scheduler.queued_timeout``.
        """
        now = self._clock()
        dispatches = self._write(
            lambda session, now: takeover.orphaned_dispatches(
                session, self._dags, epoch=self._fence.epoch or 0
            ),
            now,
        )
        if dispatches:
            self._executor.send(dispatches)
        return len(dispatches)

    def run_once(self) -> int:
        """One iteration in one fenced transaction; returns how many instances were dispatched.

        The dispatches are sent only after the transaction committed, so a runner never
        sees a message for an instance that is not yet ``queued``.
        """
        started = time.perf_counter()
        now = self._clock()
        dispatches = self._write(self._iterate, now)
        if dispatches:
            self._executor.send(dispatches)
        self._reap_if_due(now)
        self._record_iteration(time.perf_counter() - started, len(dispatches))
        return len(dispatches)

    def _write(self, step: Callable[[Session, datetime], T], now: datetime) -> T:
        """Run one step in a fenced transaction (retried on deadlocks and lost connections)."""

        def fenced(session: Session) -> T:
            self._fence.check(session, now=now)
            result = step(session, now)
            if self._leadership is not None and not self._leadership.elector.holds():
                raise ElectionLost("election lost during an iteration: its writes are rolled back")
            return result

        return transaction(self._sessions, fenced)

    def _iterate(self, session: Session, now: datetime) -> list[Dispatch]:
        if self._next_creation is None or now >= self._next_creation:
            # schedules are never finer than a poll: iterations woken by finished
            # tasks (many per second) skip this query; manual runs never wait for it
            self._next_creation = now + timedelta(seconds=self._settings.scheduler.poll_interval)
            limit = self._settings.scheduler.max_dagruns_to_create_per_loop
            created = dagruns.create_due_runs(
                session, self._dags, now=now, epoch=self._fence.epoch or 0, limit=limit
            )
            self.stats.runs_created += created
            if created >= limit:
                # more DAGs may be due: the next iteration creates the next batch at
                # once, as Airflow's loop does (the hour's runs of 1,000 hourly DAGs
                # took 100 s at one batch a poll)
                self._next_creation = now
                self.wake()
            self.stats.runs_created += dataset_runs.create_dataset_triggered_runs(
                session,
                self._dags,
                now=now,
                epoch=self._fence.epoch or 0,
                waiting=self._waiting_consumers,
            )
        dagruns.step_active_runs(session, self._dags, now=now)
        # asked only now: the tries that ended while the runs were stepped count too
        free = self._executor.free_slots()
        if free is not None and free <= 0:
            return []
        return queueing.queue_ready(
            session,
            self._dags,
            now=now,
            epoch=self._fence.epoch or 0,
            parallelism=self._settings.core.parallelism,
            executor_free=free,
        )

    def _reap_if_due(self, now: datetime) -> None:
        if self._outage:
            # workers could not beat during the outage either: give them a full
            # threshold to beat again before any heartbeat counts as stale
            self._outage = False
            self._next_reap = time.monotonic() + self._settings.scheduler.zombie_threshold
        if time.monotonic() < self._next_reap:
            return
        self._next_reap = time.monotonic() + max(1.0, self._settings.scheduler.zombie_threshold / 4)
        self._write(
            lambda session, now: reaper.reap(
                session,
                self._dags,
                now=now,
                zombie_threshold=self._settings.scheduler.zombie_threshold,
                queued_timeout=self._settings.scheduler.queued_timeout,
            ),
            now,
        )

    def _record_iteration(self, seconds: float, queued: int) -> None:
        self.stats.iterations += 1
        self.stats.queued += queued
        self.stats.last_duration = seconds
        self.stats.durations.append(seconds)
        del self.stats.durations[:-1000]
        if self._on_iteration is not None:
            self._on_iteration()
