"""An index the queueing read walks pool by pool, so a full pool's backlog costs nothing.

``idx_ti_state_priority`` (0010) gave the scheduled tries in the queueing order, but a
try whose pool is full (or whose DAG is at ``max_active_tasks``) can only be passed
over: a backlog of 10,000 tries behind a pool of one slot was walked, read and decided
on at every iteration. ``idx_ti_state_pool_priority`` (``state, pool, priority_weight
DESC, run_logical_date, dag_id``) gives each pool's scheduled tries in that order, so
the scheduler reads only the pools with a free slot, each up to its limit, and checks
the DAGs at their limit on the index itself. It replaces ``idx_ti_state_priority`` and
``idx_ti_state_pool`` (its first two columns), so a state change still updates as many
indexes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "idx_ti_state_pool_priority",
        "task_instance",
        ["state", "pool", sa.text("priority_weight DESC"), "run_logical_date", "dag_id"],
    )
    op.drop_index("idx_ti_state_priority", table_name="task_instance")
    op.drop_index("idx_ti_state_pool", table_name="task_instance")


def downgrade() -> None:
    op.create_index("idx_ti_state_pool", "task_instance", ["state", "pool"])
    op.create_index(
        "idx_ti_state_priority",
        "task_instance",
        ["state", sa.text("priority_weight DESC"), "run_logical_date"],
    )
    op.drop_index("idx_ti_state_pool_priority", table_name="task_instance")
