"""Building a runner inside a worker process (a local pool process or a Celery worker).

Everything is created in the process that uses it: an engine inherited across a fork
would share its sockets with the parent. Task children open their own connection, on
first use only (most tasks never read the metastore themselves).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.errors import NotFoundError
from cluster.execution.dagbag import DagBag, source_cache_for
from cluster.execution.handle import lazy
from cluster.execution.pool import PoolBook, PoolRunner
from cluster.execution.supervisor import OnRecorded, Supervisor
from cluster.executors.base import TaskMessage
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.models import SerializedDagRow
from cluster.states import TaskState


def build_supervisor(settings: Settings, *, on_recorded: OnRecorded | None = None) -> Supervisor:
    """A :class:`Supervisor` with its own engine, DAG cache and child-session factory.

    :param on_recorded: called after each try's end state is recorded (the Celery
        worker publishes its "finished" event there).
    """
    sessions = make_session_factory(create_engine_for(settings.metastore))

    def child_sessions() -> sessionmaker[Session]:
        return make_session_factory(create_engine_for(settings.metastore))

    dagbag = DagBag(locate=locator(sessions), sources=source_cache_for(settings, sessions))
    return Supervisor(
        settings,
        sessions=sessions,
        child_sessions=lazy(child_sessions),
        dagbag=dagbag,
        on_recorded=on_recorded,
    )


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


class LocalRunner:
    """A :class:`~cluster.executors.local.TaskRunner` over a supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def run(self, message: TaskMessage) -> TaskState | None:
        return self._supervisor.run(message).state

    def prepare(self) -> None:
        self._supervisor.prepare()


class LocalPool:
    """What the local executor needs of the runner: its book here, a runner per worker.

    :meth:`book` is called once in the executor's process, :meth:`runner` once in each
    worker process after the fork: each builds its own engine there.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.heartbeat_interval = settings.scheduler.heartbeat_interval

    def book(self) -> PoolBook:
        sessions = make_session_factory(create_engine_for(self._settings.metastore))
        return PoolBook(self._settings, sessions=sessions)

    def runner(self) -> PoolRunner:
        # an engine connects on first use: a worker whose tasks never read the
        # metastore never opens a connection
        sessions = make_session_factory(create_engine_for(self._settings.metastore))
        dagbag = DagBag(
            locate=locator(sessions), sources=source_cache_for(self._settings, sessions)
        )
        return PoolRunner(self._settings, sessions=lambda: sessions, dagbag=dagbag)


def local_worker(settings: Settings) -> LocalPool:
    """The runner side of the local executor (see :class:`LocalPool`)."""
    return LocalPool(settings)
