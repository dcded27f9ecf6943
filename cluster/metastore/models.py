"""ORM models of every metastore table.

The models are plain rows: no behaviour, no state machine (that is
:mod:`cluster.metastore.transitions`), no execution. The indexes exist for the
scheduler's hot queries, which all lead with an unfinished ``state`` so that the loop
costs the same with a million finished task instances as with none. The initial
migration creates exactly this schema; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    desc,
)
from sqlalchemy.orm import Mapped, mapped_column

from cluster.metastore import dataset_models  # noqa: F401  (registers the dataset tables)
from cluster.metastore.base import MYSQL_TABLE_ARGS as MYSQL_TABLE_ARGS
from cluster.metastore.base import NAMING_CONVENTION as NAMING_CONVENTION
from cluster.metastore.base import Base as Base
from cluster.metastore.coltypes import (
    JsonText,
    UtcDateTime,
    long_text,
    string_id,
    string_key,
    utcnow,
)
from cluster.metastore.trigger_models import Trigger as Trigger

DEFAULT_POOL = "default_pool"


class Dag(Base):
    """One DAG as last parsed; the scheduler asks which are due via ``next_dagrun_create_after``."""

    __tablename__ = "dag"
    __table_args__ = (
        Index(
            "idx_dag_next_dagrun_create_after", "is_paused", "is_active", "next_dagrun_create_after"
        ),
        MYSQL_TABLE_ARGS,
    )

    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    fileloc: Mapped[str] = mapped_column(String(2000))
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_parsed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    timetable_summary: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[Any] = mapped_column(JsonText, nullable=True)
    owners: Mapped[str | None] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(Text)
    max_active_runs: Mapped[int | None] = mapped_column(Integer)
    max_active_tasks: Mapped[int | None] = mapped_column(Integer)
    next_dagrun: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_dagrun_create_after: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SerializedDagRow(Base):
    """The JSON of a :class:`cluster.dagfiles.serialized.SerializedDag`."""

    __tablename__ = "serialized_dag"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    fileloc: Mapped[str] = mapped_column(String(2000))
    data: Mapped[str] = mapped_column(long_text())
    fingerprint: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class DagCode(Base):
    """The source of one DAG file, keyed by the sha256 hex of its path."""

    __tablename__ = "dag_code"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    fileloc_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    fileloc: Mapped[str] = mapped_column(String(2000))
    fingerprint: Mapped[str] = mapped_column(String(64))
    source_code: Mapped[str] = mapped_column(long_text())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ImportErrorRow(Base):
    """Why a DAG file failed to import; one row per file (unique on the path's hash)."""

    __tablename__ = "import_error"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    filename: Mapped[str] = mapped_column(String(2000))
    filename_hash: Mapped[str] = mapped_column(String(64), unique=True)
    message: Mapped[str] = mapped_column(Text)
    stacktrace: Mapped[str | None] = mapped_column(long_text())
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagRun(Base):
    """One run of a DAG for one logical date (or one manual trigger)."""

    __tablename__ = "dag_run"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        Index("idx_dag_run_dag_id_state", "dag_id", "state"),
        Index("idx_dag_run_state", "state"),
        Index("idx_dag_run_dag_id_logical_date", "dag_id", "logical_date"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(string_id())
    run_id: Mapped[str] = mapped_column(string_id())
    logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    data_interval_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    data_interval_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_type: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    conf: Mapped[Any] = mapped_column(JsonText, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_scheduling_decision: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    clear_number: Mapped[int] = mapped_column(Integer, default=0)
    created_by_epoch: Mapped[int | None] = mapped_column(Integer)
    #: free text a user wrote about the run (Airflow's dag_run_note; migration 0008)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: when the row last changed (Airflow's column, for the API's updated_at filters; 0009)
    updated_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime, default=utcnow, onupdate=utcnow
    )


#: the queueing read walks each open pool's tries in this order and stops at its limit;
#: DAGs at their limit are passed over on the index (migrations 0010, 0011)
_PRIORITY: Any = desc("priority_weight")
_QUEUEING_ORDER = ("state", "pool", _PRIORITY, "run_logical_date", "dag_id")


class TaskInstance(Base):
    """The current try of one task in one run; past tries are in ``task_instance_history``.

    ``try_number`` is 0 before the first try; the scheduler increments it when it
    queues a try, and the runner claims ``queued → running`` only for that number.
    """

    __tablename__ = "task_instance"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_instance_dag_run",
            ondelete="CASCADE",
        ),
        Index("idx_ti_dag_run_state", "dag_id", "run_id", "state"),
        Index("idx_ti_state_queued_at", "state", "queued_at"),
        Index("idx_ti_state_heartbeat_at", "state", "heartbeat_at"),
        Index("idx_ti_state_trigger_timeout", "state", "trigger_timeout"),
        Index("idx_task_instance_trigger_id", "trigger_id"),
        Index("idx_ti_state_pool_priority", *_QUEUEING_ORDER),
        MYSQL_TABLE_ARGS,
    )

    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    run_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    task_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1)
    #: the run's logical date, copied when the row is made (a run's never changes): ties
    #: on priority go to the oldest run, and the order is then all on this table's index
    run_logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    pool: Mapped[str] = mapped_column(string_key(256), default=DEFAULT_POOL)
    pool_slots: Mapped[int] = mapped_column(Integer, default=1)
    queue: Mapped[str] = mapped_column(String(256), default="default")
    priority_weight: Mapped[int] = mapped_column(Integer, default=1)
    operator: Mapped[str | None] = mapped_column(String(1000))
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[float | None] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    queued_by_epoch: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sensor_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    rendered_fields: Mapped[Any] = mapped_column(JsonText, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime, default=utcnow, onupdate=utcnow
    )
    #: a mapped instance's display name: its ``map_index_template``, rendered
    rendered_map_index: Mapped[str | None] = mapped_column(String(250), nullable=True)
    #: deferral (migration 0006): the trigger the try waits on, when it times out, and
    #: where it resumes (``__fail__``: the trigger failed or timed out)
    trigger_id: Mapped[int | None] = mapped_column(Integer)
    trigger_timeout: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_method: Mapped[str | None] = mapped_column(String(1000))
    next_kwargs: Mapped[Any] = mapped_column(JsonText, nullable=True)
    #: free text a user wrote about the instance (Airflow's task_instance_note; migration 0008)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskInstanceHistory(Base):
    """One finished (or abandoned) try of a task instance."""

    __tablename__ = "task_instance_history"
    __table_args__ = (
        Index("idx_tih_dag_run_task", "dag_id", "run_id", "task_id", "map_index", "try_number"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(string_id())
    run_id: Mapped[str] = mapped_column(string_id())
    task_id: Mapped[str] = mapped_column(string_id())
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration: Mapped[float | None] = mapped_column()
    hostname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    queued_by_epoch: Mapped[int | None] = mapped_column(Integer)
    operator: Mapped[str | None] = mapped_column(String(1000))


class XCom(Base):
    """A value pushed by a task; ``value`` is JSON text serialized by the caller (size checks)."""

    __tablename__ = "xcom"
    __table_args__ = (
        ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id", "map_index"],
            [
                "task_instance.dag_id",
                "task_instance.run_id",
                "task_instance.task_id",
                "task_instance.map_index",
            ],
            name="fk_xcom_task_instance",
            ondelete="CASCADE",
        ),
        Index("idx_xcom_dag_run", "dag_id", "run_id"),
        MYSQL_TABLE_ARGS,
    )

    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    run_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    task_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True, default=-1)
    key: Mapped[str] = mapped_column(string_id(), primary_key=True)
    value: Mapped[str | None] = mapped_column(long_text())
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TaskMap(Base):
    """The length (and dict keys) of a return value that a mapped task expands over,
    per task instance that pushed it (Airflow's ``task_map``; migration 0003)."""

    __tablename__ = "task_map"
    __table_args__ = (
        CheckConstraint("length >= 0", name="ck_task_map_length_not_negative"),
        ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id", "map_index"],
            [
                "task_instance.dag_id",
                "task_instance.run_id",
                "task_instance.task_id",
                "task_instance.map_index",
            ],
            name="fk_task_map_task_instance",
            ondelete="CASCADE",
        ),
        MYSQL_TABLE_ARGS,
    )

    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    run_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    task_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    map_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    keys: Mapped[str | None] = mapped_column(Text, nullable=True)


class SlotPool(Base):
    """A named number of slots shared by the task instances assigned to it."""

    __tablename__ = "slot_pool"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    pool: Mapped[str] = mapped_column(string_key(256), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)


class Variable(Base):
    """A key/value setting for DAGs; ``val`` is Fernet-encrypted when ``is_encrypted``."""

    __tablename__ = "variable"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    key: Mapped[str] = mapped_column(string_key(250), primary_key=True)
    val: Mapped[str | None] = mapped_column(long_text())
    description: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=True)


class Connection(Base):
    """How to reach an external system; ``password`` and ``extra`` are Fernet-encrypted."""

    __tablename__ = "connection"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    conn_id: Mapped[str] = mapped_column(string_key(250), primary_key=True)
    conn_type: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(500))
    schema: Mapped[str | None] = mapped_column(String(500))
    login: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A person who signs in to the web UI or the API."""

    __tablename__ = "user"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(string_key(256), unique=True)
    email: Mapped[str | None] = mapped_column(String(256))
    password_hash: Mapped[str] = mapped_column(String(512))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token for the REST API; only its sha256 is stored."""

    __tablename__ = "api_token"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditLog(Base):
    """Who did what, when: user actions from the CLI, the UI and the API."""

    __tablename__ = "audit_log"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(60))
    username: Mapped[str | None] = mapped_column(String(256))
    dag_id: Mapped[str | None] = mapped_column(string_id())
    run_id: Mapped[str | None] = mapped_column(string_id())
    task_id: Mapped[str | None] = mapped_column(string_id())
    extra: Mapped[Any] = mapped_column(JsonText, nullable=True)


class SchedulerLease(Base):
    """The one row (``id = 1``) holding the leader's fencing epoch."""

    __tablename__ = "scheduler_lease"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    leader_host: Mapped[str | None] = mapped_column(String(256))
    leader_pid: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Component(Base):
    """A running scheduler, webserver or worker process and its last heartbeat."""

    __tablename__ = "component"
    __table_args__ = (
        UniqueConstraint("kind", "host", "pid", name="uq_component_kind_host_pid"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(20), default="running")
    extra: Mapped[Any] = mapped_column(JsonText, nullable=True)


class ChangeCounter(Base):
    """How often the rows that the DAGs page shows changed, per table.

    Database triggers (migration 0002) bump a table's counter in the transaction that
    changes such a row, so a webserver knows a page it built is still exact by reading
    these few rows (:mod:`cluster.metastore.change_counters`). Nothing writes it directly.
    """

    __tablename__ = "change_counter"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    changes: Mapped[int] = mapped_column(BigInteger, default=0)


def table_of(model: type[Base]) -> Table:
    """``model``'s Core table, typed."""
    return cast(Table, model.__table__)


# Core tables of the hot paths (scheduler loop, claims, records): there, statements run
# on the session's connection, as the ORM's execution path costs more than their SQL
TASK_INSTANCE = table_of(TaskInstance)
TASK_INSTANCE_HISTORY = table_of(TaskInstanceHistory)
DAG_RUN = table_of(DagRun)
XCOM = table_of(XCom)
TASK_MAP = table_of(TaskMap)


class CallbackRequest(Base):
    """A DAG-level callback the scheduler decided on (a run ended), to run once.

    Written in the scheduler's fenced transaction that ends the run; run by the DAG
    processor, which claims it with one compare-and-set (``pending → running``).
    """

    __tablename__ = "callback_request"
    __table_args__ = (Index("idx_callback_request_state", "state"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(string_id())
    run_id: Mapped[str] = mapped_column(string_id())
    #: ``on_success_callback`` or ``on_failure_callback``
    kind: Mapped[str] = mapped_column(String(30))
    #: Airflow's reason: ``success``, ``task_failure`` or ``timed_out``
    reason: Mapped[str] = mapped_column(String(30))
    #: ``pending``, ``running``, ``success`` or ``failed``
    state: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(256))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message: Mapped[str | None] = mapped_column(String(1000))


class SlaMiss(Base):
    """A task's SLA missed for one logical date (Airflow's ``sla_miss``).

    Keyed as Airflow's, so the DAG processor that records a miss inserts it unless
    present: two processors, or an old and a new leader's, record it once.
    """

    __tablename__ = "sla_miss"
    __table_args__ = (Index("sm_dag", "dag_id"), MYSQL_TABLE_ARGS)

    task_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    execution_date: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    email_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime)
    description: Mapped[str | None] = mapped_column(Text)
    notification_sent: Mapped[bool] = mapped_column(Boolean, default=False)
