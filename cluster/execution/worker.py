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


def local_worker(settings: Settings) -> Callable[[], LocalRunner]:
    """The factory the local executor calls in each of its worker processes."""
    return lambda: LocalRunner(build_supervisor(settings))
