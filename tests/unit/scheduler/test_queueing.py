"""Queueing: the bulk move to ``queued`` dispatches exactly the instances it moved."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.queueing import _move_to_queued, _scheduled, queue_ready

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _seed(session: Session, task_ids: list[str]) -> None:
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
        rows = list(_scheduled(session, None))
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "b").values(state="none")
        )
        dispatches = _move_to_queued(session, DagCache(), rows, now=NOW, epoch=1)
    assert [(d.message.task_id, d.message.try_number) for d in dispatches] == [("a", 3)]
    with session_factory() as session:
        states = dict(session.execute(select(TaskInstance.task_id, TaskInstance.state)).all())
    assert states == {"a": "queued", "b": "none"}
