"""The tables of data-aware scheduling (Airflow 2.10's, slimmed).

``dataset`` and ``dataset_alias`` are keyed by a sha256 of the URI / name, so the
unique index fits MySQL's key limit whatever the URI's length. ``dataset_event`` is
written in the transaction that records the producing try's success;
``dataset_dag_run_queue`` holds one row per (dataset, consumer) until the consumer's
run is created, and is consumed in that same fenced transaction: a repeated event does
not add a row, and a run is never created twice from the same rows.
``dagrun_dataset_event`` links a ``dataset_triggered`` run to the events it saw.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cluster.metastore.base import MYSQL_TABLE_ARGS, Base
from cluster.metastore.coltypes import JsonText, UtcDateTime, string_id, utcnow

#: an id that is BIGINT where the table may grow without bound; SQLite only
#: auto-increments an INTEGER primary key
EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class DatasetRow(Base):
    """A dataset known from a DAG's outlets or schedule, or from an event."""

    __tablename__ = "dataset"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(3000))
    uri_hash: Mapped[str] = mapped_column(String(64), unique=True)
    extra: Mapped[Any] = mapped_column(JsonText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    #: no DAG references it any more (kept for its events)
    is_orphaned: Mapped[bool] = mapped_column(Boolean, default=False)


class DatasetAliasRow(Base):
    """A dataset alias; what it has resolved to is in ``dataset_alias_dataset``."""

    __tablename__ = "dataset_alias"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(3000))
    name_hash: Mapped[str] = mapped_column(String(64), unique=True)


class DatasetAliasDataset(Base):
    """An alias resolved to a dataset by an event emitted through it."""

    __tablename__ = "dataset_alias_dataset"
    __table_args__ = (Index("idx_dataset_alias_dataset_dataset", "dataset_id"), MYSQL_TABLE_ARGS)

    alias_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_alias.id", ondelete="CASCADE"), primary_key=True
    )
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), primary_key=True
    )


class DatasetEvent(Base):
    """One update of a dataset: by a task's success, or posted through the REST API."""

    __tablename__ = "dataset_event"
    __table_args__ = (
        Index("idx_dataset_event_dataset_timestamp", "dataset_id", "timestamp"),
        Index("idx_dataset_event_timestamp", "timestamp"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    extra: Mapped[Any] = mapped_column(JsonText, nullable=True)
    source_dag_id: Mapped[str | None] = mapped_column(string_id())
    source_task_id: Mapped[str | None] = mapped_column(string_id())
    source_run_id: Mapped[str | None] = mapped_column(string_id())
    source_map_index: Mapped[int | None] = mapped_column(Integer, default=-1)
    #: the alias the task emitted it through, if any
    source_alias_name: Mapped[str | None] = mapped_column(String(3000))
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagScheduleDatasetReference(Base):
    """A consumer: ``dag_id`` is scheduled on this dataset (written when the DAG is parsed)."""

    __tablename__ = "dag_schedule_dataset_reference"
    __table_args__ = (Index("idx_dag_schedule_dataset_dag", "dag_id"), MYSQL_TABLE_ARGS)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), primary_key=True
    )
    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagScheduleDatasetAliasReference(Base):
    """A consumer scheduled on an alias: it waits on what the alias resolves to."""

    __tablename__ = "dag_schedule_dataset_alias_reference"
    __table_args__ = (Index("idx_dag_schedule_alias_dag", "dag_id"), MYSQL_TABLE_ARGS)

    alias_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_alias.id", ondelete="CASCADE"), primary_key=True
    )
    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TaskOutletDatasetReference(Base):
    """A producer: ``dag_id.task_id`` lists this dataset in its outlets."""

    __tablename__ = "task_outlet_dataset_reference"
    __table_args__ = (Index("idx_task_outlet_dataset_dag", "dag_id"), MYSQL_TABLE_ARGS)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), primary_key=True
    )
    dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    task_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DatasetDagRunQueue(Base):
    """An event of ``dataset_id`` waiting for consumer ``target_dag_id``'s next run."""

    __tablename__ = "dataset_dag_run_queue"
    __table_args__ = (Index("idx_dataset_dag_run_queue_target", "target_dag_id"), MYSQL_TABLE_ARGS)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("dataset.id", ondelete="CASCADE"), primary_key=True
    )
    target_dag_id: Mapped[str] = mapped_column(string_id(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DagRunDatasetEvent(Base):
    """An event that triggered (or fed) a ``dataset_triggered`` run."""

    __tablename__ = "dagrun_dataset_event"
    __table_args__ = (Index("idx_dagrun_dataset_event_event", "event_id"), MYSQL_TABLE_ARGS)

    dag_run_id: Mapped[int] = mapped_column(
        ForeignKey("dag_run.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        EVENT_ID, ForeignKey("dataset_event.id", ondelete="CASCADE"), primary_key=True
    )


DATASET_TABLES = (
    "dataset",
    "dataset_alias",
    "dataset_alias_dataset",
    "dataset_event",
    "dag_schedule_dataset_reference",
    "dag_schedule_dataset_alias_reference",
    "task_outlet_dataset_reference",
    "dataset_dag_run_queue",
    "dagrun_dataset_event",
)
