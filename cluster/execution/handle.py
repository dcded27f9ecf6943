"""The ``ti`` a running task sees, and the runtime services behind ``Variable`` and ``conn``.

Pushes and skip decisions are collected in memory and written with the try's end
state, in one transaction (by the pool's book); only pulls and variable reads go to
the metastore from the pool process, over a connection of its own opened on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.errors import AlreadyExistsError, NotFoundError
from cluster.execution.lazy_xcom import LazyXComSequence
from cluster.execution.recording import ClaimedTry
from cluster.metastore import connections, datasets, variables
from cluster.metastore.engine import READ_ONLY
from cluster.metastore.models import XCOM, DagRun, TaskInstance, XCom
from cluster.sdk.runtime import Connection, TriggeredRun, TriggerRequest
from cluster.sdk.xcom_arg import XCOM_RETURN_KEY

SessionFactory = Callable[[], sessionmaker[Session]]

_ONE_KEY = (
    XCOM.c.dag_id == bindparam("dag_id"),
    XCOM.c.run_id == bindparam("run_id"),
    XCOM.c.task_id == bindparam("task_id"),
    XCOM.c.key == bindparam("key"),
)
#: a task's value: its own (``map_index = -1``), or the first of a mapped task's.
#: Statements built once: building one per pull cost more than running it (a task
#: mapped 1,000 times pulls its input 1,000 times)
_FIRST_VALUE = (
    select(XCOM.c.map_index, XCOM.c.value).where(*_ONE_KEY).order_by(XCOM.c.map_index).limit(1)
)
_VALUE_AT = select(XCOM.c.map_index, XCOM.c.value).where(
    *_ONE_KEY, XCOM.c.map_index == bindparam("map_index")
)


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
        #: the values the run's mappings expand over, read with the claim (JSON text)
        self._mapped_inputs = dict(claimed.mapped_inputs)
        #: inside a mapped task group: the instances of upstream tasks in the same group
        #: whose values this instance reads (set by the runner)
        self.upstream_map_indexes: dict[str, int | range] = {}

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
        """Airflow's semantics: one task id → its value, or for a mapped task all its
        instances' values in map-index order (a :class:`LazyXComSequence`); a list of
        task ids → a list of values. With no task id, this instance's own XCom."""
        dag_id = dag_id or self.dag_id
        if task_ids is None:
            task_ids = self.task_id
            map_indexes = self.map_index if map_indexes is None else map_indexes
        if isinstance(task_ids, str):
            return self._pull_one(dag_id, task_ids, key, map_indexes, default)
        wanted = list(task_ids)
        values = self._pull(dag_id, wanted, key, map_indexes)
        return [v for t in wanted for v in values.get(t, [])]

    def _pull_one(
        self,
        dag_id: str,
        task_id: str,
        key: str,
        map_indexes: int | Iterable[int] | None,
        default: Any,
    ) -> Any:
        if isinstance(map_indexes, Iterable):
            return self._lazy(dag_id, task_id, key, list(map_indexes))
        if self._is_own(dag_id, task_id, map_indexes) and key in self._pushed:
            return self._pushed[key]
        if self._is_mapped_input(dag_id, task_id, key, map_indexes):
            value = self._mapped_inputs[task_id]
            return None if value is None else json.loads(value)
        params = {"dag_id": dag_id, "run_id": self.run_id, "task_id": task_id, "key": key}
        with self._sessions()() as session:
            connection = session.connection(execution_options=READ_ONLY)
            if map_indexes is None:
                first = connection.execute(_FIRST_VALUE, params).first()
            else:
                first = connection.execute(_VALUE_AT, {**params, "map_index": map_indexes}).first()
        if first is None:
            return default
        if map_indexes is not None or first.map_index < 0:
            return None if first.value is None else json.loads(first.value)
        return self._lazy(dag_id, task_id, key, None)

    def _is_own(self, dag_id: str, task_id: str, map_index: int | None) -> bool:
        return (
            dag_id == self.dag_id
            and task_id == self.task_id
            and map_index in (None, self.map_index)
        )

    def _is_mapped_input(self, dag_id: str, task_id: str, key: str, map_index: int | None) -> bool:
        """Whether the pull is of an unmapped producer's value read with the claim."""
        return (
            task_id in self._mapped_inputs
            and dag_id == self.dag_id
            and key == XCOM_RETURN_KEY
            and map_index in (None, -1)
        )

    def _lazy(
        self, dag_id: str, task_id: str, key: str, map_indexes: list[int] | None
    ) -> LazyXComSequence:
        return LazyXComSequence(
            self._sessions,
            dag_id=dag_id,
            run_id=self.run_id,
            task_id=task_id,
            key=key,
            map_indexes=map_indexes,
        )

    def _pull(
        self, dag_id: str, task_ids: list[str], key: str, map_indexes: int | Iterable[int] | None
    ) -> dict[str, list[Any]]:
        """Every value of ``task_ids``, by task, in map-index order (one query)."""
        found: dict[str, list[Any]] = {}
        own = self._is_own(dag_id, self.task_id, None) and self.task_id in task_ids
        if own and key in self._pushed:
            found[self.task_id] = [self._pushed[key]]
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
            connection = session.connection(execution_options=READ_ONLY)
            for task_id, value in connection.execute(query.order_by(XCom.map_index)):
                found.setdefault(task_id, []).append(None if value is None else json.loads(value))
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

    def get_dataset_events(self, **query: Any) -> list[dict[str, Any]]:
        """Events for ``inlet_events`` (``uri=`` or ``alias=``) and
        ``triggering_dataset_events`` (``dag_id=``, ``run_id=``)."""
        with self._sessions()() as session:
            return datasets.read_events(session, **query)

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

    def trigger_dag_run(self, request: TriggerRequest) -> TriggeredRun:
        """Through :func:`cluster.actions.trigger`, as a user's trigger (audited as ``task``)."""
        actor = actions.Actor(username=request.by, source="task")
        with self._sessions()() as session, session.begin():
            existing = _find_run(session, request.dag_id, request.run_id)
            if existing is None:
                run = actions.trigger(
                    session,
                    request.dag_id,
                    actor=actor,
                    conf=request.conf,
                    run_id=request.run_id,
                    logical_date=request.logical_date,
                )
                session.flush()
                return _triggered(run)
            if request.reset:
                dag = actions.load_dag(session, request.dag_id)
                actions.clear(
                    session, request.dag_id, [request.run_id], set(dag.tasks), actor=actor
                )
                session.flush()
                session.refresh(existing)
                return _triggered(existing)
            if request.existing_ok:
                return _triggered(existing)
            raise AlreadyExistsError(
                f"DAG run '{request.run_id}' of '{request.dag_id}' already exists"
            )

    def get_dag_run(self, dag_id: str, run_id: str) -> TriggeredRun | None:
        with self._sessions()() as session:
            run = _find_run(session, dag_id, run_id)
            return _triggered(run) if run is not None else None

    def count_external(
        self,
        dag_id: str,
        task_ids: Sequence[str] | None,
        logical_dates: Sequence[datetime],
        states: Sequence[str],
    ) -> int:
        if task_ids is None:
            query = select(func.count()).where(
                DagRun.dag_id == dag_id,
                DagRun.logical_date.in_(list(logical_dates)),
                DagRun.state.in_(list(states)),
            )
        else:
            query = (
                select(func.count())
                .select_from(TaskInstance)
                .join(
                    DagRun,
                    (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id),
                )
                .where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id.in_(list(task_ids)),
                    TaskInstance.state.in_(list(states)),
                    DagRun.logical_date.in_(list(logical_dates)),
                )
            )
        with self._sessions()() as session:
            return int(session.scalar(query) or 0)

    def task_group_task_ids(self, dag_id: str, group_id: str) -> list[str]:
        with self._sessions()() as session:
            dag = actions.load_dag(session, dag_id)
        if group_id not in dag.task_groups:
            # Airflow's fallback: the group's id as a task id, so the sensor waits and
            # times out (or sees it appear) instead of failing at once
            return [group_id]
        return [
            t.task_id
            for t in dag.tasks.values()
            if _in_group(dag.task_groups, t.task_group_id, group_id)
        ]


def _in_group(groups: dict[str, Any], group: str | None, wanted: str) -> bool:
    while group is not None:
        if group == wanted:
            return True
        group = groups.get(group, {}).get("parent")
    return False


def _find_run(session: Session, dag_id: str, run_id: str) -> DagRun | None:
    return session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def _triggered(run: DagRun) -> TriggeredRun:
    return TriggeredRun(
        dag_id=run.dag_id, run_id=run.run_id, logical_date=run.logical_date, state=str(run.state)
    )


def lazy(factory: Callable[[], sessionmaker[Session]]) -> SessionFactory:
    """Create the child's own session factory on first use, then reuse it."""
    return functools.cache(factory)
