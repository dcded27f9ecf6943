"""Alembic environment: runs on the connection that :mod:`cluster.metastore.migrate` passes in.

Alembic executes this file when a command runs, never at import of the package. There
is no ``alembic.ini`` and no URL here: the caller owns the engine.
"""

from __future__ import annotations

from alembic import context

from cluster.errors import MigrationError
from cluster.metastore.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise MigrationError("run migrations with 'tradewind db migrate', not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
