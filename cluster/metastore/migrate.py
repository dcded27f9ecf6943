"""Bring the metastore schema to the revision this code expects (``tradewind db …``).

Alembic is configured here, in code: its scripts ship inside the package
(``cluster/metastore/migrations``) and users never need an ``alembic.ini``. Every
process calls :func:`check` at start-up so that old schemas fail loudly instead of
half-working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import SQLAlchemyError

from cluster.errors import MetastoreError, MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: held during a migration on MySQL so two processes starting at once do not race
_MYSQL_LOCK = "tradewind_migrate"
_LOCK_TIMEOUT_SECONDS = 300


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged scripts, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this code expects."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise MigrationError("no migration scripts found in the package")
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, or ``None`` for an empty database."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise MetastoreError(f"cannot read the metastore revision: {exc}") from exc


def migrate(engine: Engine) -> None:
    """Upgrade the schema to head; running it again is a no-op.

    :raises MigrationError: when a migration fails (the cause says which statement).
    """
    try:
        with engine.begin() as connection, _migration_lock(connection):
            command.upgrade(alembic_config(connection), "head")
    except SQLAlchemyError as exc:
        raise MigrationError(f"migrating the metastore failed: {exc}") from exc


def check(engine: Engine) -> None:
    """Raise unless the schema is at head: processes refuse to run on an old schema.

    :raises MigrationError: telling the user to run ``tradewind db migrate``.
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        found = "an empty database" if current is None else f"revision {current}"
        raise MigrationError(
            f"the metastore schema is at {found}, this code needs {head}: "
            "run 'tradewind db migrate'"
        )


def reset(engine: Engine) -> None:
    """Drop every table (Tradewind's and any other in that database), then migrate.

    Destroys all data: the CLI asks for confirmation before calling it.
    """
    try:
        with engine.begin() as connection:
            existing = MetaData()
            existing.reflect(connection)
            existing.drop_all(connection)
    except SQLAlchemyError as exc:
        raise MigrationError(f"dropping the metastore tables failed: {exc}") from exc
    migrate(engine)


@contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    if connection.dialect.name not in ("mysql", "mariadb"):
        yield  # SQLite serializes DDL with its database lock
        return
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": _MYSQL_LOCK, "timeout": _LOCK_TIMEOUT_SECONDS},
    ).scalar()
    if got != 1:
        raise MigrationError(
            f"another process has been migrating the metastore for {_LOCK_TIMEOUT_SECONDS} s"
        )
    try:
        yield
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _MYSQL_LOCK})
