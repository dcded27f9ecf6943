"""DAG-level callback requests: one row per run end whose DAG has callbacks.

Frozen at this revision. A plain table with an index on ``state`` (the DAG processor
looks for ``pending`` rows), the same on SQLite, MySQL/MariaDB and PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import UtcDateTime, string_id

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    op.create_table(
        "callback_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("run_id", string_id(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=256), nullable=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_request")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("idx_callback_request_state", "callback_request", ["state"])


def downgrade() -> None:
    op.drop_index("idx_callback_request_state", table_name="callback_request")
    op.drop_table("callback_request")
