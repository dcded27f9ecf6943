"""A mapped instance gets the values its run's mappings expand over with its claim, so
its try picks its share without a metastore round trip of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from cluster.execution import recording
from cluster.execution.handle import MetastoreTaskInstance
from cluster.messages import TaskMessage
from cluster.metastore.models import DagRun, TaskInstance, TaskMap, XCom
from cluster.metastore.transitions import moves_transaction

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _seed(session: Session) -> None:
    """``numbers`` pushed ``[1, 2, 3]`` for ``double`` to map over; ``note`` pushed a value
    nothing maps over; ``double[0]`` and the plain ``report`` are queued."""
    session.execute(
        insert(DagRun).values(dag_id="m", run_id="r", run_type="manual", state="running", conf={})
    )
    rows = [
        ("numbers", -1, "success"),
        ("note", -1, "success"),
        ("double", 0, "queued"),
        ("report", -1, "queued"),
    ]
    session.execute(
        insert(TaskInstance),
        [
            {"dag_id": "m", "run_id": "r", "task_id": t, "map_index": i, "state": s,
             "try_number": 1}
            for t, i, s in rows
        ],
    )  # fmt: skip
    session.execute(
        insert(XCom),
        [
            {"dag_id": "m", "run_id": "r", "task_id": t, "map_index": -1,
             "key": "return_value", "value": json.dumps(v), "timestamp": NOW}
            for t, v in [("numbers", [1, 2, 3]), ("note", "hello")]
        ],
    )  # fmt: skip
    session.execute(
        insert(TaskMap).values(dag_id="m", run_id="r", task_id="numbers", map_index=-1, length=3)
    )


def _claim(factory: sessionmaker[Session], *messages: TaskMessage) -> dict[TaskMessage, object]:
    return moves_transaction(
        factory,
        lambda s, optimistic: recording.claim_many(
            s, [(m, 1) for m in messages], hostname="h", now=NOW, optimistic=optimistic
        ),
    )


def _no_metastore() -> sessionmaker[Session]:
    pytest.fail("the pull went to the metastore")


def test_a_mapped_instance_is_claimed_with_the_values_it_expands_over(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session)
    mapped = TaskMessage("m", "r", "double", 0, 1, "fp")
    plain = TaskMessage("m", "r", "report", -1, 1, "fp")
    claimed = _claim(session_factory, mapped, plain)
    assert claimed[mapped].mapped_inputs == (("numbers", "[1, 2, 3]"),)  # type: ignore[attr-defined]
    assert claimed[plain].mapped_inputs == ()  # type: ignore[attr-defined]
    ti = MetastoreTaskInstance(claimed[mapped], hostname="h", sessions=_no_metastore)  # type: ignore[arg-type]
    assert ti.xcom_pull(task_ids="numbers") == [1, 2, 3]
    assert ti.xcom_pull(task_ids="numbers", map_indexes=-1) == [1, 2, 3]


def test_other_pulls_of_a_mapped_instance_still_read_the_metastore(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session)
    mapped = TaskMessage("m", "r", "double", 0, 1, "fp")
    claimed = _claim(session_factory, mapped)
    ti = MetastoreTaskInstance(claimed[mapped], hostname="h", sessions=lambda: session_factory)  # type: ignore[arg-type]
    assert ti.xcom_pull(task_ids="note") == "hello"
    assert ti.xcom_pull(task_ids="numbers", key="other") is None
