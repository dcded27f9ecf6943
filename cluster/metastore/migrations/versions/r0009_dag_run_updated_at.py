"""``dag_run.updated_at``: when the run's row last changed, as Airflow's column.

Airflow's REST API filters run lists by it (``updated_at_gte`` / ``updated_at_lte``);
task instances have had the column since 0001. Existing runs get the time of the
migration (their last change is not known), new ones their creation, and every update
of the row sets it.

Additive: older code ignores the column.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.add_column(sa.Column("updated_at", UtcDateTime(), nullable=True))
    dag_run = sa.table("dag_run", sa.column("updated_at", UtcDateTime()))
    op.execute(dag_run.update().values(updated_at=datetime.now(UTC)))


def downgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.drop_column("updated_at")
