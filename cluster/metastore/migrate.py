"""Bring the metastore schema to the revision this code expects (``tradewind db …``).

Alembic is configured here, in code: its scripts ship inside the package
(``cluster/metastore/migrations``) and users never need an ``alembic.ini``. Commands
call :func:`check` so that old schemas fail loudly instead of half-working; the role
commands (scheduler, webserver, worker) call :func:`wait_for_schema` instead, so that
on a rolling deploy they wait for the one ``tradewind db migrate`` rather than exit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from cluster.errors import MetastoreError, MigrationError
from cluster.metastore.engine import wait_for_metastore

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: held during a migration on MySQL so two processes starting at once do not race
_MYSQL_LOCK = "tradewind_migrate"
#: PostgreSQL's advisory lock key for the same (any fixed bigint; this spells "twmigrat")
_POSTGRES_LOCK = 0x74776D6967726174
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


def known_revisions() -> frozenset[str]:
    """Every revision this code ships; a schema at any other one was migrated by newer code."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(revision.revision for revision in script.walk_revisions())


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, or ``None`` for an empty database."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]  # one line, no URL to docs
        raise MetastoreError(f"cannot read the metastore revision: {cause}") from exc


def migrate(engine: Engine, *, to: str = "head") -> None:
    """Upgrade the schema to ``to`` (head, unless a test wants an older schema); running
    it again is a no-op.

    :raises MigrationError: when a migration fails (the cause says which statement).
    """
    try:
        with engine.begin() as connection, _migration_lock(connection):
            command.upgrade(alembic_config(connection), to)
    except SQLAlchemyError as exc:
        raise MigrationError(f"migrating the metastore failed: {exc}") from exc


def check(engine: Engine) -> None:
    """Raise unless the schema is at head: processes refuse to run on an old schema.

    :raises MigrationError: telling the user to run ``tradewind db migrate``.
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise _mismatch(current, head)


def wait_for_schema(
    engine: Engine,
    timeout: float,
    *,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    announce: Callable[[str], None] = log.info,
    unreachable_ok: bool = False,
) -> None:
    """Block until the metastore answers and its schema is at this code's revision.

    On a rolling deploy the new version's processes start on every node while one
    ``tradewind db migrate`` runs: they wait for it instead of exiting, as Airflow's
    ``--migration-wait-timeout`` does. ``announce`` is told once, in one line, that
    the process waits and for what. A schema *ahead* of this code (a revision it does
    not ship) fails at once: only upgrading this node can cure that.

    :param timeout: seconds for both waits together (``metastore.migration_wait_timeout``).
    :param unreachable_ok: a metastore that does not answer now is no reason to wait (the
        webserver starts and its ``/health`` answers 503 until it does); one that answers
        at an older revision still is.
    :raises MetastoreError: when the metastore does not answer within ``timeout``.
    :raises MigrationError: when the schema is ahead, or still behind after ``timeout``,
        with the one-line message of :func:`check`.
    """
    deadline = clock() + timeout
    try:
        wait_for_metastore(
            engine, 0 if unreachable_ok else timeout, interval=interval, clock=clock, sleep=sleep
        )
    except MetastoreError:
        if not unreachable_ok:
            raise
        announce(
            "the metastore does not answer: starting anyway (/health answers 503 until it does)"
        )
        return
    head, known = head_revision(), known_revisions()
    announced = False
    while True:
        current = current_revision(engine)
        if current == head:
            return
        if (current is not None and current not in known) or clock() >= deadline:
            raise _mismatch(current, head)
        if not announced:
            found = "empty" if current is None else f"at revision {current}"
            announce(
                f"the metastore schema is {found}, this code needs {head}: waiting up to "
                f"{timeout:g} s for 'tradewind db migrate' (metastore.migration_wait_timeout)"
            )
            announced = True
        sleep(interval)


def _mismatch(current: str | None, head: str) -> MigrationError:
    """The one-line error for a schema at ``current`` when this code needs ``head``."""
    if current is not None and current not in known_revisions():
        return MigrationError(
            f"the metastore schema is at revision {current}, newer than this code's {head}: "
            "upgrade Tradewind on this node"
        )
    found = "an empty database" if current is None else f"revision {current}"
    return MigrationError(
        f"the metastore schema is at {found}, this code needs {head}: run 'tradewind db migrate'"
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
    if connection.dialect.name == "postgresql":
        _lock_postgres(connection)
        yield
        return
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


def _lock_postgres(connection: Connection) -> None:
    """Hold PostgreSQL's migration lock until the migration's transaction ends.

    A transaction-level advisory lock (PostgreSQL's DDL is transactional: the whole
    migration is one transaction), so it is released by the commit or rollback, and
    behind PgBouncer it cannot stay with a server connection someone else gets next.
    """
    connection.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT_SECONDS}s'"))
    try:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK})
    except OperationalError as exc:
        raise MigrationError(
            f"another process has been migrating the metastore for {_LOCK_TIMEOUT_SECONDS} s"
        ) from exc
