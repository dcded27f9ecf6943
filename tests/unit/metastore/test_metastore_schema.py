"""The models, the migration and the indexes the scheduler depends on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.errors import MetastoreError, MigrationError
from cluster.metastore.engine import create_engine_for
from cluster.metastore.migrate import (
    check,
    current_revision,
    head_revision,
    migrate,
    reset,
    wait_for_schema,
)
from cluster.metastore.models import DagRun, TaskInstance
from tests.schema import check_run_date_migration, schema_differences

NOW = datetime(2025, 1, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_migrate_twice_is_a_noop(metastore_engine: Engine) -> None:
    assert current_revision(metastore_engine) == head_revision()
    migrate(metastore_engine)
    check(metastore_engine)


def test_check_refuses_an_empty_database(metastore_url: str) -> None:
    engine = create_engine_for(MetastoreSettings(url=metastore_url))
    assert current_revision(engine) is None
    with pytest.raises(MigrationError, match="run 'tradewind db migrate'"):
        check(engine)


def test_reset_empties_every_table(metastore_engine: Engine, session: Session) -> None:
    session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
    session.commit()
    session.close()
    reset(metastore_engine)
    with Session(metastore_engine) as fresh:
        assert fresh.scalars(select(DagRun)).all() == []
    check(metastore_engine)


def test_schema_matches_the_models(metastore_engine: Engine) -> None:
    with metastore_engine.connect() as connection:
        assert schema_differences(connection) == []


def test_the_run_date_migration_fills_existing_rows_and_goes_down(metastore_url: str) -> None:
    check_run_date_migration(create_engine_for(MetastoreSettings(url=metastore_url)))


def test_task_instance_defaults(session: Session) -> None:
    session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
    session.add(TaskInstance(dag_id="d", run_id="r", task_id="t"))
    session.commit()
    ti = session.scalars(select(TaskInstance)).one()
    assert (ti.state, ti.try_number, ti.map_index, ti.pool) == ("none", 0, -1, "default_pool")
    raw = session.execute(text("SELECT state FROM task_instance")).scalar()
    assert raw == "none"


def test_timestamps_come_back_aware_utc_with_microseconds(session: Session) -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    session.add(
        DagRun(dag_id="d", run_id="r", run_type="manual", logical_date=paris, conf={"a": [1]})
    )
    session.commit()
    session.expunge_all()
    run = session.scalars(select(DagRun)).one()
    assert run.logical_date == NOW and run.logical_date.tzinfo is UTC
    assert run.conf == {"a": [1]}


def test_naive_timestamps_are_refused(session: Session) -> None:
    session.add(
        DagRun(dag_id="d", run_id="r", run_type="manual", logical_date=datetime(2025, 1, 1))
    )
    with pytest.raises(StatementError, match="naive"):
        session.commit()


def test_deleting_a_run_cascades_to_its_task_instances(session: Session) -> None:
    run = DagRun(dag_id="d", run_id="r", run_type="manual")
    session.add(run)
    session.add(TaskInstance(dag_id="d", run_id="r", task_id="t"))
    session.commit()
    session.execute(text("DELETE FROM dag_run"))
    session.commit()
    assert session.scalars(select(TaskInstance)).all() == []


HOT_QUERIES = {
    "idx_ti_state_pool_priority": (
        "SELECT * FROM task_instance WHERE state IN ('scheduled') AND pool = 'p'"
    ),
    "idx_ti_state_queued_at": (
        "SELECT * FROM task_instance WHERE state = 'queued' AND queued_at < '2025-01-01'"
    ),
    "idx_ti_state_heartbeat_at": (
        "SELECT * FROM task_instance WHERE state = 'running' AND heartbeat_at < '2025-01-01'"
    ),
    "idx_ti_dag_run_state": (
        "SELECT * FROM task_instance WHERE dag_id = 'd' AND run_id = 'r' AND state = 'none'"
    ),
    "idx_dag_run_state": "SELECT * FROM dag_run WHERE state = 'running'",
    "idx_dag_next_dagrun_create_after": (
        "SELECT * FROM dag WHERE is_paused = 0 AND is_active = 1 "
        "AND next_dagrun_create_after <= '2025-01-01'"
    ),
}


@pytest.mark.parametrize("index", list(HOT_QUERIES))
def test_hot_queries_use_an_index(metastore_engine: Engine, index: str) -> None:
    with metastore_engine.connect() as connection:
        plan = connection.execute(text(f"EXPLAIN QUERY PLAN {HOT_QUERIES[index]}")).all()
    assert index in " ".join(str(row[-1]) for row in plan)


class Polls:
    """An injected clock and sleep: each sleep moves the clock; ``on_sleep`` may act."""

    def __init__(self, on_sleep: Callable[[int], None] = lambda n: None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep
        self.announced: list[str] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        self.on_sleep(self.sleeps)

    def wait(self, engine: Engine, timeout: float) -> None:
        wait_for_schema(
            engine,
            timeout,
            interval=0.5,
            clock=self.clock,
            sleep=self.sleep,
            announce=self.announced.append,
        )


def test_wait_for_schema_waits_for_the_migration_and_says_so_once(metastore_url: str) -> None:
    engine = create_engine_for(MetastoreSettings(url=metastore_url))
    migrate(engine, to="0001")
    polls = Polls(on_sleep=lambda n: migrate(engine) if n == 3 else None)
    polls.wait(engine, 60)
    assert current_revision(engine) == head_revision()
    assert polls.sleeps == 3
    assert polls.announced == [
        f"the metastore schema is at revision 0001, this code needs {head_revision()}: "
        "waiting up to 60 s for 'tradewind db migrate' (metastore.migration_wait_timeout)"
    ]


def test_wait_for_schema_gives_up_after_the_timeout(metastore_url: str) -> None:
    engine = create_engine_for(MetastoreSettings(url=metastore_url))
    polls = Polls()
    with pytest.raises(MigrationError) as failed:
        polls.wait(engine, 2)
    assert str(failed.value) == (
        f"the metastore schema is at an empty database, this code needs {head_revision()}: "
        "run 'tradewind db migrate'"
    )
    assert polls.sleeps == 4 and len(polls.announced) == 1


def test_wait_for_schema_returns_at_once_on_a_migrated_metastore(metastore_engine: Engine) -> None:
    polls = Polls()
    polls.wait(metastore_engine, 60)
    assert (polls.sleeps, polls.announced) == (0, [])


def test_a_schema_newer_than_the_code_fails_at_once(metastore_engine: Engine) -> None:
    with metastore_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    polls = Polls()
    with pytest.raises(MigrationError, match="at revision 9999, newer than this code's"):
        polls.wait(metastore_engine, 60)
    assert (polls.sleeps, polls.announced) == (0, [])
    with pytest.raises(MigrationError, match="upgrade Tradewind on this node"):
        check(metastore_engine)


def test_a_webserver_does_not_wait_for_an_unreachable_metastore() -> None:
    engine = create_engine_for(MetastoreSettings(url="mysql+pymysql://tw:tw@127.0.0.1:1/none"))
    said: list[str] = []

    wait_for_schema(engine, 60, announce=said.append, unreachable_ok=True, sleep=_no_sleep)

    assert said == [
        "the metastore does not answer: starting anyway (/health answers 503 until it does)"
    ]
    with pytest.raises(MetastoreError):  # every other role still waits, then fails
        wait_for_schema(engine, 0, sleep=_no_sleep)


def _no_sleep(seconds: float) -> None:
    raise AssertionError("waited although it need not")
