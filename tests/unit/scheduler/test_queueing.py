"""Queueing: the bulk move to ``queued`` dispatches exactly the instances it moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.dagruns import step_active_runs
from cluster.scheduler.queueing import (
    _move_to_queued,
    _scheduled,
    queue_ready,
    scheduled_statement,
)

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _seed(session: Session, task_ids: list[str], *, instances: bool = True) -> None:
    dag = SerializedDag(
        dag_id="q",
        fileloc="/dev/null",
        timetable={"type": "null"},
        schedule=None,
        tasks={t: SerializedTask(task_id=t, operator="BashOperator") for t in task_ids},
    )
    session.add(Dag(dag_id="q", fileloc="/dev/null", fingerprint=dag.fingerprint()))
    session.add(
        SerializedDagRow(
            dag_id="q", fileloc="/dev/null", data=dag.to_json(), fingerprint=dag.fingerprint()
        )
    )
    session.execute(
        insert(DagRun).values(
            dag_id="q", run_id="r", run_type="manual", state="running", conf={}, logical_date=NOW
        )
    )
    if instances and task_ids:
        session.execute(
            insert(TaskInstance),
            [
                {"dag_id": "q", "run_id": "r", "task_id": t, "state": "scheduled", "try_number": 2}
                for t in task_ids
            ],
        )


def test_every_scheduled_instance_is_dispatched_with_its_next_try(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b", "c"])
    with session_factory.begin() as session:
        dispatches = queue_ready(
            session, DagCache(), now=NOW, epoch=7, parallelism=32, executor_free=None
        )
    assert sorted((d.message.task_id, d.message.try_number) for d in dispatches) == [
        ("a", 3),
        ("b", 3),
        ("c", 3),
    ]
    with session_factory() as session:
        rows = session.execute(
            select(TaskInstance.state, TaskInstance.try_number, TaskInstance.queued_by_epoch)
        ).all()
    assert sorted(tuple(r) for r in rows) == [("queued", 3, 7)] * 3


def test_parallelism_bounds_what_is_queued(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        _seed(session, [f"t{i}" for i in range(10)])
    with session_factory.begin() as session:
        dispatches = queue_ready(
            session, DagCache(), now=NOW, epoch=1, parallelism=4, executor_free=3
        )
    assert len(dispatches) == 3


def test_an_instance_cleared_meanwhile_is_not_dispatched(
    session_factory: sessionmaker[Session],
) -> None:
    """A user's clear that lands between the loop's read and its update wins."""
    with session_factory.begin() as session:
        _seed(session, ["a", "b"])
    with session_factory.begin() as session:
        rows = list(_scheduled(session, None, pools=["default_pool"]))
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "b").values(state="none")
        )
        dispatches = _move_to_queued(session, DagCache(), rows, now=NOW, epoch=1)
    assert [(d.message.task_id, d.message.try_number) for d in dispatches] == [("a", 3)]
    with session_factory() as session:
        states = dict(session.execute(select(TaskInstance.task_id, TaskInstance.state)).all())
    assert states == {"a": "queued", "b": "none"}


def test_the_best_weight_goes_first_and_ties_go_to_the_oldest_run(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, [])
        for run_id, days in (("newer", 1), ("older", -1)):
            session.execute(
                insert(DagRun).values(
                    dag_id="q",
                    run_id=run_id,
                    run_type="manual",
                    state="running",
                    conf={},
                    logical_date=NOW + timedelta(days=days),
                )
            )
        session.execute(
            insert(TaskInstance),
            [
                {"dag_id": "q", "run_id": run_id, "task_id": task_id, "state": "scheduled",
                 "priority_weight": weight, "run_logical_date": NOW + timedelta(days=days)}
                for run_id, days in (("newer", 1), ("older", -1))
                for task_id, weight in (("light", 1), ("heavy", 5))
            ],
        )  # fmt: skip
    with session_factory.begin() as session:
        rows = [(r.task_id, r.run_id) for r in _scheduled(session, 3, pools=["default_pool"])]
    assert rows == [("heavy", "older"), ("heavy", "newer"), ("light", "older")]


#: per dialect: how to ask for a plan, refresh statistics, and what a sort looks like
PLANS = {
    "sqlite": ("EXPLAIN QUERY PLAN", "ANALYZE", "TEMP B-TREE"),
    "mysql": ("EXPLAIN", "ANALYZE TABLE task_instance", "filesort"),
    "postgresql": ("EXPLAIN", "ANALYZE task_instance", "Sort"),
}


def test_the_scheduled_read_walks_an_index_and_sorts_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    """With a 2,000-try backlog beside as much history, the database reads a pool's tries
    in the queueing order from ``idx_ti_state_pool_priority`` and stops at the limit: no
    sort of the backlog (before migration 0010 every iteration sorted all of it)."""
    with session_factory.begin() as session:
        _seed(session, [f"t{i}" for i in range(2000)])
        session.execute(
            insert(TaskInstance),
            [{"dag_id": "q", "run_id": "r", "task_id": f"done{i}", "state": "success"}
             for i in range(2000)],
        )  # fmt: skip
    with session_factory() as session:
        explain, analyze, sort = PLANS[session.get_bind().dialect.name]
        session.execute(text(analyze))
        params = {"pool_0": "default_pool", "limit": 32, "starved": ["other"]}
        plan = explained(session, explain, scheduled_statement(1), params)
    assert "idx_ti_state_pool_priority" in plan and sort not in plan, plan


def explained(session: Session, explain: str, statement: Any, params: dict[str, Any]) -> str:
    """The database's plan of ``statement`` as SQLAlchemy sends it, one line."""

    def prefixed(*args: Any) -> tuple[str, Any]:
        return f"{explain} {args[2]}", args[3]

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", prefixed, retval=True)
    try:
        result = connection.execute(statement, params)
        return " | ".join(" ".join(map(str, row)) for row in result.cursor.fetchall())
    finally:
        event.remove(connection, "before_cursor_execute", prefixed)


def test_a_started_run_s_instances_carry_its_logical_date(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a"], instances=False)
        session.execute(update(DagRun).values(state="queued"))
        session.execute(update(Dag).values(is_paused=False))
    with session_factory.begin() as session:
        step_active_runs(session, DagCache(), now=NOW)
    with session_factory() as session:
        dates = session.execute(select(TaskInstance.task_id, TaskInstance.run_logical_date)).all()
    assert [tuple(r) for r in dates] == [("a", NOW)]
