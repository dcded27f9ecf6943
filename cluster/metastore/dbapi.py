"""Reading the metastore through its DB-API driver alone, without SQLAlchemy.

The CLI commands that scripts poll (``tradewind dags state``, ``dags list``, ``tasks
states-for-dag-run``) read a few rows and end. Importing SQLAlchemy 2.1's Core costs
about 0.4 s of CPU and its ORM with our models 0.3 s more, several times what the query
costs; so these commands read through ``sqlite3``, PyMySQL or psycopg directly, from the
same ``metastore.url`` and with the same connection options as :mod:`.engine`.

What this module hides, as :mod:`.coltypes` does for the ORM: the URL's form, each
driver's parameter style (queries are written with ``:name``), timestamps (stored as
UTC text on SQLite, naive UTC on MySQL, ``timestamptz`` on PostgreSQL; always returned
aware in UTC) and booleans (integers on SQLite and MySQL). Driver errors leave as
:class:`~cluster.errors.MetastoreError` with the message the CLI gives SQLAlchemy's.
Only reads: writing goes through the engine, its retries and its transitions.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cluster.config import MetastoreSettings
from cluster.errors import ConfigError, metastore_failure
from cluster.metastore import mysql_connect

#: the same waits as the engine's (see :mod:`cluster.metastore.engine`)
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_SECONDS = 10
#: URL query options SQLAlchemy's PyMySQL dialect passes as numbers or booleans
_MYSQL_INTS = frozenset({"connect_timeout", "read_timeout", "write_timeout", "client_flag", "port"})
_MYSQL_BOOLS = frozenset(
    {"compress", "local_infile", "ssl_disabled", "ssl_verify_cert", "ssl_verify_identity"}
)
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def unsupported_url(drivername: str) -> ConfigError:
    """The error for a ``metastore.url`` naming a database or driver we do not support."""
    return ConfigError(
        f"metastore.url: unsupported database '{drivername}' "
        "(use sqlite:///, mysql+pymysql:// or postgresql+psycopg://)"
    )


@dataclass(frozen=True)
class Target:
    """How to open a DB-API connection for one ``metastore.url``."""

    #: ``sqlite``, ``mysql`` or ``postgresql``
    backend: str
    #: keyword arguments of the driver's ``connect``
    options: Mapping[str, Any]


def target_of(settings: MetastoreSettings) -> Target:
    """Parse ``metastore.url`` as SQLAlchemy's ``make_url`` does, into driver arguments
    (user, password, host, port and database from the URL, its query as further options).

    :raises ConfigError: when the URL names a database or driver we do not support.
    """
    parts = urlsplit(settings.url)
    drivername = parts.scheme
    dialect, _, driver = drivername.partition("+")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    database = unquote(parts.path[1:]) if parts.path else ""
    if dialect == "sqlite" and driver in ("", "pysqlite"):
        uri = query.get("uri", "").lower() in ("true", "1")
        path = database or ":memory:"
        return Target("sqlite", {"database": path, "uri": uri, "timeout": SQLITE_BUSY_TIMEOUT_S})
    server = _server_options(parts.username, parts.password, parts.hostname, parts.port)
    if dialect in ("mysql", "mariadb") and driver in ("", "pymysql"):
        options = {"charset": "utf8mb4", "connect_timeout": CONNECT_TIMEOUT_SECONDS}
        options |= {"database": database} if database else {}
        return Target("mysql", options | server | _mysql_query(query))
    if dialect == "postgresql" and driver == "psycopg":
        options = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        options |= {"dbname": database} if database else {}
        if settings.pgbouncer:  # nothing prepared: see the engine's PgBouncer note
            options["prepare_threshold"] = None
        return Target("postgresql", options | server | query)
    raise unsupported_url(drivername)


def _server_options(
    user: str | None, password: str | None, host: str | None, port: int | None
) -> dict[str, Any]:
    found = {
        "user": unquote(user) if user else None,
        "password": unquote(password) if password is not None else None,
        "host": host,
        "port": port,
    }
    return {k: v for k, v in found.items() if v is not None}


def _mysql_query(query: Mapping[str, str]) -> dict[str, Any]:
    """URL options as PyMySQL takes them (SQLAlchemy coerces the same ones)."""
    options: dict[str, Any] = {}
    for key, value in query.items():
        if key in _MYSQL_INTS:
            options[key] = int(value)
        elif key in _MYSQL_BOOLS:
            options[key] = value.lower() in ("true", "1", "yes", "on")
        else:
            options[key] = value
    return options


class Reader:
    """One read-only transaction on the metastore: queries with ``:name`` parameters,
    timestamps and booleans as the ORM gives them."""

    def __init__(self, backend: str, driver: ModuleType, connection: Any) -> None:
        self.backend = backend
        self._driver = driver
        self._connection = connection

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Every row ``sql`` returns; ``params`` are bound (datetimes as stored)."""
        bound = {k: self._bind(v) for k, v in params.items()}
        if self.backend != "sqlite":
            sql = _NAMED.sub(r"%(\1)s", sql)
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, bound)
            return [tuple(row) for row in cursor.fetchall()]
        except self._driver.Error as exc:
            raise metastore_failure(exc) from exc
        finally:
            cursor.close()

    def first(self, sql: str, **params: Any) -> tuple[Any, ...] | None:
        """The first row ``sql`` returns, or ``None``."""
        found = self.rows(sql, **params)
        return found[0] if found else None

    def utc(self, value: Any) -> datetime | None:
        """A timestamp column's value, aware in UTC (as :class:`.coltypes.UtcDateTime`)."""
        if value is None:
            return None
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        if when.tzinfo is not None:  # PostgreSQL: in the session's time zone
            return when.astimezone(UTC)
        return when.replace(tzinfo=UTC)

    @staticmethod
    def flag(value: Any) -> bool | None:
        """A boolean column's value (SQLite and MySQL store integers)."""
        return None if value is None else bool(value)

    def _bind(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        utc = value.astimezone(UTC)
        if self.backend == "postgresql":
            return utc
        naive = datetime(*utc.timetuple()[:6], utc.microsecond)
        if self.backend == "mysql":
            return naive
        # SQLAlchemy's SQLite DATETIME text, so that equal instants compare equal
        return (
            f"{naive.year:04d}-{naive.month:02d}-{naive.day:02d} "
            f"{naive.hour:02d}:{naive.minute:02d}:{naive.second:02d}.{naive.microsecond:06d}"
        )


@contextmanager
def reading(settings: MetastoreSettings) -> Iterator[Reader]:
    """A :class:`Reader` on a new connection, closed at the end (no pool: one command
    reads once).

    :raises ConfigError: for an unsupported ``metastore.url``.
    :raises MetastoreError: when the metastore cannot be reached or the query fails.
    """
    target = target_of(settings)
    driver = importlib.import_module(_DRIVERS[target.backend])
    try:
        connection = _connect(target, driver)
    except driver.Error as exc:
        raise metastore_failure(exc) from exc
    try:
        if target.backend == "sqlite":  # one snapshot for every query (WAL: never waits)
            connection.execute("BEGIN")
        yield Reader(target.backend, driver, connection)
    finally:
        _close(connection, driver)


_DRIVERS = {"sqlite": "sqlite3", "mysql": "pymysql", "postgresql": "psycopg"}


def _connect(target: Target, driver: ModuleType) -> Any:
    options = dict(target.options)
    if target.backend == "sqlite":
        # autocommit at the driver level, so BEGIN (above) starts the one transaction
        return driver.connect(options.pop("database"), isolation_level=None, **options)
    if target.backend == "mysql":
        connection_class = mysql_connect.shared_context_class(driver.connections.Connection)
        return connection_class(**options)
    return driver.connect(**options)


def _close(connection: Any, driver: ModuleType) -> None:
    """End the read transaction and close; a connection already broken is just dropped."""
    try:
        connection.rollback()
        connection.close()
    except driver.Error:
        pass


__all__ = ["Reader", "Target", "reading", "target_of", "unsupported_url"]
