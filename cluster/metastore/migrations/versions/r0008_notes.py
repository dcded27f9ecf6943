"""Notes on DAG runs and task instances: ``dag_run.note`` and ``task_instance.note``.

Airflow 2.5+ keeps a free-text note per run and per task instance (its tables
``dag_run_note`` and ``task_instance_note``; the REST API's ``note`` fields and
``setNote`` endpoints). Tradewind keeps the text in a nullable column of the row
itself: who wrote it is not kept. ``tradewind migrate-from-airflow`` copies Airflow's.

Additive: older code ignores the columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("dag_run") as batch:
        batch.drop_column("note")
