"""``metastore.url`` read as the driver-only reads connect (:mod:`cluster.metastore.dbapi`):
the same URLs the engine takes, the same arguments SQLAlchemy would give the driver,
and the same error for a database Tradewind does not support."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cluster.config import MetastoreSettings
from cluster.errors import ConfigError
from cluster.metastore.dbapi import Reader, target_of
from cluster.metastore.engine import create_engine_for


def options(url: str, **settings: bool) -> tuple[str, dict[str, object]]:
    target = target_of(MetastoreSettings(url=url, **settings))
    return target.backend, dict(target.options)


def test_sqlite_paths_as_sqlalchemy_reads_them() -> None:
    assert options("sqlite:////abs/tw.db") == (
        "sqlite",
        {"database": "/abs/tw.db", "uri": False, "timeout": 30.0},
    )
    assert options("sqlite:///relative.db")[1]["database"] == "relative.db"
    assert options("sqlite://")[1]["database"] == ":memory:"


def test_mysql_url_with_socket_charset_and_an_encoded_password() -> None:
    backend, found = options(
        "mysql+pymysql://tw:p%40ss%2Fw@localhost/tradewind?unix_socket=/d/my.sock&charset=utf8mb4"
    )
    assert backend == "mysql"
    assert found == {
        "user": "tw",
        "password": "p@ss/w",
        "host": "localhost",
        "database": "tradewind",
        "unix_socket": "/d/my.sock",
        "charset": "utf8mb4",
        "connect_timeout": 10,
    }
    assert options("mariadb+pymysql://u@h:3307/db?connect_timeout=3&ssl_verify_cert=true")[1] == {
        "user": "u",
        "host": "h",
        "port": 3307,
        "database": "db",
        "charset": "utf8mb4",
        "connect_timeout": 3,
        "ssl_verify_cert": True,
    }


def test_postgres_url_with_a_socket_directory_and_pgbouncer() -> None:
    backend, found = options("postgresql+psycopg://tw:tw@/tradewind?host=/run/pg&port=25432")
    assert backend == "postgresql"
    assert found == {
        "user": "tw",
        "password": "tw",
        "dbname": "tradewind",
        "host": "/run/pg",
        "port": "25432",
        "connect_timeout": 10,
    }
    pooled = options("postgresql+psycopg://tw:tw@127.0.0.1:6432/tw", pgbouncer=True)[1]
    assert pooled["prepare_threshold"] is None and pooled["port"] == 6432


@pytest.mark.parametrize(
    "url", ["nosuch://x", "postgresql+psycopg2://u@h/db", "mysql+mysqldb://u@h/db", "oracle://h"]
)
def test_an_unsupported_url_is_the_engines_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="unsupported database") as light:
        target_of(MetastoreSettings(url=url))
    if not url.startswith("mysql"):  # the engine lets SQLAlchemy pick a MySQL driver
        with pytest.raises(ConfigError) as engine:
            create_engine_for(MetastoreSettings(url=url))
        assert str(light.value) == str(engine.value)


@pytest.mark.parametrize(
    ("backend", "bound"),
    [
        ("sqlite", "2024-03-04 03:06:07.000009"),
        ("mysql", datetime(2024, 3, 4, 3, 6, 7, 9)),
        ("postgresql", datetime(2024, 3, 4, 3, 6, 7, 9, tzinfo=UTC)),
    ],
)
def test_datetimes_are_bound_in_utc_as_the_orm_stores_them(backend: str, bound: object) -> None:
    reader = Reader(backend, driver=None, connection=None)  # type: ignore[arg-type]
    when = datetime(2024, 3, 4, 5, 6, 7, 9, tzinfo=timezone(timedelta(hours=2)))
    assert reader._bind(when) == bound
    assert reader.utc("2024-03-04 03:06:07.000009") == when
    assert reader.utc(when).tzinfo is UTC  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="naive"):
        reader._bind(datetime(2024, 3, 4))
