"""The template context of a running task, and how task code gets at it.

The runner builds the context with :func:`build_context`, enters
``with execution_context(ctx):`` around rendering and ``execute``, and task code may
call :func:`get_current_context`. Keys and formats are Airflow's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cluster.errors import NotFoundError, TradewindError
from cluster.sdk.dataset_events import (
    InletEventAccessors,
    OutletEventAccessors,
    TriggeringDatasetEvents,
)
from cluster.sdk.macros import FILTERS, build_macros
from cluster.sdk.params import NOTSET
from cluster.sdk.runtime import Connection, Variable

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator
    from cluster.sdk.dag import DAG


@dataclass(frozen=True)
class RunInfo:
    """The DAG run a task instance belongs to (``context["dag_run"]``)."""

    dag_id: str
    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    run_type: str = "manual"
    conf: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    #: ``None``: a manual run is external. ``dags test`` says ``False``: Airflow's test
    #: run is manual but not externally triggered (so ``LatestOnlyOperator`` may skip)
    triggered_externally: bool | None = None

    @property
    def execution_date(self) -> datetime:
        return self.logical_date

    @property
    def external_trigger(self) -> bool:
        if self.triggered_externally is not None:
            return self.triggered_externally
        return self.run_type == "manual"


class TaskInstanceHandle(Protocol):
    """What task code may do with its own task instance (``context["ti"]``).

    The runner implements it over the metastore; :mod:`cluster.sdk.testing` in memory.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    max_tries: int
    hostname: str
    start_date: datetime | None
    #: when the first poke of this sensor started; reschedule-mode timeouts count from it
    sensor_started_at: datetime | None

    def xcom_push(self, key: str, value: Any) -> None: ...

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = "return_value",
        dag_id: str | None = None,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """A str ``task_ids`` gives one value, a list gives a list, ``None`` this task."""
        ...

    def skip_downstream(self, task_ids: Iterable[str]) -> None:
        """Mark those task instances of this run ``skipped`` (branching, short-circuit)."""
        ...


class NoTaskContext(TradewindError):
    """``get_current_context()`` was called outside a running task."""


class VariableAccessor:
    """``var.value.key`` / ``var.json.key`` in templates: reads through ``Variable.get``."""

    def __init__(self, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._json)

    def get(self, key: str, default_var: Any = NOTSET) -> Any:
        return Variable.get(key, default_var=default_var, deserialize_json=self._json)


class ConnectionAccessor:
    """``conn.my_conn.host`` in templates: looks the connection up at access time."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return Connection.get(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        try:
            return Connection.get(conn_id)
        except NotFoundError:
            return default_conn


def resolve_params(
    dag: DAG | None, task: BaseOperator | None, conf: Mapping[str, Any]
) -> dict[str, Any]:
    """DAG params, overridden by task params, overridden by the run's conf (Airflow's order)."""
    params: dict[str, Any] = dict(dag.params) if dag is not None else {}
    if task is not None:
        params.update(dict(task.params))
    params.update(conf)
    return params


def build_context(
    *,
    dag: DAG | None,
    task: BaseOperator,
    ti: TaskInstanceHandle,
    dag_run: RunInfo,
    params: Mapping[str, Any] | None = None,
    var: Any = None,
    conn: Any = None,
    prev_data_interval_start_success: datetime | None = None,
    prev_data_interval_end_success: datetime | None = None,
    prev_start_date_success: datetime | None = None,
    test_mode: bool = False,
    templates_dict: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Airflow's template context for one try of one task instance.

    :param params: resolved params; when ``None`` they are computed from the DAG, the
        task and ``dag_run.conf`` (:func:`resolve_params`).
    :param var: the ``var`` object (default: accessors over ``Variable.get``).
    :param conn: the ``conn`` object (default: attribute lookup through the runtime).
    """
    logical = dag_run.logical_date
    ds, ds_nodash, ts, ts_nodash, ts_nodash_with_tz = _date_strings(logical)
    context: dict[str, Any] = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "dag_run": dag_run,
        "run_id": dag_run.run_id,
        "logical_date": logical,
        "execution_date": logical,
        "data_interval_start": dag_run.data_interval_start,
        "data_interval_end": dag_run.data_interval_end,
        "ds": ds,
        "ds_nodash": ds_nodash,
        "ts": ts,
        "ts_nodash": ts_nodash,
        "ts_nodash_with_tz": ts_nodash_with_tz,
        "params": dict(params) if params is not None else resolve_params(dag, task, dag_run.conf),
        "var": var
        if var is not None
        else {
            "value": VariableAccessor(deserialize_json=False),
            "json": VariableAccessor(deserialize_json=True),
        },
        "conn": conn if conn is not None else ConnectionAccessor(),
        "macros": build_macros(dag.user_defined_macros if dag is not None else None),
        "prev_data_interval_start_success": prev_data_interval_start_success,
        "prev_data_interval_end_success": prev_data_interval_end_success,
        "prev_start_date_success": prev_start_date_success,
        "task_instance_key_str": f"{dag_run.dag_id}__{task.task_id}__{ds_nodash}",
        "test_mode": test_mode,
        "map_index_template": None,
        "expanded_ti_count": None,
        "inlets": list(_as_list(task.inlets)),
        "outlets": list(_as_list(task.outlets)),
        "outlet_events": OutletEventAccessors(),
        "inlet_events": InletEventAccessors(_as_list(task.inlets)),
        "triggering_dataset_events": TriggeringDatasetEvents(dag_run.dag_id, dag_run.run_id),
    }
    if templates_dict is not None:
        context["templates_dict"] = templates_dict
    return context


_DateStrings = tuple[str | None, str | None, str | None, str | None, str | None]


def _date_strings(logical: datetime | None) -> _DateStrings:
    """``ds``, ``ds_nodash``, ``ts``, ``ts_nodash`` and ``ts_nodash_with_tz`` of ``logical``.

    Every try of a run formats the same logical date, and formatting it is about a
    third of building a context: it is done once per date (:func:`_formatted`).
    """
    if logical is None:
        return None, None, None, None, None
    return _formatted((type(logical), logical, logical.utcoffset()))


@functools.lru_cache(maxsize=64)
def _formatted(key: tuple[type, datetime, timedelta | None]) -> _DateStrings:
    """The date strings of ``key[1]``; its class and UTC offset are part of the key
    because equal datetimes (the same instant) may be of another class or zone, and
    those print differently."""
    logical = key[1]
    return (
        FILTERS["ds"](logical),
        FILTERS["ds_nodash"](logical),
        FILTERS["ts"](logical),
        FILTERS["ts_nodash"](logical),
        FILTERS["ts_nodash_with_tz"](logical),
    )


def _as_list(value: Any) -> list[Any]:
    """``inlets`` / ``outlets`` may be one object or a list, as in Airflow."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


_current: ContextVar[dict[str, Any] | None] = ContextVar("tradewind_task_context", default=None)


@contextmanager
def execution_context(context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Make ``context`` what :func:`get_current_context` returns inside the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def get_current_context() -> dict[str, Any]:
    """The context of the task running now.

    :raises NoTaskContext: outside a running task (e.g. at DAG-file import time).
    """
    context = _current.get()
    if context is None:
        raise NoTaskContext(
            "Current context was requested but no context was found! "
            "Are you running within a Tradewind task? get_current_context() only works "
            "while a task's execute() runs."
        )
    return context
