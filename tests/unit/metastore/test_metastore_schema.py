"""The models, the migration and the indexes the scheduler depends on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from cluster.config import MetastoreSettings
from cluster.errors import MigrationError
from cluster.metastore.engine import create_engine_for
from cluster.metastore.migrate import check, current_revision, head_revision, migrate, reset
from cluster.metastore.models import Base, DagRun, TaskInstance

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
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


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
    "idx_ti_state_pool": "SELECT * FROM task_instance WHERE state IN ('scheduled') AND pool = 'p'",
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
