"""The initial schema: every table of Tradewind 0.1 and the default pool.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import JsonText, UtcDateTime, long_text, string_id, string_key

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: frozen copy of the table options of this revision
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
TABLES = [
    "task_instance_history",
    "xcom",
    "task_instance",
    "dag_run",
    "api_token",
    "user",
    "component",
    "scheduler_lease",
    "audit_log",
    "connection",
    "variable",
    "slot_pool",
    "import_error",
    "dag_code",
    "serialized_dag",
    "dag",
]


def upgrade() -> None:
    _create_admin_tables()
    _create_dag_tables()
    _create_cluster_tables()
    _create_user_tables()
    _create_task_instance_table()
    _create_xcom_table_and_default_pool()


def _create_admin_tables() -> None:
    """Tables audit_log, component and connection."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("username", sa.String(length=256), nullable=True),
        sa.Column("dag_id", string_id(), nullable=True),
        sa.Column("run_id", string_id(), nullable=True),
        sa.Column("task_id", string_id(), nullable=True),
        sa.Column("extra", JsonText(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(op.f("ix_audit_log_ts"), "audit_log", ["ts"], unique=False)
    op.create_table(
        "component",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("extra", JsonText(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_component")),
        sa.UniqueConstraint("kind", "host", "pid", name="uq_component_kind_host_pid"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "connection",
        sa.Column("conn_id", string_key(250), nullable=False),
        sa.Column("conn_type", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=500), nullable=True),
        sa.Column("schema", sa.String(length=500), nullable=True),
        sa.Column("login", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("conn_id", name=op.f("pk_connection")),
        **MYSQL_TABLE_ARGS,
    )


def _create_dag_tables() -> None:
    """Tables dag, dag_code, dag_run and import_error."""
    op.create_table(
        "dag",
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("fileloc", sa.String(length=2000), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("last_parsed_at", UtcDateTime(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("timetable_summary", sa.String(length=1000), nullable=True),
        sa.Column("tags", JsonText(), nullable=True),
        sa.Column("owners", sa.String(length=2000), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("max_active_runs", sa.Integer(), nullable=True),
        sa.Column("max_active_tasks", sa.Integer(), nullable=True),
        sa.Column("next_dagrun", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_data_interval_start", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_data_interval_end", UtcDateTime(), nullable=True),
        sa.Column("next_dagrun_create_after", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("dag_id", name=op.f("pk_dag")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "idx_dag_next_dagrun_create_after",
        "dag",
        ["is_paused", "is_active", "next_dagrun_create_after"],
        unique=False,
    )
    op.create_table(
        "dag_code",
        sa.Column("fileloc_hash", sa.String(length=64), nullable=False),
        sa.Column("fileloc", sa.String(length=2000), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("source_code", long_text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fileloc_hash", name=op.f("pk_dag_code")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "dag_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("run_id", string_id(), nullable=False),
        sa.Column("logical_date", UtcDateTime(), nullable=True),
        sa.Column("data_interval_start", UtcDateTime(), nullable=True),
        sa.Column("data_interval_end", UtcDateTime(), nullable=True),
        sa.Column("run_type", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("conf", JsonText(), nullable=True),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("last_scheduling_decision", UtcDateTime(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("clear_number", sa.Integer(), nullable=False),
        sa.Column("created_by_epoch", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag_run")),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_dag_run_dag_id_run_id"),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "idx_dag_run_dag_id_logical_date", "dag_run", ["dag_id", "logical_date"], unique=False
    )
    op.create_index("idx_dag_run_dag_id_state", "dag_run", ["dag_id", "state"], unique=False)
    op.create_index("idx_dag_run_state", "dag_run", ["state"], unique=False)
    op.create_table(
        "import_error",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("filename", sa.String(length=2000), nullable=False),
        sa.Column("filename_hash", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("stacktrace", long_text(), nullable=True),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_error")),
        sa.UniqueConstraint("filename_hash", name=op.f("uq_import_error_filename_hash")),
        **MYSQL_TABLE_ARGS,
    )


def _create_cluster_tables() -> None:
    """Tables scheduler_lease, serialized_dag, slot_pool and task_instance_history."""
    op.create_table(
        "scheduler_lease",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("leader_host", sa.String(length=256), nullable=True),
        sa.Column("leader_pid", sa.Integer(), nullable=True),
        sa.Column("acquired_at", UtcDateTime(), nullable=True),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_lease")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "serialized_dag",
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("fileloc", sa.String(length=2000), nullable=False),
        sa.Column("data", long_text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", name=op.f("pk_serialized_dag")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "slot_pool",
        sa.Column("pool", string_key(256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pool", name=op.f("pk_slot_pool")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "task_instance_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("run_id", string_id(), nullable=False),
        sa.Column("task_id", string_id(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("hostname", sa.String(length=1000), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("queued_by_epoch", sa.Integer(), nullable=True),
        sa.Column("operator", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance_history")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "idx_tih_dag_run_task",
        "task_instance_history",
        ["dag_id", "run_id", "task_id", "map_index", "try_number"],
        unique=False,
    )


def _create_user_tables() -> None:
    """Tables user, variable and api_token."""
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", string_key(256), nullable=False),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_login", UtcDateTime(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("username", name=op.f("uq_user_username")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "variable",
        sa.Column("key", string_key(250), nullable=False),
        sa.Column("val", long_text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_encrypted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_variable")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_api_token_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(op.f("ix_api_token_user_id"), "api_token", ["user_id"], unique=False)


def _create_task_instance_table() -> None:
    """Table task_instance."""
    op.create_table(
        "task_instance",
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("run_id", string_id(), nullable=False),
        sa.Column("task_id", string_id(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), server_default="none", nullable=False),
        sa.Column("pool", string_key(256), nullable=False),
        sa.Column("pool_slots", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=256), nullable=False),
        sa.Column("priority_weight", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=1000), nullable=True),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("duration", sa.Double(), nullable=True),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("queued_by_epoch", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(length=1000), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.Column("next_try_at", UtcDateTime(), nullable=True),
        sa.Column("sensor_started_at", UtcDateTime(), nullable=True),
        sa.Column("rendered_fields", JsonText(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="fk_task_instance_dag_run",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "dag_id", "run_id", "task_id", "map_index", name=op.f("pk_task_instance")
        ),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index(
        "idx_ti_dag_run_state", "task_instance", ["dag_id", "run_id", "state"], unique=False
    )
    op.create_index(
        "idx_ti_state_heartbeat_at", "task_instance", ["state", "heartbeat_at"], unique=False
    )
    op.create_index("idx_ti_state_pool", "task_instance", ["state", "pool"], unique=False)
    op.create_index("idx_ti_state_queued_at", "task_instance", ["state", "queued_at"], unique=False)


def _create_xcom_table_and_default_pool() -> None:
    """Table xcom, and the default pool."""
    op.create_table(
        "xcom",
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("run_id", string_id(), nullable=False),
        sa.Column("task_id", string_id(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("key", string_id(), nullable=False),
        sa.Column("value", long_text(), nullable=True),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
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
        sa.PrimaryKeyConstraint(
            "dag_id", "run_id", "task_id", "map_index", "key", name=op.f("pk_xcom")
        ),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_xcom_dag_run", "xcom", ["dag_id", "run_id"], unique=False)
    slot_pool = sa.table(
        "slot_pool",
        sa.column("pool", sa.String),
        sa.column("slots", sa.Integer),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        slot_pool, [{"pool": "default_pool", "slots": 128, "description": "Default pool"}]
    )


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
