"""What only the metastore on MariaDB has (the rest: ``test_metastore_servers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql.connections
import pytest
from sqlalchemy import Engine, text

from cluster.config import MetastoreSettings
from cluster.metastore.engine import create_engine_for, make_session_factory, transaction
from cluster.metastore.mysql_connect import shared_context_class

pytestmark = pytest.mark.mariadb


@pytest.fixture
def engine(mariadb_url: str) -> Iterator[Engine]:
    engine = create_engine_for(MetastoreSettings(url=mariadb_url, pool_size=4))
    yield engine
    engine.dispose()


def test_connections_share_one_opportunistic_tls_context(engine: Engine) -> None:
    """PyMySQL would load the CA bundle into a new context for every connection."""
    first, second = engine.raw_connection(), engine.raw_connection()
    try:
        assert first.dbapi_connection is not second.dbapi_connection
        shared = shared_context_class(pymysql.connections.Connection)
        assert isinstance(first.dbapi_connection, shared)
        assert first.dbapi_connection.ctx is second.dbapi_connection.ctx  # type: ignore[union-attr]
        assert first.dbapi_connection.ctx is not None  # type: ignore[union-attr]
    finally:
        first.close()
        second.close()


def _rollbacks_sent(engine: Engine) -> int:
    """The server's count of ROLLBACKs on this engine's one pooled connection."""
    with engine.connect() as connection:
        row = connection.exec_driver_sql("SHOW SESSION STATUS LIKE 'Com_rollback'").one()
        return int(row[1])


def test_a_committed_transaction_costs_no_rollback_when_its_connection_returns(
    mariadb_url: str,
) -> None:
    """SQLAlchemy's pool resets every returned connection with a rollback; after a commit
    there is nothing to undo, so none reaches the server. A read still ends with one."""
    engine = create_engine_for(MetastoreSettings(url=mariadb_url, pool_size=1))
    factory = make_session_factory(engine)
    try:
        first = _rollbacks_sent(engine)  # this read's own rollback shows in the next count
        for _ in range(5):
            transaction(factory, lambda s: s.execute(text("SELECT 1")))
        assert _rollbacks_sent(engine) == first + 1
        with factory() as session:  # a read that ends without commit is rolled back once
            session.execute(text("SELECT 1")).one()
        assert _rollbacks_sent(engine) == first + 3
    finally:
        engine.dispose()
