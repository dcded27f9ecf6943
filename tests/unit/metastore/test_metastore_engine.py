"""Engines, the retrying transaction helper and start-up waiting."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.errors import ConfigError, FencedOff, MetastoreError
from cluster.metastore.engine import (
    READ_ONLY,
    SessionFactory,
    create_engine_for,
    is_retryable,
    transaction,
    wait_for_metastore,
)
from cluster.metastore.models import SlotPool


def locked() -> OperationalError:
    return OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))


def failing(times: int, error: Callable[[], Exception]) -> Callable[[Session], str]:
    calls = {"n": 0}

    def fn(session: Session) -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error()
        session.add(SlotPool(pool=f"p{calls['n']}", slots=1))
        return "done"

    return fn


def test_sqlite_is_configured_for_concurrency(metastore_engine: Engine) -> None:
    with metastore_engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_read_only_sqlite_session_reads_beside_a_writer(
    session_factory: SessionFactory,
) -> None:
    """Every SQLite transaction takes the write lock (BEGIN IMMEDIATE) except a read-only
    one: a pool process's XCom pulls must not queue behind the writers."""
    with session_factory() as writer, session_factory() as reader:
        writer.add(SlotPool(pool="w", slots=1))
        writer.flush()  # holds the write lock until commit
        connection = reader.connection(execution_options=READ_ONLY)
        assert connection.execute(select(func.count()).select_from(SlotPool)).scalar() == 1
        with pytest.raises(OperationalError, match="locked"):
            connection.execute(text("PRAGMA busy_timeout=0"))
            connection.execute(text("DELETE FROM slot_pool WHERE pool = 'default_pool'"))
        writer.commit()


@pytest.mark.parametrize("url", ["oracle://x/y", "postgresql+psycopg2://x/y"])
def test_unsupported_database_or_driver_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"postgresql\+psycopg://"):
        create_engine_for(MetastoreSettings(url=url))


def test_transaction_commits_what_fn_did(session_factory: SessionFactory) -> None:
    assert transaction(session_factory, failing(0, locked)) == "done"
    with session_factory() as session:
        assert session.get(SlotPool, "p1") is not None


def test_locked_database_is_retried_with_backoff(session_factory: SessionFactory) -> None:
    waits: list[float] = []
    result = transaction(session_factory, failing(2, locked), sleep=waits.append, backoff=0.1)
    assert result == "done"
    assert len(waits) == 2 and 0.05 <= waits[0] <= 0.1 and 0.1 <= waits[1] <= 0.2
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SlotPool)) == 2  # default + p3


def test_retries_run_out_into_a_metastore_error(session_factory: SessionFactory) -> None:
    waits: list[float] = []
    with pytest.raises(MetastoreError, match="after 3 attempts") as caught:
        transaction(session_factory, failing(10, locked), retries=2, sleep=waits.append)
    assert len(waits) == 2
    assert isinstance(caught.value.__cause__, OperationalError)


def test_other_database_errors_are_wrapped_at_once(session_factory: SessionFactory) -> None:
    def duplicate() -> IntegrityError:
        return IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    waits: list[float] = []
    with pytest.raises(MetastoreError, match="UNIQUE") as caught:
        transaction(session_factory, failing(1, duplicate), sleep=waits.append)
    assert waits == []
    assert isinstance(caught.value.__cause__, IntegrityError)


def test_tradewind_errors_pass_through(session_factory: SessionFactory) -> None:
    with pytest.raises(FencedOff):
        transaction(session_factory, failing(1, lambda: FencedOff("epoch 3 < 4")))


@pytest.mark.parametrize(
    ("code", "retry"), [(1213, True), (1205, True), (2006, True), (2013, True), (1062, False)]
)
def test_mysql_error_codes(code: int, retry: bool) -> None:
    error = OperationalError("SELECT 1", {}, Exception(code, "message"))
    assert is_retryable(error) is retry


@pytest.mark.parametrize(
    ("sqlstate", "retry"),
    [
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock detected
        ("55P03", True),  # lock not available (lock_timeout)
        ("57P01", True),  # terminating connection: the server is shutting down
        ("08006", True),  # connection failure
        ("23505", False),  # unique violation
        ("42P01", False),  # undefined table
    ],
)
def test_postgres_sqlstates(sqlstate: str, retry: bool) -> None:
    error = DBAPIError("SELECT 1", {}, psycopg.errors.lookup(sqlstate)("message"))
    assert is_retryable(error) is retry


def test_a_postgres_connection_that_never_answered_is_retried() -> None:
    refused = psycopg.OperationalError("connection failed: Connection refused")
    assert refused.sqlstate is None
    assert is_retryable(OperationalError("SELECT 1", {}, refused))


def test_wait_for_metastore_gives_up_at_the_deadline(tmp_path: Path) -> None:
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{tmp_path}/missing/dir/x.db"))
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    with pytest.raises(MetastoreError, match="did not answer within 2 s"):
        wait_for_metastore(engine, 2.0, interval=0.5, clock=lambda: now[0], sleep=sleep)
    assert len(waits) == 4


def test_wait_for_metastore_returns_when_reachable(metastore_engine: Engine) -> None:
    wait_for_metastore(metastore_engine, 1.0)
