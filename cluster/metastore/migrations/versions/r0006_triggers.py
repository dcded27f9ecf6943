"""Deferral: the ``trigger`` table and the deferral columns of ``task_instance``.

A deferred try hands an asyncio trigger to a triggerer: the ``trigger`` row holds the
trigger's class path and its keyword arguments (JSON, Fernet-encrypted, as Airflow 2.9+
encrypts them) and which triggerer runs it; ``task_instance.trigger_id`` points at it
while the try waits, and ``next_method`` / ``next_kwargs`` say where the try resumes.
``idx_ti_state_trigger_timeout`` serves the scheduler's timeout check, which only looks
at ``deferred`` rows. Additive: older code ignores the columns and the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import JsonText, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    op.create_table(
        "trigger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("classpath", sa.String(length=1000), nullable=False),
        sa.Column("kwargs", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("triggerer_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_trigger_triggerer_id", "trigger", ["triggerer_id"])
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("trigger_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("trigger_timeout", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("next_method", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("next_kwargs", JsonText(), nullable=True))
    op.create_index("idx_task_instance_trigger_id", "task_instance", ["trigger_id"])
    op.create_index("idx_ti_state_trigger_timeout", "task_instance", ["state", "trigger_timeout"])


def downgrade() -> None:
    op.drop_index("idx_ti_state_trigger_timeout", table_name="task_instance")
    op.drop_index("idx_task_instance_trigger_id", table_name="task_instance")
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("next_kwargs")
        batch.drop_column("next_method")
        batch.drop_column("trigger_timeout")
        batch.drop_column("trigger_id")
    op.drop_index("idx_trigger_triggerer_id", table_name="trigger")
    op.drop_table("trigger")
