"""Dynamic task mapping: ``task_map`` and ``task_instance.rendered_map_index``.

``task_map`` holds, per try of a task whose return value a mapped task expands over,
the length of that value (and its keys when it is a dict), as Airflow's table of the
same name: the scheduler reads it to know how many instances to create, without
reading the value itself. ``rendered_map_index`` is a mapped instance's display name
(its ``map_index_template`` rendered after it ran).

Both are additive: older code ignores the column and the table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cluster.metastore.coltypes import string_id

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _id(name: str) -> sa.Column[Any]:
    """An id column as ``task_instance``'s (``utf8mb3_bin`` on MySQL: the key must match)."""
    return sa.Column(name, string_id(), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("rendered_map_index", sa.String(250), nullable=True))
    op.create_table(
        "task_map",
        _id("dag_id"),
        _id("run_id"),
        _id("task_id"),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("keys", sa.Text(), nullable=True),
        sa.CheckConstraint("length >= 0", name="ck_task_map_length_not_negative"),
        sa.ForeignKeyConstraint(
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
        sa.PrimaryKeyConstraint("dag_id", "run_id", "task_id", "map_index", name="pk_task_map"),
        **MYSQL_TABLE_ARGS,
    )


def downgrade() -> None:
    op.drop_table("task_map")
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("rendered_map_index")
