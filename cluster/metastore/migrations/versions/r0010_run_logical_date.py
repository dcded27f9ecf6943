"""The run's logical date on each task instance, and an index the queueing read walks.

The scheduler reads the best scheduled tries a few times its free slots at every
iteration: highest ``priority_weight`` first, ties to the oldest run (Airflow's order).
With the run's date only in ``dag_run``, no index could give that order, so every
iteration joined and sorted the whole backlog (all 10,000 scheduled instances of a
10,000-task fan-out) to keep 32. ``task_instance.run_logical_date`` holds the run's
date (copied when the row is made; a run's logical date never changes), and
``idx_ti_state_priority`` (``state, priority_weight DESC, run_logical_date``) lets
SQLite, MariaDB (10.8+ keeps DESC) and PostgreSQL read the rows in order and stop at
the limit.

Existing rows get their run's date. Additive: older code ignores the column (its
queueing read still joins ``dag_run``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BACKFILL = sa.text(
    "UPDATE task_instance SET run_logical_date = ("
    "SELECT dag_run.logical_date FROM dag_run"
    " WHERE dag_run.dag_id = task_instance.dag_id AND dag_run.run_id = task_instance.run_id)"
)


def upgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("run_logical_date", UtcDateTime(), nullable=True))
    op.execute(_BACKFILL)
    op.create_index(
        "idx_ti_state_priority",
        "task_instance",
        ["state", sa.text("priority_weight DESC"), "run_logical_date"],
    )


def downgrade() -> None:
    op.drop_index("idx_ti_state_priority", table_name="task_instance")
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("run_logical_date")
