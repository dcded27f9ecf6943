"""What only the metastore on MariaDB has (the rest: ``test_metastore_servers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql.connections
import pytest
from sqlalchemy import Engine

from cluster.config import MetastoreSettings
from cluster.metastore.engine import create_engine_for
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
