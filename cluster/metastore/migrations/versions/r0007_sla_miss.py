"""SLA misses: Airflow's ``sla_miss`` table, keyed by (task_id, dag_id, execution_date).

Frozen at this revision. The DAG processor inserts a miss unless present (so it is
recorded once whoever checks), and lists a DAG's misses through ``sm_dag``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import UtcDateTime, string_id

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    op.create_table(
        "sla_miss",
        sa.Column("task_id", string_id(), nullable=False),
        sa.Column("dag_id", string_id(), nullable=False),
        sa.Column("execution_date", UtcDateTime(), nullable=False),
        sa.Column("email_sent", sa.Boolean(), nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("notification_sent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "dag_id", "execution_date", name=op.f("pk_sla_miss")),
        **MYSQL_TABLE_ARGS,
    )
    op.create_index("sm_dag", "sla_miss", ["dag_id"])


def downgrade() -> None:
    op.drop_index("sm_dag", table_name="sla_miss")
    op.drop_table("sla_miss")
