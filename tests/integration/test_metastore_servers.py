"""The metastore on a real MariaDB and a real PostgreSQL (each test runs on both): the
schema the models describe, ids as given, races, lock waits, deadlocks and a server restart.
What only one server has is tested in ``test_metastore_mariadb.py`` / ``_postgres.py``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.errors import MetastoreError
from cluster.metastore.engine import (
    SessionFactory,
    create_engine_for,
    make_session_factory,
    transaction,
    wait_for_metastore,
)
from cluster.metastore.migrate import check, migrate
from cluster.metastore.models import DagRun, SlotPool, TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.states import TaskState
from tests.databases import DatabaseServer
from tests.schema import check_run_date_migration, schema_differences

#: per server: (isolation and encoding query, their expected values, a short lock wait)
SESSION_FACTS = {
    "mysql": (
        "SELECT @@session.tx_isolation, @@character_set_client",
        ("READ-COMMITTED", "utf8mb4"),
        "SET SESSION innodb_lock_wait_timeout = 1",
    ),
    "postgresql": (
        "SELECT current_setting('transaction_isolation'), current_setting('server_encoding')",
        ("read committed", "UTF8"),
        "SET LOCAL lock_timeout = '500ms'",
    ),
}


@pytest.fixture
def engine(database_server: DatabaseServer) -> Iterator[Engine]:
    name = f"tw_{uuid.uuid4().hex[:12]}"
    url = database_server.create_database(name)
    engine = create_engine_for(MetastoreSettings(url=url, pool_size=4))
    migrate(engine)
    yield engine
    engine.dispose()
    if database_server.alive():
        database_server.drop_database(name)


@pytest.fixture
def factory(engine: Engine) -> SessionFactory:
    return make_session_factory(engine)


def test_migrate_is_idempotent_and_matches_the_models(engine: Engine) -> None:
    migrate(engine)
    check(engine)
    query, expected, _ = SESSION_FACTS[engine.dialect.name]
    with engine.connect() as connection:
        assert schema_differences(connection) == []
        assert tuple(connection.execute(text(query)).one()) == expected


def test_the_run_date_migration_fills_existing_rows_and_goes_down(
    database_server: DatabaseServer,
) -> None:
    name = f"tw_{uuid.uuid4().hex[:12]}"
    engine = create_engine_for(MetastoreSettings(url=database_server.create_database(name)))
    try:
        check_run_date_migration(engine)
    finally:
        engine.dispose()
        database_server.drop_database(name)


def test_ids_are_case_sensitive_and_keep_unicode(factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="etl", run_id="manual__é", run_type="manual"))
        session.add(DagRun(dag_id="ETL", run_id="manual__é", run_type="manual"))
        session.add(SlotPool(pool="Pool 🚀", slots=1))
    with factory() as session:
        assert sorted(session.scalars(select(DagRun.dag_id))) == ["ETL", "etl"]
        assert session.get(SlotPool, "Pool 🚀") is not None


def test_exactly_one_of_two_racing_claims_wins(factory: SessionFactory) -> None:
    attempts = 100
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


def test_a_lock_wait_timeout_is_retried(engine: Engine, factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        session.add(TaskInstance(dag_id="d", run_id="r", task_id="t"))
    holder = factory()
    holder.begin()
    lock_row(holder, "t")  # holds the row lock until released below
    waits: list[float] = []
    short_wait = SESSION_FACTS[engine.dialect.name][2]

    def release_then_wait(seconds: float) -> None:
        waits.append(seconds)
        holder.commit()

    def work(session: Session) -> bool:
        session.execute(text(short_wait))
        return set_task_state(session, TaskKey("d", "r", "t"), TaskState.SCHEDULED)

    try:
        assert transaction(factory, work, sleep=release_then_wait) is True
    finally:
        holder.close()
    assert len(waits) == 1


def test_a_deadlock_is_retried_until_both_commit(engine: Engine, factory: SessionFactory) -> None:
    with factory() as session, session.begin():
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        session.add_all([TaskInstance(dag_id="d", run_id="r", task_id=t) for t in ("a", "b")])
    barrier = threading.Barrier(2)
    waits: list[float] = []

    def crosswise(first: str, second: str) -> str:
        attempts = [0]

        def work(session: Session) -> str:
            if engine.dialect.name == "mysql":
                # InnoDB's default 50 s wait must not decide before its deadlock detector
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
    database_server: DatabaseServer, factory: SessionFactory, engine: Engine
) -> None:
    def count_pools(session: Session) -> int:
        return len(session.scalars(select(SlotPool)).all())

    assert transaction(factory, count_pools) == 1  # a pooled connection now exists
    database_server.stop()
    try:
        with pytest.raises(MetastoreError):
            transaction(factory, count_pools, retries=2, sleep=lambda _: None)
    finally:
        database_server.start()
    wait_for_metastore(engine, 30)
    assert transaction(factory, count_pools) == 1


def test_a_crash_between_transactions_is_retried_on_a_new_connection(
    database_server: DatabaseServer, factory: SessionFactory
) -> None:
    """Pooled connections of a crashed server fail their next statement: retried."""
    assert transaction(factory, lambda s: s.scalar(select(SlotPool.slots))) == 128
    database_server.kill()
    waits: list[float] = []

    def start_then_wait(seconds: float) -> None:
        if not database_server.alive():
            database_server.start()
        waits.append(seconds)

    slots = transaction(factory, lambda s: s.scalar(select(SlotPool.slots)), sleep=start_then_wait)
    assert slots == 128 and len(waits) >= 1
