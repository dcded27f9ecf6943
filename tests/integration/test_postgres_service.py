"""The private PostgreSQL of the test run: reachable, restartable, and recovering from a crash."""

from __future__ import annotations

import psycopg
import pytest

from cluster.devcluster.services.postgres import PostgreSQL

pytestmark = pytest.mark.postgres


def connect(postgres: PostgreSQL, database: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        password=postgres.password,
        dbname=database,
        autocommit=True,
    )


def test_a_created_database_belongs_to_the_user_and_survives_a_crash(postgres: PostgreSQL) -> None:
    url = postgres.create_database("tw_service_check")
    assert url.startswith("postgresql+psycopg://") and url.endswith("/tw_service_check")
    try:
        with connect(postgres, "tw_service_check") as connection:
            connection.execute("CREATE TABLE kept (n int)")
            connection.execute("INSERT INTO kept VALUES (1)")
        first_pid = postgres.pid
        postgres.kill()
        assert not postgres.alive() and not postgres.ping()
        postgres.start()
        assert postgres.pid != first_pid and postgres.ping()
        with connect(postgres, "tw_service_check") as connection:
            assert connection.execute("SELECT n FROM kept").fetchall() == [(1,)]
            owner = connection.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            ).fetchone()
        assert owner == (postgres.user,)
        assert "database system is ready to accept connections" in postgres.log_tail(400)
    finally:
        postgres.drop_database("tw_service_check")
