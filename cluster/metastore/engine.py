"""Engines, sessions and transactions that survive a metastore restart.

One engine per process, built from :class:`cluster.config.MetastoreSettings`, for
SQLite, MySQL/MariaDB (PyMySQL) or PostgreSQL (psycopg 3). Pooled connections are
pinged before use, so after a server restart the first checkout reconnects instead of
failing. :func:`transaction` runs one unit of work and retries it on the errors that a
retry can cure (deadlock, lock wait timeout, serialization failure, lost connection,
SQLite's "database is locked"); every other database error leaves as a
:class:`cluster.errors.MetastoreError` that keeps its cause.

PostgreSQL behind PgBouncer in transaction pooling mode (``metastore.pgbouncer``): each
transaction may run on another server connection, so nothing here relies on session
state between transactions (the isolation level travels with each ``BEGIN``), and
psycopg's server-side prepared statements are off (they live in one server session).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import MetastoreSettings
from cluster.errors import MetastoreError
from cluster.metastore import mysql_connect
from cluster.metastore.dbapi import unsupported_url

T = TypeVar("T")

log = logging.getLogger(__name__)

#: a factory of sessions bound to one engine
SessionFactory = sessionmaker[Session]

#: MySQL/MariaDB error codes worth retrying: deadlock, lock wait timeout, server gone
#: away, lost connection during query, cannot connect, connection killed (MariaDB),
#: client disconnected by the server (MySQL 8), server shutdown in progress (a query
#: that arrived while the server was stopping), lost connection at handshake
RETRYABLE_MYSQL_CODES = frozenset({1213, 1205, 2006, 2013, 2003, 1927, 4031, 1053, 2055})
#: PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, lock not
#: available (``lock_timeout``), the server terminating sessions (fast or immediate
#: shutdown) or not accepting them yet (starting, stopping, recovering); and every
#: connection exception (class 08)
RETRYABLE_POSTGRES_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_RECYCLE_SECONDS = 1800
CONNECT_TIMEOUT_SECONDS = 10
#: a pooled connection idle longer than this is pinged before use
PING_AFTER_IDLE_SECONDS = 1.0
#: the pool of an engine used by one thread at a time (a pool process's runner, the
#: local executor's pump): one connection kept, one more while a call nests
SINGLE_THREAD_POOL = 1

_READ_ONLY_OPTION = "tradewind_read_only"
#: execution options of a session's connection that will only read
#: (``session.connection(execution_options=READ_ONLY)`` before its first statement): on
#: SQLite its transaction does not take the write lock; elsewhere nothing changes
READ_ONLY: Mapping[str, Any] = MappingProxyType({_READ_ONLY_OPTION: True})


def create_engine_for(
    settings: MetastoreSettings, *, reset_on_return: bool = True, pool_size: int | None = None
) -> Engine:
    """Build the process's engine for ``settings.url`` (SQLite, ``mysql+pymysql://`` or
    ``postgresql+psycopg://``).

    The connection budget: an engine keeps at most ``pool_size`` connections open and
    opens as many more under load, which it closes as soon as they come back; a
    connection idle for ``settings.idle_timeout`` seconds is closed by the server (the
    next use reconnects, see :func:`_ping_when_idle`), so an idle process holds none.

    :param reset_on_return: ``False`` skips the ROLLBACK the pool sends when a
        connection comes back. Only for callers that always end their transactions
        (the webserver: its request sessions and :func:`transaction` commit or roll
        back before they close); SQLite engines always reset.
    :param pool_size: this engine's pool instead of ``settings.pool_size``
        (:data:`SINGLE_THREAD_POOL` for engines one thread uses).
    :raises ConfigError: when the URL names a database or driver Tradewind does not support.
    """
    url = make_url(settings.url)
    backend = url.get_backend_name()
    if pool_size is not None:
        settings = dataclasses.replace(settings, pool_size=pool_size)
    if backend == "sqlite":
        return _sqlite_engine(url, settings)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(url, settings, reset_on_return=reset_on_return)
    if backend == "postgresql" and url.get_driver_name() == "psycopg":
        return _postgres_engine(url, settings, reset_on_return=reset_on_return)
    raise unsupported_url(url.drivername)


def _sqlite_engine(url: URL, settings: MetastoreSettings) -> Engine:
    engine = create_engine(
        url,
        echo=settings.echo,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # autocommit at the driver level: SQLAlchemy emits BEGIN itself (below), so a
        # transaction that starts with a SELECT really is one transaction
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that read first and
        # then writes would otherwise fail at once with "database is locked" when
        # another process committed in between (busy_timeout cannot help there). A
        # connection that only reads (READ_ONLY) must not: it would queue behind
        # every writer, as a mapped task's 1,000 pool-process pulls did
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _mysql_engine(url: URL, settings: MetastoreSettings, *, reset_on_return: bool) -> Engine:
    engine = create_engine(
        url,
        pool_reset_on_return="rollback" if reset_on_return else None,
        echo=settings.echo,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_size=max(settings.pool_size, 1),
        max_overflow=max(settings.pool_size, 1),
        isolation_level="READ COMMITTED",
        connect_args={
            "charset": "utf8mb4",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **_mysql_idle_timeout(settings),
        },
    )
    event.listen(engine, "do_connect", mysql_connect.connect)
    _ping_when_idle(engine)
    return engine


def _postgres_engine(url: URL, settings: MetastoreSettings, *, reset_on_return: bool) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if settings.pgbouncer:
        # a statement prepared on one server connection is unknown on the next one
        # PgBouncer hands out: prepare nothing (psycopg prepares after 5 runs otherwise);
        # PgBouncer closes idle server connections itself (server_idle_timeout)
        connect_args["prepare_threshold"] = None
    elif settings.idle_timeout > 0:
        # PostgreSQL 14+: the server ends a session idle (outside a transaction) this long
        connect_args["options"] = f"-c idle_session_timeout={_idle_seconds(settings) * 1000}"
    engine = create_engine(
        url,
        pool_reset_on_return="rollback" if reset_on_return else None,
        echo=settings.echo,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_size=max(settings.pool_size, 1),
        max_overflow=max(settings.pool_size, 1),
        # psycopg sends it with each BEGIN: no session state, as PgBouncer requires
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )
    _ping_when_idle(engine)
    return engine


def _idle_seconds(settings: MetastoreSettings) -> int:
    return max(1, math.ceil(settings.idle_timeout))


def _mysql_idle_timeout(settings: MetastoreSettings) -> dict[str, str]:
    """MySQL/MariaDB close a connection idle ``wait_timeout`` seconds: set per session."""
    if settings.idle_timeout <= 0:
        return {}
    return {"init_command": f"SET SESSION wait_timeout = {_idle_seconds(settings)}"}


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` pings on every checkout: one extra round trip per transaction,
    a fifth of a runner's time on the hot path. A connection used within the last
    :data:`PING_AFTER_IDLE_SECONDS` is trusted; an older one is pinged, and a dead
    one is replaced (after a MySQL restart, the first checkout reconnects). A
    connection that dies in between fails its statement, and :func:`transaction`
    retries that on a fresh connection.
    """

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        now = time.monotonic()
        if now - record.info.get("last_used", now) > PING_AFTER_IDLE_SECONDS:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError("pooled connection is gone") from exc
        record.info["last_used"] = now

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["last_used"] = time.monotonic()


def bound_idle_transactions(engine: Engine, seconds: float, *, pgbouncer: bool = False) -> None:
    """Have the server abort this engine's transactions that sit idle over ``seconds``.

    For the fencing of a frozen scheduler: it never waits between the statements of
    one transaction, so only a frozen process trips this; its locks are freed and, once
    it runs again, its next write finds the newer epoch. MariaDB has
    ``idle_transaction_timeout``, PostgreSQL ``idle_in_transaction_session_timeout``,
    both set per connection when it opens. MySQL has no such setting: there a frozen
    leader's locks last until it runs again or its connection dies. Behind PgBouncer a
    session setting would stick to a server connection other clients share, so nothing
    is set: PgBouncer's own ``idle_transaction_timeout`` does it (the operations guide).
    """
    limit = max(1, math.ceil(seconds))
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        if pgbouncer:
            return
        statement = f"SET idle_in_transaction_session_timeout = {limit * 1000}"
    elif engine.dialect.name == "mysql":
        statement = f"SET SESSION idle_transaction_timeout = {limit}"
    else:
        return
    dbapi_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "connect")
    def _limit_idle(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
            if postgres:  # psycopg opened a transaction: a rollback would undo the SET
                dbapi_connection.commit()
        except dbapi_error as exc:  # MySQL: unknown system variable
            log.info("idle transactions are not bounded on this server: %s", exc)
        finally:
            cursor.close()


def make_session_factory(engine: Engine) -> SessionFactory:
    """Sessions whose objects stay readable after commit (the loop keeps using them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_retryable(exc: BaseException) -> bool:
    """Whether running the whole transaction again may succeed."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in RETRYABLE_MYSQL_CODES:
        return True
    sqlstate = getattr(orig, "sqlstate", "")  # psycopg's; None: no answer from a server
    if sqlstate is None and isinstance(exc, OperationalError):
        return True  # psycopg could not connect, or lost the connection
    if sqlstate and (sqlstate in RETRYABLE_POSTGRES_STATES or sqlstate.startswith("08")):
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message


def transaction(
    factory: SessionFactory,
    fn: Callable[[Session], T],
    *,
    retries: int = 5,
    backoff: float = 0.1,
    max_backoff: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn(session)`` in one transaction, committed when it returns.

    A deadlock, lock wait timeout, lost connection or locked SQLite database rolls
    back and runs ``fn`` again in a fresh session, up to ``retries`` more times, with
    exponential backoff and jitter. ``fn`` must therefore be safe to run again: when
    the connection dies during COMMIT nobody knows whether the commit happened, and a
    compare-and-set may then lose against its own first attempt.

    :param sleep: injected so tests can count the waits instead of sleeping.
    :raises MetastoreError: when retries are exhausted or the error cannot be cured
        by a retry; the SQLAlchemy error is kept as ``__cause__``. Tradewind's own
        errors raised by ``fn`` pass through unchanged.
    """
    attempt = 0
    while True:
        try:
            with factory() as session, session.begin():
                return fn(session)
        except SQLAlchemyError as exc:
            if attempt >= retries or not is_retryable(exc):
                raise MetastoreError(_describe(exc, attempt)) from exc
        delay = min(max_backoff, backoff * (2**attempt)) * random.uniform(0.5, 1.0)
        sleep(delay)
        attempt += 1


def _describe(exc: SQLAlchemyError, attempt: int) -> str:
    orig = getattr(exc, "orig", None) or exc
    tries = f" after {attempt + 1} attempts" if attempt else ""
    return f"metastore operation failed{tries}: {type(orig).__name__}: {orig}"


def wait_for_metastore(
    engine: Engine,
    timeout: float,
    *,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until the metastore answers ``SELECT 1``; processes call this at start-up.

    :raises MetastoreError: when it still does not answer after ``timeout`` seconds,
        with the last error as cause.
    """
    deadline = clock() + timeout
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except SQLAlchemyError as exc:
            if clock() >= deadline:
                raise MetastoreError(
                    f"metastore at {engine.url.render_as_string(hide_password=True)} did not "
                    f"answer within {timeout:g} s: {_describe(exc, 0)}"
                ) from exc
        sleep(interval)
