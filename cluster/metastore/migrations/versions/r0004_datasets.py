"""Datasets: the tables of data-aware scheduling (see :mod:`cluster.metastore.dataset_models`).

Frozen at this revision. Plain tables and indexes, the same on SQLite, MySQL/MariaDB
and PostgreSQL: URIs and alias names are unique through a sha256 column, since a
unique index on a 3000-character utf8mb4 column exceeds MySQL's key limit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import JsonText, UtcDateTime, string_id

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(column: str, table: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], name=name, ondelete="CASCADE")


def upgrade() -> None:
    _create_datasets()
    _create_references()
    op.create_table(
        "dataset_dag_run_queue",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("target_dag_id", string_id(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        _fk("dataset_id", "dataset", "fk_dataset_dag_run_queue_dataset"),
        sa.PrimaryKeyConstraint("dataset_id", "target_dag_id", name="pk_dataset_dag_run_queue"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_dataset_dag_run_queue_target", "dataset_dag_run_queue", ["target_dag_id"])
    op.create_table(
        "dagrun_dataset_event",
        sa.Column("dag_run_id", sa.Integer(), nullable=False),
        sa.Column("event_id", EVENT_ID, nullable=False),
        _fk("dag_run_id", "dag_run", "fk_dagrun_dataset_event_dag_run"),
        _fk("event_id", "dataset_event", "fk_dagrun_dataset_event_dataset_event"),
        sa.PrimaryKeyConstraint("dag_run_id", "event_id", name="pk_dagrun_dataset_event"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_dagrun_dataset_event_event", "dagrun_dataset_event", ["event_id"])


def _create_datasets() -> None:
    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uri", sa.String(3000), nullable=False),
        sa.Column("uri_hash", sa.String(64), nullable=False),
        sa.Column("extra", JsonText(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("is_orphaned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset"),
        sa.UniqueConstraint("uri_hash", name="uq_dataset_uri_hash"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "dataset_alias",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(3000), nullable=False),
        sa.Column("name_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_alias"),
        sa.UniqueConstraint("name_hash", name="uq_dataset_alias_name_hash"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "dataset_alias_dataset",
        sa.Column("alias_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        _fk("alias_id", "dataset_alias", "fk_dataset_alias_dataset_dataset_alias"),
        _fk("dataset_id", "dataset", "fk_dataset_alias_dataset_dataset"),
        sa.PrimaryKeyConstraint("alias_id", "dataset_id", name="pk_dataset_alias_dataset"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_dataset_alias_dataset_dataset", "dataset_alias_dataset", ["dataset_id"])
    op.create_table(
        "dataset_event",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("extra", JsonText(), nullable=True),
        sa.Column("source_dag_id", string_id(), nullable=True),
        sa.Column("source_task_id", string_id(), nullable=True),
        sa.Column("source_run_id", string_id(), nullable=True),
        sa.Column("source_map_index", sa.Integer(), nullable=True),
        sa.Column("source_alias_name", sa.String(3000), nullable=True),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        _fk("dataset_id", "dataset", "fk_dataset_event_dataset"),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_event"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "idx_dataset_event_dataset_timestamp", "dataset_event", ["dataset_id", "timestamp"]
    )
    op.create_index("idx_dataset_event_timestamp", "dataset_event", ["timestamp"])


def _create_references() -> None:
    for table, column, parent, index in (
        ("dag_schedule_dataset_reference", "dataset_id", "dataset", "idx_dag_schedule_dataset_dag"),
        (
            "dag_schedule_dataset_alias_reference",
            "alias_id",
            "dataset_alias",
            "idx_dag_schedule_alias_dag",
        ),
    ):
        op.create_table(
            table,
            sa.Column(column, sa.Integer(), nullable=False),
            sa.Column("dag_id", string_id(), nullable=False),
            sa.Column("created_at", UtcDateTime(), nullable=False),
            _fk(column, parent, f"fk_{table}_{parent}"),
            sa.PrimaryKeyConstraint(column, "dag_id", name=f"pk_{table}"),
            **MYSQL_TABLE_ARGS,
        )
        op.create_index(index, table, ["dag_id"])
    op.create_table(
        "task_outlet_dataset_reference",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("task_id", string_id(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        _fk("dataset_id", "dataset", "fk_task_outlet_dataset_reference_dataset"),
        sa.PrimaryKeyConstraint(
            "dataset_id", "dag_id", "task_id", name="pk_task_outlet_dataset_reference"
        ),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_task_outlet_dataset_dag", "task_outlet_dataset_reference", ["dag_id"])


def downgrade() -> None:
    for table in (
        "dagrun_dataset_event",
        "dataset_dag_run_queue",
        "task_outlet_dataset_reference",
        "dag_schedule_dataset_alias_reference",
        "dag_schedule_dataset_reference",
        "dataset_event",
        "dataset_alias_dataset",
        "dataset_alias",
        "dataset",
    ):
        op.drop_table(table)
