"""The metastore on a real PostgreSQL: types, races, lock waits, deadlocks, a server restart,
the change-counter triggers both ways, and the plans of the hot queries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.errors import MetastoreError
from cluster.metastore.engine import (
    SessionFactory,
    bound_idle_transactions,
    create_engine_for,
    make_session_factory,
    transaction,
    wait_for_metastore,
)
from cluster.metastore.migrate import alembic_config, check, migrate
from cluster.metastore.models import Base, DagRun, SlotPool, TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state

# private names: these are the very statements the loop runs many times a second
from cluster.scheduler.dagruns import _ACTIVE_RUNS, _ANY_IN, _COUNT, _INSTANCES, _WAITING
from cluster.scheduler.queueing import _OCCUPANCY, _SCHEDULED_FIRST
from cluster.states import TaskState
from cluster.web.pages.recent_runs import window_statement

pytestmark = pytest.mark.postgres

T0 = datetime(2025, 3, 30, 1, 59, 59, 999999, tzinfo=UTC)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_for(MetastoreSettings(url=postgres_url, pool_size=4))
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
        isolation = connection.execute(text("SHOW transaction_isolation")).scalar()
        encoding = connection.execute(text("SHOW server_encoding")).scalar()
        stamp_type = connection.execute(
            text(
                "SELECT data_type FROM information_schema.columns"
                " WHERE table_name = 'dag_run' AND column_name = 'logical_date'"
            )
        ).scalar()
    assert (isolation, encoding) == ("read committed", "UTF8")
    assert stamp_type == "timestamp with time zone"


def test_timestamps_come_back_in_utc_whatever_the_session_time_zone(
    factory: SessionFactory,
) -> None:
    with factory() as session, session.begin():
        session.execute(text("SET LOCAL TimeZone = 'America/New_York'"))
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual", logical_date=T0))
    with factory() as session, session.begin():
        session.execute(text("SET LOCAL TimeZone = 'Asia/Kolkata'"))
        run = session.scalars(select(DagRun)).one()
        stored = session.scalar(text("SELECT logical_date AT TIME ZONE 'UTC' FROM dag_run"))
    assert run.logical_date == T0 and run.logical_date.tzinfo is UTC
    assert stored == T0.replace(tzinfo=None)


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


def test_a_lock_timeout_is_retried(factory: SessionFactory) -> None:
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
        session.execute(text("SET LOCAL lock_timeout = '500ms'"))
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


def test_a_frozen_transaction_is_ended_by_the_server(postgres_url: str) -> None:
    """What frees the fencing lease from a frozen leader (``ha.session_timeout``)."""
    engine = create_engine_for(MetastoreSettings(url=postgres_url, pool_size=1))
    bound_idle_transactions(engine, 1.0)
    try:
        with engine.connect() as connection:
            limit = connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
        assert limit == "1s"
    finally:
        engine.dispose()


def test_the_same_engine_survives_a_server_restart(
    postgres: PostgreSQL, factory: SessionFactory, engine: Engine
) -> None:
    def count_pools(session: Session) -> int:
        return len(session.scalars(select(SlotPool)).all())

    assert transaction(factory, count_pools) == 1  # a pooled connection now exists
    postgres.stop()
    try:
        with pytest.raises(MetastoreError):
            transaction(factory, count_pools, retries=2, sleep=lambda _: None)
    finally:
        postgres.start()
    wait_for_metastore(engine, 30)
    assert transaction(factory, count_pools) == 1


def test_a_crash_between_transactions_is_retried_on_a_new_connection(
    postgres: PostgreSQL, factory: SessionFactory
) -> None:
    """Pooled connections of a crashed server fail their next statement: retried."""
    assert transaction(factory, lambda s: s.scalar(select(SlotPool.slots))) == 128
    postgres.kill()
    waits: list[float] = []

    def start_then_wait(seconds: float) -> None:
        if not postgres.alive():
            postgres.start()
        waits.append(seconds)

    slots = transaction(factory, lambda s: s.scalar(select(SlotPool.slots)), sleep=start_then_wait)
    assert slots == 128 and len(waits) >= 1


def test_the_counting_triggers_go_down_and_up_with_their_migration(engine: Engine) -> None:
    def triggers() -> set[str]:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            ).scalars()
            return set(rows)

    assert len(triggers()) == 8
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    with engine.connect() as connection:
        function = connection.execute(
            text("SELECT count(*) FROM pg_proc WHERE proname = 'tw_count_change'")
        ).scalar()
    assert triggers() == set() and function == 0
    migrate(engine)
    assert len(triggers()) == 8
    with engine.begin() as connection:
        connection.execute(text("UPDATE change_counter SET changes = 0"))
        connection.execute(
            text(
                "INSERT INTO dag (dag_id, fileloc, is_paused, is_active) VALUES ('d', 'f', false, true)"
            )
        )
        connection.execute(text("UPDATE dag SET last_parsed_at = now()"))  # not shown: not counted
        connection.execute(text("UPDATE dag SET is_paused = is_paused"))  # no change: not counted
        connection.execute(text("UPDATE dag SET is_paused = true"))
        counts = dict(connection.execute(text("SELECT name, changes FROM change_counter")).all())
    assert counts == {"dag": 2, "dag_run": 0, "import_error": 0}


# --- the plans of the hot queries ---------------------------------------------------


@pytest.fixture
def busy(engine: Engine) -> Engine:
    """A metastore with history: 20,000 finished runs (the last 400 of 50 tasks), and
    one live run of 50 tasks in every unfinished state; statistics up to date."""
    statements = [
        "INSERT INTO dag (dag_id, fileloc, is_paused, is_active)"
        " SELECT 'dag' || d, 'f', false, true FROM generate_series(0, 19) d",
        "INSERT INTO dag_run (dag_id, run_id, run_type, state, clear_number, logical_date)"
        " SELECT 'dag' || (r % 20), 'run' || r, 'scheduled',"
        " CASE WHEN r = 20000 THEN 'running' ELSE 'success' END, 0,"
        " timestamptz '2024-01-01' + r * interval '1 hour' FROM generate_series(0, 20000) r",
        "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, try_number, max_tries,"
        " state, pool, pool_slots, queue, priority_weight, queued_at, heartbeat_at)"
        " SELECT 'dag' || (r % 20), 'run' || r, 't' || t, -1, 1, 0,"
        " CASE WHEN r < 20000 THEN 'success'"
        " ELSE (ARRAY['scheduled', 'queued', 'running', 'none', 'success'])[t % 5 + 1] END,"
        " 'default_pool', 1, 'default', 1, now(), now()"
        " FROM generate_series(19600, 20000) r, generate_series(0, 49) t",
        "ANALYZE dag, dag_run, task_instance",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    return engine


def plan(engine: Engine, statement: Any, params: dict[str, Any]) -> str:
    """PostgreSQL's plan of ``statement`` as SQLAlchemy sends it, with these values."""

    def explain(*args: Any) -> tuple[str, Any]:
        sql, parameters = args[2], args[3]
        return f"EXPLAIN {sql}", parameters

    with engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", explain, retval=True)
        result = connection.execute(statement, params)
        return "\n".join(row[0] for row in result.cursor.fetchall())


def hot_queries() -> dict[str, tuple[Any, dict[str, Any]]]:
    """The scheduler's and the web's statements that run many times a second."""
    now = datetime.now(UTC)
    run = {"dag_id": "dag0", "run_id": "run20000"}
    window = {f"dag_id_{i}": f"dag{i}" for i in range(20)}
    window.update({f"cutoff_{i}": now - timedelta(days=3) for i in range(20)})
    return {
        "scheduled": (_SCHEDULED_FIRST, {"limit": 32}),
        "occupancy": (_OCCUPANCY, {}),
        "active runs": (_ACTIVE_RUNS, {}),
        "run size": (_COUNT, run),
        "waiting in run": (_ANY_IN, {**run, "states": _WAITING}),
        "instances": (_INSTANCES, run),
        "recent runs": (window_statement((True,) * 20), window),
    }


@pytest.mark.parametrize("name", sorted(hot_queries()))
def test_the_hot_queries_read_indexes_not_whole_tables(busy: Engine, name: str) -> None:
    """PostgreSQL has no index hints: the planner must choose the indexes by itself
    (the MySQL ``FORCE INDEX`` of the recent runs renders nothing here)."""
    statement, params = hot_queries()[name]
    shown = plan(busy, statement, params)
    assert "Seq Scan on task_instance" not in shown, shown
    assert "Seq Scan on dag_run" not in shown, shown
    assert "Index" in shown, shown
