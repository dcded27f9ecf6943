"""Claiming and recording several tries in one transaction, each still a compare-and-set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.execution import recording
from cluster.execution.outcome import TryOutcome
from cluster.execution.pool import PoolBook
from cluster.messages import TaskMessage
from cluster.metastore.models import (
    DagRun,
    SerializedDagRow,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from cluster.metastore.transitions import moves_transaction

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _seed(session: Session, task_ids: list[str], *, try_number: int = 1) -> None:
    session.execute(
        insert(DagRun).values(
            dag_id="b", run_id="r", run_type="manual", state="running", conf={"k": 1},
            logical_date=NOW,
        )
    )  # fmt: skip
    session.execute(
        insert(TaskInstance),
        [
            {"dag_id": "b", "run_id": "r", "task_id": t, "state": "queued",
             "try_number": try_number, "max_tries": 1}
            for t in task_ids
        ],
    )  # fmt: skip


def _message(task_id: str, try_number: int = 1) -> TaskMessage:
    return TaskMessage("b", "r", task_id, -1, try_number, "fp")


def _states(session_factory: sessionmaker[Session]) -> dict[str, tuple[str, int | None]]:
    with session_factory() as session:
        rows = session.execute(select(TaskInstance.task_id, TaskInstance.state, TaskInstance.pid))
        return {task_id: (state, pid) for task_id, state, pid in rows}


def _claim(
    session_factory: sessionmaker[Session], assignments: list[tuple[TaskMessage, int]]
) -> dict[TaskMessage, recording.ClaimedTry]:
    """Claim ``(message, pid)`` pairs in one transaction, on host ``h`` at ``NOW``, as
    the pool does: optimistic first."""
    return moves_transaction(
        session_factory,
        lambda s, optimistic: recording.claim_many(
            s, assignments, hostname="h", now=NOW, optimistic=optimistic
        ),
    )


def test_a_batch_claim_takes_only_the_tries_still_queued_with_that_number(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b", "c"])
        # "c" was cleared by a user meanwhile
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "c").values(state="none")
        )
    stale = _message("b", try_number=0)  # an old message of an earlier try
    claimed = _claim(session_factory, [(_message("a"), 101), (stale, 102), (_message("c"), 103)])
    assert set(claimed) == {_message("a")}
    assert claimed[_message("a")].conf == {"k": 1}
    assert claimed[_message("a")].max_tries == 1
    assert _states(session_factory) == {
        "a": ("running", 101),
        "b": ("queued", None),
        "c": ("none", None),
    }
    again = _claim(session_factory, [(_message("a"), 104)])
    assert again == {}  # the same message delivered twice runs once


def test_a_batch_claim_gives_each_try_its_own_pid_and_compares_its_own_try_number(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b", "c"])
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id != "a").values(try_number=2)
        )
    wanted = [(_message("a"), 11), (_message("b", try_number=2), 12), (_message("c"), 13)]
    claimed = _claim(session_factory, wanted)
    assert set(claimed) == {_message("a"), _message("b", try_number=2)}
    assert _states(session_factory) == {
        "a": ("running", 11),
        "b": ("running", 12),
        "c": ("queued", None),  # its message names try 1; the instance is at try 2
    }


def test_a_batch_record_writes_every_winner_and_skips_a_try_that_lost_its_claim(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b", "c"])
    messages = [_message(t) for t in "abc"]
    claimed = _claim(session_factory, [(m, 7) for m in messages])
    with session_factory.begin() as session:
        # "b" was reaped as a zombie while it ran
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "b").values(state="failed")
        )
    spec = SerializedTask(task_id="x", operator="PythonOperator", retries=1, retry_delay=60)
    end = NOW + timedelta(seconds=3)
    outcomes = {
        "a": TryOutcome("success", xcoms=[("return_value", "42")]),
        "b": TryOutcome("success"),
        "c": TryOutcome("failed", message="boom"),
    }
    finished = [
        recording.finish(claimed[m], outcomes[m.task_id], spec, hostname="h", pid=7, now=end)
        for m in messages
    ]
    states = moves_transaction(
        session_factory,
        lambda s, optimistic: recording.record_many(s, finished, optimistic=optimistic),
    )
    assert states == ["success", None, "up_for_retry"]
    with session_factory() as session:
        history = session.execute(
            select(
                TaskInstanceHistory.task_id, TaskInstanceHistory.state, TaskInstanceHistory.duration
            )
        ).all()
        xcoms = session.execute(select(XCom.task_id, XCom.value)).all()
        retry_at = session.scalar(
            select(TaskInstance.next_try_at).where(TaskInstance.task_id == "c")
        )
    assert sorted(tuple(h) for h in history) == [("a", "success", 3.0), ("c", "up_for_retry", 3.0)]
    assert [tuple(x) for x in xcoms] == [("a", "42")]
    assert retry_at is not None and retry_at.replace(tzinfo=UTC) == end + timedelta(seconds=60)


def test_a_try_whose_worker_died_is_recorded_with_the_retry_policy_of_its_dag(
    session_factory: sessionmaker[Session],
) -> None:
    dag = SerializedDag(
        dag_id="b",
        fileloc="/dev/null",
        timetable={"type": "null"},
        schedule=None,
        tasks={
            "a": SerializedTask(task_id="a", operator="PythonOperator", retries=1, retry_delay=5)
        },
    )
    with session_factory.begin() as session:
        _seed(session, ["a"])
        session.add(
            SerializedDagRow(dag_id="b", fileloc="/dev/null", data=dag.to_json(), fingerprint="fp")
        )
    claimed = _claim(session_factory, [(_message("a"), 9)])
    with session_factory.begin() as session:
        state = recording.record_lost(
            session,
            claimed[_message("a")],
            "killed by signal SIGKILL",
            hostname="h",
            pid=9,
            now=NOW,
        )
    assert state == "up_for_retry"
    with session_factory() as session:
        ti = session.scalars(select(TaskInstance)).one()
    assert ti.next_try_at is not None and ti.next_try_at.replace(tzinfo=UTC) == NOW + timedelta(
        seconds=5
    )


def test_a_batch_heartbeat_names_the_tries_that_were_changed_externally(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b"])
    claimed = _claim(session_factory, [(_message("a"), 1), (_message("b"), 2)])
    with session_factory.begin() as session:
        session.execute(
            update(TaskInstance).where(TaskInstance.task_id == "b").values(state="none")
        )
    tries = [claimed[_message("a")], claimed[_message("b")]]
    with session_factory.begin() as session:
        alive = recording.heartbeat_many(session, tries, now=NOW + timedelta(seconds=2))
    assert alive == [True, False]


def test_a_message_twice_in_one_batch_claims_its_try_once(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session, ["a", "b"])
    claimed = _claim(session_factory, [(_message("a"), 1), (_message("a"), 2), (_message("b"), 3)])
    assert set(claimed) == {_message("a"), _message("b")}
    assert _states(session_factory) == {"a": ("running", 1), "b": ("running", 3)}


def test_the_book_gives_each_claim_the_file_of_its_dag_version(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """The pool process imports that file without a metastore query; a try of a version
    the metastore no longer serializes gets none (its process looks the DAG up, and
    fails on the version as before)."""
    with session_factory.begin() as session:
        _seed(session, ["a", "b"])
        session.add(SerializedDagRow(dag_id="b", fileloc="/dags/b.py", data="{}", fingerprint="fp"))
    book = PoolBook(settings, sessions=session_factory, clock=lambda: NOW)
    stale = TaskMessage("b", "r", "b", -1, 1, "older")
    claimed = book.claim([(_message("a"), 1), (stale, 2)])
    assert claimed[_message("a")].fileloc == "/dags/b.py"
    assert claimed[stale].fileloc is None


def test_the_book_looks_up_a_version_no_longer_serialized_once(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Tries of a version the metastore dropped fail on it one by one: each claim of one
    must not query ``serialized_dag`` again to learn that it still has no file."""
    with session_factory.begin() as session:
        _seed(session, ["a", "b"])
    book = PoolBook(settings, sessions=session_factory, clock=lambda: NOW)
    lookups: list[str] = []
    event.listen(
        session_factory.kw["bind"],
        "before_cursor_execute",
        lambda *a: lookups.append(a[2]) if "serialized_dag" in a[2] else None,
    )
    first = book.claim([(TaskMessage("b", "r", "a", -1, 1, "older"), 1)])
    second = book.claim([(TaskMessage("b", "r", "b", -1, 1, "older"), 2)])
    assert [c.fileloc for c in (*first.values(), *second.values())] == [None, None]
    assert len(lookups) == 1
