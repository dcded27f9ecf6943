"""What only the metastore on PostgreSQL has: time-zone types, the server ending a frozen
transaction, the change-counter triggers both ways, and the plans of the hot queries (the
rest: ``test_metastore_servers.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, select, text

from cluster.config import MetastoreSettings
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.metastore.engine import (
    SessionFactory,
    bound_idle_transactions,
    create_engine_for,
    make_session_factory,
)
from cluster.metastore.migrate import alembic_config, migrate
from cluster.metastore.models import DagRun

# private names: these are the very statements the loop runs many times a second
from cluster.scheduler.dagruns import _ACTIVE_RUNS, _ANY_IN, _COUNT, _INSTANCES, _WAITING
from cluster.scheduler.queueing import _OCCUPANCY, scheduled_statement
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


def test_timestamps_are_stored_with_their_time_zone(engine: Engine) -> None:
    with engine.connect() as connection:
        stamp_type = connection.execute(
            text(
                "SELECT data_type FROM information_schema.columns"
                " WHERE table_name = 'dag_run' AND column_name = 'logical_date'"
            )
        ).scalar()
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


@pytest.fixture(scope="module")
def busy(postgres: PostgreSQL) -> Iterator[Engine]:
    """A metastore with history: 20,000 finished runs (the last 400 of 50 tasks), and
    one live run of 50 tasks in every unfinished state; statistics up to date.

    Built once for the module (about 8 s): the plan tests only run EXPLAIN on it."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    engine = create_engine_for(MetastoreSettings(url=postgres.create_database(name), pool_size=4))
    migrate(engine)
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
    yield engine
    engine.dispose()
    postgres.drop_database(name)


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
        "scheduled": (
            scheduled_statement(1),
            {"pool_0": "default_pool", "limit": 32, "starved": ["dag1"]},
        ),
        "scheduled in two pools": (
            scheduled_statement(2),
            {"pool_0": "default_pool", "pool_1": "other", "limit": 32, "starved": []},
        ),
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
