"""The services task code reaches at run time: variables, connections and other DAGs.

The SDK holds only the interface. The runner (or a test) installs an implementation
with :func:`set_runtime` before running task code; ``Variable.get`` and
``Connection.get`` then go through it. No metastore code lives here.

Task code that starts a process group of its own (a Bash command in its own session)
says so with :func:`process_group_started` and :func:`process_group_ended`: a pool
process that is killed outright (SIGKILL, the OOM killer) cannot stop such a group
itself, so whoever :func:`watch_process_groups` (its executor) kills it instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from cluster.errors import TradewindError
from cluster.sdk.params import NOTSET


class RuntimeNotConnected(TradewindError):
    """Task code asked for a variable or connection, but no metastore is connected."""


class RuntimeServices(Protocol):
    """What the runner provides to task code."""

    def get_variable(self, key: str) -> str | None: ...

    def set_variable(self, key: str, value: str) -> None: ...

    def delete_variable(self, key: str) -> None: ...

    def get_connection(self, conn_id: str) -> Connection:
        """:raises NotFoundError: when no connection has that id."""
        ...

    def trigger_dag_run(self, request: TriggerRequest) -> TriggeredRun:
        """Create a manual run of another DAG (or find, or reset, an existing one).

        :raises AlreadyExistsError: when the run exists and the request neither
            resets nor accepts it.
        :raises NotFoundError: when the DAG is unknown.
        """
        ...

    def get_dag_run(self, dag_id: str, run_id: str) -> TriggeredRun | None: ...

    def count_external(
        self,
        dag_id: str,
        task_ids: Sequence[str] | None,
        logical_dates: Sequence[datetime],
        states: Sequence[str],
    ) -> int:
        """Task instances of ``task_ids`` (or runs, when ``None``) of ``dag_id`` at
        ``logical_dates`` whose state is one of ``states``."""
        ...

    def task_group_task_ids(self, dag_id: str, group_id: str) -> list[str]:
        """The tasks of ``dag_id`` inside task group ``group_id`` (nested groups included);
        for a group the DAG does not have, ``[group_id]`` (Airflow's fallback).

        :raises NotFoundError: when the DAG is unknown.
        """
        ...


@dataclass(frozen=True)
class TriggerRequest:
    """What ``TriggerDagRunOperator`` asks for; ``by`` names the triggering try."""

    dag_id: str
    run_id: str
    logical_date: datetime
    conf: dict[str, Any]
    by: str
    #: clear an existing run instead of failing (``reset_dag_run``)
    reset: bool = False
    #: return an existing run as it is (a later poke of a rescheduled trigger)
    existing_ok: bool = False


@dataclass(frozen=True)
class TriggeredRun:
    """A run of another DAG as task code sees it."""

    dag_id: str
    run_id: str
    logical_date: datetime | None
    state: str


class _Holder:
    services: RuntimeServices | None = None


def set_runtime(services: RuntimeServices | None) -> None:
    """Install the services task code will use (``None`` disconnects)."""
    _Holder.services = services


class _Groups:
    watcher: Callable[[int, bool], None] | None = None


def watch_process_groups(watcher: Callable[[int, bool], None] | None) -> None:
    """Install who learns ``(pgid, running)`` of each process group task code starts
    (``True``) or saw end (``False``); ``None`` stops watching."""
    _Groups.watcher = watcher


def process_group_started(pgid: int) -> None:
    """Task code started process group ``pgid``: it must not outlive this process."""
    if _Groups.watcher is not None:
        _Groups.watcher(pgid, True)


def process_group_ended(pgid: int) -> None:
    """Process group ``pgid`` that task code started has ended (its leader was reaped)."""
    if _Groups.watcher is not None:
        _Groups.watcher(pgid, False)


def current_runtime() -> RuntimeServices:
    """:raises RuntimeNotConnected: outside a runner, or before :func:`set_runtime`."""
    if _Holder.services is None:
        raise RuntimeNotConnected(
            "no metastore is connected: variables and connections are only available "
            "while Tradewind runs a task (or after cluster.sdk.runtime.set_runtime())"
        )
    return _Holder.services


@dataclass(frozen=True)
class Connection:
    """A connection's fields, like Airflow's ``Connection`` (``extra`` is already a dict)."""

    conn_id: str
    conn_type: str = ""
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return dict(self.extra)

    def get_uri(self) -> str:
        """``type://login:password@host:port/schema?extra``, quoted like Airflow."""
        uri = f"{self.conn_type.replace('_', '-')}://"
        if self.login is not None or self.password is not None:
            uri += quote(self.login or "", safe="")
            if self.password is not None:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        uri += quote(self.host or "", safe="")
        if self.port is not None:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        if self.extra:
            uri += "?" + urlencode(self.extra)
        return uri

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """Look a connection up through the runtime.

        :raises NotFoundError: when it does not exist.
        """
        return current_runtime().get_connection(conn_id)

    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> Connection:
        return cls.get(conn_id)


class BaseHook:
    """The connection lookup of Airflow's ``BaseHook``."""

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)


class Variable:
    """Key/value settings kept in the metastore, like Airflow's ``Variable``."""

    @staticmethod
    def get(key: str, default_var: Any = NOTSET, deserialize_json: bool = False) -> Any:
        """Return the variable, JSON-decoded if asked.

        :raises KeyError: when it does not exist and no ``default_var`` is given.
        """
        value = current_runtime().get_variable(key)
        if value is None:
            if default_var is NOTSET:
                raise KeyError(f"Variable {key} does not exist")
            return default_var
        return json.loads(value) if deserialize_json else value

    @staticmethod
    def set(key: str, value: Any, serialize_json: bool = False) -> None:
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        current_runtime().set_variable(key, text)

    @staticmethod
    def delete(key: str) -> None:
        current_runtime().delete_variable(key)

    @staticmethod
    def setdefault(key: str, default: Any, deserialize_json: bool = False) -> Any:
        value = Variable.get(key, default_var=None, deserialize_json=deserialize_json)
        if value is None:
            Variable.set(key, default, serialize_json=deserialize_json)
            return default
        return value
