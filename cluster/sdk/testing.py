"""In-memory stand-ins for the runner's services: XComs, a task instance, variables.

Unit tests and ``tradewind dags test`` run tasks with these instead of a metastore.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cluster.errors import AlreadyExistsError, NotFoundError
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.dates import utcnow
from cluster.sdk.runtime import Connection, TriggeredRun, TriggerRequest
from cluster.sdk.xcom_arg import XCOM_RETURN_KEY

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator

_MISSING = object()


@dataclass
class InMemoryXComStore:
    """XCom values keyed by ``(dag_id, run_id, task_id, map_index, key)``."""

    values: dict[tuple[str, str, str, int, str], Any] = field(default_factory=dict)

    def push(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str, value: Any
    ) -> None:
        self.values[(dag_id, run_id, task_id, map_index, key)] = value

    def get(self, dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> Any:
        return self.values.get((dag_id, run_id, task_id, map_index, key), _MISSING)


@dataclass
class InMemoryTaskInstance:
    """A :class:`~cluster.sdk.context.TaskInstanceHandle` over an in-memory store.

    ``skipped`` records every task id passed to :meth:`skip_downstream`.
    """

    dag_id: str
    task_id: str
    run_id: str = "manual__test"
    map_index: int = -1
    try_number: int = 1
    max_tries: int = 0
    hostname: str = field(default_factory=socket.gethostname)
    start_date: datetime | None = None
    sensor_started_at: datetime | None = None
    store: InMemoryXComStore = field(default_factory=InMemoryXComStore)
    skipped: list[str] = field(default_factory=list)
    #: in a mapped task group: which instances of same-group upstream tasks to read
    upstream_map_indexes: dict[str, int | range] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.store.push(self.dag_id, self.run_id, self.task_id, self.map_index, key, value)

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = XCOM_RETURN_KEY,
        dag_id: str | None = None,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """Airflow's semantics: one id → one value (or ``default``), a list → found values."""
        dag = dag_id or self.dag_id
        if map_indexes is None:
            index = self.map_index if task_ids is None else -1
        elif isinstance(map_indexes, int):
            index = map_indexes
        else:
            index = next(iter(map_indexes), -1)
        if task_ids is None or isinstance(task_ids, str):
            value = self.store.get(dag, self.run_id, task_ids or self.task_id, index, key)
            return default if value is _MISSING else value
        values = [self.store.get(dag, self.run_id, t, index, key) for t in task_ids]
        return [v for v in values if v is not _MISSING]

    def skip_downstream(self, task_ids: Iterable[str]) -> None:
        self.skipped.extend(t for t in task_ids if t not in self.skipped)


@dataclass
class InMemoryRuntime:
    """:class:`~cluster.sdk.runtime.RuntimeServices` over dicts.

    Other DAGs are ``runs`` (``(dag_id, run_id)`` → run), ``states``
    (``(dag_id, task_id or None for the run, logical_date)`` → state) and ``groups``
    (``(dag_id, group_id)`` → task ids).
    """

    variables: dict[str, str] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    runs: dict[tuple[str, str], TriggeredRun] = field(default_factory=dict)
    states: dict[tuple[str, str | None, datetime], str] = field(default_factory=dict)
    groups: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    triggered: list[TriggerRequest] = field(default_factory=list)

    def get_variable(self, key: str) -> str | None:
        return self.variables.get(key)

    def set_variable(self, key: str, value: str) -> None:
        self.variables[key] = value

    def delete_variable(self, key: str) -> None:
        self.variables.pop(key, None)

    def get_connection(self, conn_id: str) -> Connection:
        if conn_id not in self.connections:
            raise NotFoundError(f"The conn_id `{conn_id}` isn't defined")
        return self.connections[conn_id]

    def trigger_dag_run(self, request: TriggerRequest) -> TriggeredRun:
        key = (request.dag_id, request.run_id)
        if key in self.runs and not (request.reset or request.existing_ok):
            raise AlreadyExistsError(f"DAG run '{request.run_id}' of '{request.dag_id}' exists")
        if key not in self.runs or request.reset:
            self.triggered.append(request)
            self.runs[key] = TriggeredRun(
                request.dag_id, request.run_id, request.logical_date, "queued"
            )
        return self.runs[key]

    def get_dag_run(self, dag_id: str, run_id: str) -> TriggeredRun | None:
        return self.runs.get((dag_id, run_id))

    def count_external(
        self,
        dag_id: str,
        task_ids: Sequence[str] | None,
        logical_dates: Sequence[datetime],
        states: Sequence[str],
    ) -> int:
        wanted = [None] if task_ids is None else list(task_ids)
        return sum(
            self.states.get((dag_id, task_id, when)) in states
            for task_id in wanted
            for when in logical_dates
        )

    def task_group_task_ids(self, dag_id: str, group_id: str) -> list[str]:
        return list(self.groups.get((dag_id, group_id), [group_id]))


def make_context(
    task: BaseOperator,
    *,
    logical_date: datetime | None = None,
    run_id: str = "manual__test",
    conf: dict[str, Any] | None = None,
    store: InMemoryXComStore | None = None,
    ti: InMemoryTaskInstance | None = None,
) -> dict[str, Any]:
    """A context for running ``task`` once in memory, as a manual run at ``logical_date``."""
    when = logical_date or utcnow()
    dag = task.dag
    run = RunInfo(
        dag_id=task.dag_id,
        run_id=run_id,
        logical_date=when,
        data_interval_start=when,
        data_interval_end=when,
        conf=dict(conf or {}),
        start_date=when,
    )
    handle = ti or InMemoryTaskInstance(
        dag_id=task.dag_id,
        task_id=task.task_id,
        run_id=run_id,
        start_date=utcnow(),
        store=store or InMemoryXComStore(),
    )
    return build_context(dag=dag, task=task, ti=handle, dag_run=run)
