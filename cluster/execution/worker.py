"""Building the runner of tries: the local pool (scheduler, Celery worker, ``tasks run``).

Everything is created in the process that uses it: an engine inherited across a fork
would share its sockets with the parent. Pool processes open their own connection, on
first use only (most tasks never read the metastore themselves).

A Celery worker runs its tries in a local process pool of its own
(:func:`pooled_runner`); its pool processes die with the worker (a parent-death
signal), so a worker killed with ``kill -9`` leaves zombies to be retried elsewhere,
never tries that run on unwatched.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.errors import NotFoundError
from cluster.execution.dagbag import DagBag, source_cache_for
from cluster.execution.isolation import STOP_SIGNAL
from cluster.execution.pool import PoolBook, PoolRunner, UnstartedRunner, utcnow
from cluster.executors.blocking import BlockingExecutor
from cluster.executors.celery_pool import OnRecorded, OutagePool, PooledRunner
from cluster.executors.local import LocalExecutor, OnFinished
from cluster.metastore.engine import SINGLE_THREAD_POOL, create_engine_for, make_session_factory
from cluster.metastore.models import SerializedDagRow

# what most tries import, loaded before the pool forks: each pool process inherits it
# instead of importing it on its first try (the operators most DAG files use, and the
# extension the template sandbox names, which jinja imports on the first render)
import jinja2.ext  # noqa: F401  isort: skip
from cluster.operators import bash, python, taskflow  # noqa: F401  isort: skip

log = logging.getLogger(__name__)


def locator(sessions: sessionmaker[Session]) -> Callable[[str], tuple[str, str]]:
    """Where a DAG's file is, and the fingerprint the scheduler serialized, from the metastore."""

    def locate(dag_id: str) -> tuple[str, str]:
        with sessions() as session:
            row = session.execute(
                select(SerializedDagRow.fileloc, SerializedDagRow.fingerprint).where(
                    SerializedDagRow.dag_id == dag_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"DAG '{dag_id}' is not in the metastore")
        return row[0], row[1]

    return locate


class LocalPool:
    """What the local executor needs of the runner: its book here, a runner per worker.

    :meth:`book` is called once in the executor's process, :meth:`runner` once in each
    worker process after the fork: each builds its own engine there.

    :param clock: the wall clock of claims, records and retry dates (a test's fake
        clock must be readable from the forked workers too).
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self.heartbeat_interval = settings.scheduler.heartbeat_interval

    def book(self) -> PoolBook:
        # only the pump uses the book: one thread, one connection
        engine = create_engine_for(self._settings.metastore, pool_size=SINGLE_THREAD_POOL)
        sessions = make_session_factory(engine)
        return PoolBook(self._settings, sessions=sessions, clock=self._clock)

    def runner(self) -> PoolRunner | UnstartedRunner:
        """This pool process's runner; if it cannot be built, one that fails each try
        with the reason in the try's log (see :class:`UnstartedRunner`)."""
        try:
            # an engine connects on first use: a worker whose tasks never read the
            # metastore never opens a connection
            engine = create_engine_for(self._settings.metastore, pool_size=SINGLE_THREAD_POOL)
            sessions = make_session_factory(engine)
            dagbag = DagBag(
                locate=locator(sessions), sources=source_cache_for(self._settings, sessions)
            )
            return PoolRunner(
                self._settings, sessions=lambda: sessions, dagbag=dagbag, clock=self._clock
            )
        except Exception as exc:
            log.exception("the task runner could not start in this pool process")
            return UnstartedRunner(
                self._settings, f"{type(exc).__name__}: {exc}", clock=self._clock
            )


def local_worker(settings: Settings) -> LocalPool:
    """The runner side of the local executor (see :class:`LocalPool`)."""
    return LocalPool(settings)


def single_try_runner(settings: Settings) -> BlockingExecutor:
    """``tradewind tasks run``: one pool process that runs the given tries to their end,
    exactly as the scheduler's local executor runs them."""
    return BlockingExecutor(LocalPool(settings), size=1)


_PR_SET_PDEATHSIG = 1


class CeleryWorkerPool(LocalPool):
    """The local pool of a Celery worker: its processes die with the worker.

    Each process asks for :data:`~cluster.execution.isolation.STOP_SIGNAL` when the
    thread that forked it ends (the worker's main thread, or its pool keeper): a
    running try then calls its task's ``on_kill`` (a Bash task's process group is
    killed) and the process exits; an idle one simply exits. The try is never
    recorded: it stops heartbeating and the zombie reaper retries it elsewhere.
    """

    def __init__(self, settings: Settings, *, after_fork: Callable[[], None]) -> None:
        super().__init__(settings)
        self._after_fork = after_fork

    def runner(self) -> PoolRunner | UnstartedRunner:
        self._after_fork()
        die_with_parent()
        return super().runner()


def die_with_parent() -> None:
    """In a forked pool process: receive :data:`STOP_SIGNAL` when the parent thread ends.

    The disposition is reset first: the worker's own handler for that signal (Celery
    installs one) must not swallow it. Exits at once if the parent is already gone.
    """
    parent = os.getppid()
    signal.signal(STOP_SIGNAL, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, STOP_SIGNAL)
    if os.getppid() != parent:
        os._exit(1)


def pooled_runner(
    settings: Settings,
    *,
    size: int,
    on_recorded: OnRecorded | None = None,
    after_fork: Callable[[], None] = lambda: None,
) -> PooledRunner:
    """The runner of a Celery worker: ``size`` pool processes, metastore work batched.

    Nothing starts until :meth:`PooledRunner.prepare` (call it from the main thread).

    :param after_fork: run first in each pool process (close what it must not inherit).
    """
    pool = OutagePool(CeleryWorkerPool(settings, after_fork=after_fork))

    def executor(on_finished: OnFinished) -> LocalExecutor:
        return LocalExecutor(size=size, worker_factory=pool, on_finished=on_finished)

    return PooledRunner(executor, pool, on_recorded=on_recorded)
