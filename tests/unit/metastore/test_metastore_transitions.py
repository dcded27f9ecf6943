"""Every state change is a compare-and-set checked against cluster.states."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from cluster.errors import InvalidTransition
from cluster.metastore import state_moves
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.transitions import (
    NEXT_TRY,
    RaceLost,
    TaskKey,
    TryMove,
    move_tries,
    moves_transaction,
    set_dag_run_state,
    set_task_state,
    set_task_states,
)
from cluster.states import (
    DAG_RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    USER_TARGETS,
    DagRunState,
    TaskState,
)

AddRun = Callable[..., DagRun]
AddTask = Callable[..., TaskInstance]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)
KEY = TaskKey("d", "r1", "t1")
TASK_PAIRS = list(itertools.product(TaskState, TaskState))
RUN_PAIRS = list(itertools.product(DagRunState, DagRunState))


def state_of(session: Session, key: TaskKey = KEY) -> str:
    row = session.scalars(
        select(TaskInstance.state).where(
            TaskInstance.dag_id == key.dag_id,
            TaskInstance.run_id == key.run_id,
            TaskInstance.task_id == key.task_id,
            TaskInstance.map_index == key.map_index,
        )
    ).one()
    return row


@pytest.mark.parametrize(("source", "target"), TASK_PAIRS, ids=[f"{s}->{t}" for s, t in TASK_PAIRS])
def test_system_moves_follow_the_table(
    session: Session, add_run: AddRun, add_task: AddTask, source: TaskState, target: TaskState
) -> None:
    add_run()
    add_task(state=str(source))
    if target in TASK_TRANSITIONS[source]:
        assert set_task_state(session, KEY, target, expected={source}) is True
        assert state_of(session) == target
        assert set_task_state(session, KEY, target, expected={source}) is False
    else:
        with pytest.raises(InvalidTransition):
            set_task_state(session, KEY, target, expected={source})
        assert state_of(session) == source


@pytest.mark.parametrize("target", list(TaskState))
def test_default_expected_is_every_allowed_source(
    session: Session, add_run: AddRun, add_task: AddTask, target: TaskState
) -> None:
    add_run()
    for number, source in enumerate(TaskState):
        add_task(f"t{number}", state=str(source))
    allowed = {s for s, targets in TASK_TRANSITIONS.items() if target in targets}
    if not allowed:
        with pytest.raises(InvalidTransition):
            set_task_state(session, KEY, target)
        return
    moved = {
        source
        for number, source in enumerate(TaskState)
        if set_task_state(session, TaskKey("d", "r1", f"t{number}"), target)
    }
    assert moved == allowed


@pytest.mark.parametrize("target", list(TaskState))
def test_users_may_clear_or_mark_from_any_state(
    session: Session, add_run: AddRun, add_task: AddTask, target: TaskState
) -> None:
    add_run()
    for number, source in enumerate(TaskState):
        add_task(f"t{number}", state=str(source))
    if target not in USER_TARGETS:
        with pytest.raises(InvalidTransition):
            set_task_state(session, KEY, target, by_user=True)
        return
    keys = [TaskKey("d", "r1", f"t{n}") for n in range(len(TaskState))]
    assert set_task_states(session, keys, target, by_user=True) == len(TaskState) - 1
    assert {state_of(session, k) for k in keys} == {target}


def test_the_loser_of_a_race_gets_false(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    add_task(state="queued", try_number=1)
    assert set_task_state(session, KEY, TaskState.RUNNING, expected={TaskState.QUEUED})
    assert not set_task_state(session, KEY, TaskState.RUNNING, expected={TaskState.QUEUED})


def test_try_number_guards_against_stale_messages(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    add_task(state="queued", try_number=2)
    assert not set_task_state(session, KEY, TaskState.RUNNING, try_number=1)
    assert state_of(session) == "queued"
    assert set_task_state(session, KEY, TaskState.RUNNING, try_number=2)


def test_values_are_written_in_the_same_statement(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    add_task(state="queued", try_number=1)
    won = set_task_state(
        session, KEY, TaskState.RUNNING, values={"hostname": "w1", "pid": 42, "start_date": T0}
    )
    assert won
    ti = session.get(TaskInstance, ("d", "r1", "t1", -1))
    assert ti is not None
    session.refresh(ti)
    assert (ti.state, ti.hostname, ti.pid, ti.start_date) == ("running", "w1", 42, T0)


def test_values_cannot_smuggle_state_or_unknown_columns(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    add_task(state="queued")
    with pytest.raises(ValueError, match="target"):
        set_task_state(session, KEY, TaskState.RUNNING, values={"state": "success"})
    with pytest.raises(ValueError, match="no column"):
        set_task_state(session, KEY, TaskState.RUNNING, values={"colour": "red"})


def test_a_missing_row_is_false_not_an_error(session: Session) -> None:
    assert set_task_state(session, KEY, TaskState.SCHEDULED) is False


def test_bulk_counts_only_the_rows_that_moved(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    for number in range(450):
        add_task(f"t{number}", state="scheduled" if number % 3 else "queued")
    keys = [TaskKey("d", "r1", f"t{n}") for n in range(450)]
    moved = set_task_states(session, keys, TaskState.QUEUED, expected={TaskState.SCHEDULED})
    assert moved == 300
    assert set_task_states(session, keys, TaskState.QUEUED, expected={TaskState.SCHEDULED}) == 0


def test_moves_of_one_shape_share_a_statement_built_once(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    """The loop moves tries to ``queued`` in every iteration: the statement is built once
    per shape (other keys, values and the try-number expression as parameters), and each
    call still moves its own rows and writes its own values."""
    add_run()
    for number in range(6):
        add_task(f"t{number}", state="scheduled", try_number=number)
    state_moves._shapes.clear()
    built: list[object] = []
    real_build = state_moves._build
    state_moves._build = lambda *a: built.append(a) or real_build(*a)  # type: ignore[assignment]
    try:
        for batch, when in ((("t0", "t1"), T0), (("t2", "t3", "t4"), T1)):
            keys = [TaskKey("d", "r1", t) for t in batch]
            values = {"try_number": NEXT_TRY, "queued_at": when}
            moved = set_task_states(
                session, keys, TaskState.QUEUED, expected=[TaskState.SCHEDULED], values=values
            )
            assert moved == len(batch)
    finally:
        state_moves._build = real_build  # type: ignore[assignment]
    assert len(built) == 1 and len(state_moves._shapes) == 1
    rows = session.execute(
        select(
            TaskInstance.task_id,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.queued_at,
        )
    ).all()
    queued = {t: (n, at) for t, state, n, at in rows if state == "queued"}
    assert queued == {"t0": (1, T0), "t1": (2, T0), "t2": (3, T1), "t3": (4, T1), "t4": (5, T1)}
    assert state_of(session, TaskKey("d", "r1", "t5")) == "scheduled"


def _claims(*task_ids: str) -> list[TryMove]:
    return [
        TryMove(TaskKey("d", "r1", t), 1, TaskState.RUNNING, {"pid": n})
        for n, t in enumerate(task_ids)
    ]


def test_an_optimistic_batch_that_wins_whole_reads_nothing(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    for task_id in ("a", "b", "c"):
        add_task(task_id, state="queued", try_number=1)
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    won = move_tries(session, _claims("a", "b", "c"), expected=TaskState.QUEUED, optimistic=True)
    assert won == [True, True, True]
    assert [s.split()[0] for s in statements] == ["UPDATE"]
    assert [state_of(session, TaskKey("d", "r1", t)) for t in "abc"] == ["running"] * 3


def test_an_optimistic_batch_with_a_loser_is_run_again_with_the_locking_read(
    session_factory: SessionFactory, session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    add_run()
    add_task("a", state="queued", try_number=1)
    add_task("b", state="none", try_number=1)  # cleared by a user meanwhile
    add_task("c", state="queued", try_number=1)
    session.commit()
    with pytest.raises(RaceLost), session_factory.begin() as other:
        move_tries(other, _claims("a", "b", "c"), expected=TaskState.QUEUED, optimistic=True)
    assert state_of(session, TaskKey("d", "r1", "a")) == "queued"  # rolled back
    session.rollback()  # SQLite: let the next writer in
    attempts: list[bool] = []

    def claim(s: Session, optimistic: bool) -> list[bool]:
        attempts.append(optimistic)
        return move_tries(
            s, _claims("a", "b", "c", "a"), expected=TaskState.QUEUED, optimistic=optimistic
        )

    assert moves_transaction(session_factory, claim) == [True, False, True, False]
    assert attempts == [True, False]
    assert [state_of(session, TaskKey("d", "r1", t)) for t in "abc"] == [
        "running",
        "none",
        "running",
    ]


def test_a_mapped_task_s_tries_move_in_one_statement_each_with_its_own_check(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    """Mapped instances share a task id and differ by map index: one UPDATE for the
    whole batch (it was one per map index), and each try still its own compare-and-set."""
    add_run()
    add_task("plain", state="queued", try_number=1)
    for index in range(40):
        add_task("m", map_index=index, state="queued", try_number=2 if index == 7 else 1)
    moves = [TryMove(TaskKey("d", "r1", "plain"), 1, TaskState.RUNNING, {"pid": 99})] + [
        TryMove(TaskKey("d", "r1", "m", i), 1, TaskState.RUNNING, {"pid": i}) for i in range(40)
    ]
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    won = move_tries(session, moves, expected=TaskState.QUEUED)
    assert won == [True] + [i != 7 for i in range(40)]  # index 7 was re-sent as try 2
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE", "UPDATE"]
    pids = dict(
        session.execute(
            select(TaskInstance.map_index, TaskInstance.pid).where(TaskInstance.task_id == "m")
        ).all()
    )
    assert pids == {i: (None if i == 7 else i) for i in range(40)}
    assert state_of(session, TaskKey("d", "r1", "m", 7)) == "queued"
    running = [TaskKey("d", "r1", "m", i) for i in (3, 7, 41)]  # 7 queued, 41 missing
    assert set_task_states(session, running, TaskState.SUCCESS, expected={TaskState.RUNNING}) == 1


def test_batches_of_nearby_sizes_share_one_statement(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    """The pump's batches take every size: each compiled anew cost a fresh scheduler
    about a tenth of its CPU, so sizes are rounded up to a power of two (the last try
    repeated), and each try still gets its own values."""
    add_run()
    for index in range(12):
        add_task("m", map_index=index, state="queued", try_number=1)
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    for batch in (range(0, 5), range(5, 12)):
        moves = [
            TryMove(TaskKey("d", "r1", "m", i), 1, TaskState.RUNNING, {"pid": i}) for i in batch
        ]
        assert move_tries(session, moves, expected=TaskState.QUEUED, optimistic=True) == [
            True
        ] * len(batch)
    assert len(statements) == 2 and statements[0] == statements[1]
    pids = dict(
        session.execute(
            select(TaskInstance.map_index, TaskInstance.pid).where(TaskInstance.task_id == "m")
        ).all()
    )
    assert pids == {i: i for i in range(12)}


def test_values_every_try_shares_are_bound_once_and_each_try_keeps_its_check(
    session: Session, add_run: AddRun, add_task: AddTask
) -> None:
    """A batch's shared target, try number or value is one parameter, not a ``CASE``
    branch per try; what differs (a pid, a try number) is still per try."""
    add_run()
    for task_id, try_number in (("a", 1), ("b", 1), ("c", 2), ("d", 1)):
        add_task(task_id, state="queued", try_number=try_number)
    statements: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    alike = [TryMove(TaskKey("d", "r1", t), 1, TaskState.RUNNING, {"pid": 7}) for t in "ab"]
    assert move_tries(session, alike, expected=TaskState.QUEUED) == [True, True]
    assert "CASE" not in statements[-1]
    mixed = [
        TryMove(TaskKey("d", "r1", "c"), 1, TaskState.RUNNING, {"pid": 8}),  # c is at try 2
        TryMove(TaskKey("d", "r1", "d"), 2, TaskState.RUNNING, {"pid": 8}),  # d is at try 1
    ]
    assert move_tries(session, mixed, expected=TaskState.QUEUED) == [False, False]
    swapped = [
        TryMove(TaskKey("d", "r1", "c"), 2, TaskState.RUNNING, {"pid": 8}),
        TryMove(TaskKey("d", "r1", "d"), 1, TaskState.RUNNING, {"pid": 9}),
    ]
    assert move_tries(session, swapped, expected=TaskState.QUEUED, optimistic=True) == [True] * 2
    assert statements[-1].count("CASE") == 2  # the try numbers and the pids; not the state
    pids = dict(session.execute(select(TaskInstance.task_id, TaskInstance.pid)).all())
    assert pids == {"a": 7, "b": 7, "c": 8, "d": 9}


def test_bulk_rejects_a_forbidden_expected_state(session: Session) -> None:
    with pytest.raises(InvalidTransition, match="success"):
        set_task_states(session, [KEY], TaskState.QUEUED, expected={TaskState.SUCCESS})


@pytest.mark.parametrize(("source", "target"), RUN_PAIRS, ids=[f"{s}->{t}" for s, t in RUN_PAIRS])
def test_dag_run_moves_follow_the_table(
    session: Session, add_run: AddRun, source: DagRunState, target: DagRunState
) -> None:
    add_run(state=str(source))
    if target in DAG_RUN_TRANSITIONS[source]:
        assert set_dag_run_state(session, "d", "r1", target, expected={source})
        assert not set_dag_run_state(session, "d", "r1", target, expected={source})
    else:
        with pytest.raises(InvalidTransition):
            set_dag_run_state(session, "d", "r1", target, expected={source})


def test_users_may_mark_a_failed_run_successful(session: Session, add_run: AddRun) -> None:
    add_run(state="failed")
    assert not set_dag_run_state(session, "d", "r1", DagRunState.SUCCESS)
    assert set_dag_run_state(
        session, "d", "r1", DagRunState.SUCCESS, by_user=True, values={"end_date": T0}
    )
    run = session.scalars(select(DagRun)).one()
    session.refresh(run)
    assert (run.state, run.end_date) == ("success", T0)
