"""The ``ti`` a running task sees, and the runtime services behind ``Variable`` and ``conn``.

Pushes and skip decisions are collected in memory and written with the try's end
state, in one transaction (by the pool's book); only pulls and variable reads go to
the metastore from the pool process, over a connection of its own opened on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.errors import NotFoundError
from cluster.execution.recording import ClaimedTry
from cluster.metastore import connections, variables
from cluster.metastore.models import XCom
from cluster.sdk.runtime import Connection

SessionFactory = Callable[[], sessionmaker[Session]]


class MetastoreTaskInstance:
    """The task-instance handle of one running try (``context["ti"]``)."""

    def __init__(self, claimed: ClaimedTry, *, hostname: str, sessions: SessionFactory) -> None:
        self.dag_id = claimed.key.dag_id
        self.run_id = claimed.key.run_id
        self.task_id = claimed.key.task_id
        self.map_index = claimed.key.map_index
        self.try_number = claimed.try_number
        self.max_tries = claimed.max_tries
        self.hostname = hostname
        self.start_date: datetime | None = claimed.start_date
        self.sensor_started_at = claimed.sensor_started_at
        self.state = "running"
        self._sessions = sessions
        self._pushed: dict[str, Any] = {}
        self._skipped: list[str] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self._pushed[key] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = "return_value",
        dag_id: str | None = None,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Airflow's semantics: one task id → its value; a list → a list of values."""
        dag_id = dag_id or self.dag_id
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            values = self._pull(dag_id, [task_ids], key, map_indexes)
            return values.get(task_ids, default)
        wanted = list(task_ids)
        values = self._pull(dag_id, wanted, key, map_indexes)
        return [values[t] for t in wanted if t in values]

    def _pull(
        self, dag_id: str, task_ids: list[str], key: str, map_indexes: int | Iterable[int] | None
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if dag_id == self.dag_id and self.task_id in task_ids and key in self._pushed:
            found[self.task_id] = self._pushed[key]
        query = select(XCom.task_id, XCom.value).where(
            XCom.dag_id == dag_id,
            XCom.run_id == self.run_id,
            XCom.task_id.in_([t for t in task_ids if t not in found]),
            XCom.key == key,
        )
        if map_indexes is not None:
            wanted = [map_indexes] if isinstance(map_indexes, int) else list(map_indexes)
            query = query.where(XCom.map_index.in_(wanted))
        with self._sessions()() as session:
            for task_id, value in session.execute(query):
                found[task_id] = None if value is None else json.loads(value)
        return found

    def skip_downstream(self, task_ids: Iterable[str]) -> None:
        self._skipped.extend(t for t in task_ids if t not in self._skipped)

    def pushed_xcoms(self) -> list[tuple[str, Any]]:
        return list(self._pushed.items())

    def skipped_downstream(self) -> list[str]:
        return list(self._skipped)


class MetastoreRuntime:
    """``Variable`` and connection lookups served from the metastore."""

    def __init__(self, *, sessions: SessionFactory, fernet: MultiFernet) -> None:
        self._sessions = sessions
        self._fernet = fernet

    def get_variable(self, key: str) -> str | None:
        with self._sessions()() as session:
            try:
                return variables.get_variable(key, session=session, fernet=self._fernet)
            except NotFoundError:
                return None

    def set_variable(self, key: str, value: str) -> None:
        with self._sessions()() as session, session.begin():
            variables.set_variable(key, value, session=session, fernet=self._fernet)

    def delete_variable(self, key: str) -> None:
        with self._sessions()() as session, session.begin():
            variables.delete_variable(key, session=session)

    def get_connection(self, conn_id: str) -> Connection:
        with self._sessions()() as session:
            record = connections.get_connection(conn_id, session=session, fernet=self._fernet)
        return Connection(
            conn_id=record.conn_id,
            conn_type=record.conn_type,
            host=record.host,
            schema=record.schema,
            login=record.login,
            password=record.password,
            port=record.port,
            extra=json.loads(record.extra) if record.extra else {},
        )


def lazy(factory: Callable[[], sessionmaker[Session]]) -> SessionFactory:
    """Create the child's own session factory on first use, then reuse it."""
    return functools.cache(factory)
