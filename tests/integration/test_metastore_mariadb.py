"""The metastore on a real MariaDB: races, lock waits, deadlocks and a server restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pymysql.connections
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.devcluster.services.mariadb import MariaDB
from cluster.errors import MetastoreError
from cluster.metastore.engine import (
    SessionFactory,
    create_engine_for,
    make_session_factory,
    transaction,
    wait_for_metastore,
)
from cluster.metastore.migrate import check, migrate
from cluster.metastore.models import Base, DagRun, SlotPool, TaskInstance
from cluster.metastore.mysql_connect import shared_context_class
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.states import TaskState

pytestmark = pytest.mark.mariadb


@pytest.fixture
def engine(mariadb_url: str) -> Iterator[Engine]:
    engine = create_engine_for(MetastoreSettings(url=mariadb_url, pool_size=4))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> SessionFactory:
    return make_session_factory(engine)


def test_migrate_is_idempotent_and_matches_the_models(engine: Engine) -> None:
    migrate(engine)
    check(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []
        isolation = connection.execute(text("SELECT @@session.tx_isolation")).scalar()
        charset = connection.execute(text("SELECT @@character_set_client")).scalar()
    assert (isolation, charset) == ("READ-COMMITTED", "utf8mb4")


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


def test_ids_are_case_sensitive_and_keep_unicode(factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="etl", run_id="manual__é", run_type="manual"))
        session.add(DagRun(dag_id="ETL", run_id="manual__é", run_type="manual"))
        session.add(SlotPool(pool="Pool 🚀", slots=1))
    with factory() as session:
        assert sorted(session.scalars(select(DagRun.dag_id))) == ["ETL", "etl"]
        assert session.get(SlotPool, "Pool 🚀") is not None


def test_exactly_one_of_two_racing_claims_wins(factory: SessionFactory) -> None:
    attempts = 200
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        for n in range(attempts):
            session.add(
                TaskInstance(dag_id="d", run_id="r", task_id=f"t{n}", state="queued", try_number=1)
            )
    barrier = threading.Barrier(2)

    def claim(key: TaskKey) -> bool:
        with factory() as session, session.begin():
            barrier.wait(timeout=10)
            return set_task_state(session, key, TaskState.RUNNING, try_number=1)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(attempts):
            key = TaskKey("d", "r", f"t{n}")
            results = list(pool.map(claim, [key, key]))
            assert sorted(results) == [False, True], f"attempt {n}: {results}"


def lock_row(session: Session, task_id: str) -> None:
    session.execute(
        update(TaskInstance).where(TaskInstance.task_id == task_id).values(priority_weight=7)
    )


def test_a_lock_wait_timeout_is_retried(factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        session.add(TaskInstance(dag_id="d", run_id="r", task_id="t"))
    holder = factory()
    holder.begin()
    lock_row(holder, "t")  # holds the row lock until released below
    waits: list[float] = []

    def release_then_wait(seconds: float) -> None:
        waits.append(seconds)
        holder.commit()

    def work(session: Session) -> bool:
        session.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        return set_task_state(session, TaskKey("d", "r", "t"), TaskState.SCHEDULED)

    try:
        assert transaction(factory, work, sleep=release_then_wait) is True
    finally:
        holder.close()
    assert len(waits) == 1


def test_a_deadlock_is_retried_until_both_commit(factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        session.add_all([TaskInstance(dag_id="d", run_id="r", task_id=t) for t in ("a", "b")])
    barrier = threading.Barrier(2)
    waits: list[float] = []

    def crosswise(first: str, second: str) -> str:
        attempts = [0]

        def work(session: Session) -> str:
            session.execute(text("SET SESSION innodb_lock_wait_timeout = 20"))
            attempts[0] += 1
            lock_row(session, first)
            if attempts[0] == 1:
                barrier.wait(timeout=10)  # both hold their first row: now cross
            lock_row(session, second)
            return first

        return transaction(factory, work, sleep=waits.append)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = [pool.submit(crosswise, "a", "b"), pool.submit(crosswise, "b", "a")]
        assert sorted(f.result(timeout=60) for f in done) == ["a", "b"]
    assert len(waits) >= 1


def test_the_same_engine_survives_a_server_restart(
    mariadb: MariaDB, factory: SessionFactory, engine: Engine
) -> None:
    def count_pools(session: Session) -> int:
        return len(session.scalars(select(SlotPool)).all())

    assert transaction(factory, count_pools) == 1  # a pooled connection now exists
    mariadb.stop()
    try:
        with pytest.raises(MetastoreError):
            transaction(factory, count_pools, retries=2, sleep=lambda _: None)
    finally:
        mariadb.start()
    wait_for_metastore(engine, 30)
    assert transaction(factory, count_pools) == 1
