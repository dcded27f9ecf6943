"""The transition table: what the system may move, what only users may do."""

from __future__ import annotations

import pytest

from cluster.errors import InvalidTransition
from cluster.states import (
    FINISHED,
    OCCUPYING,
    TASK_TRANSITIONS,
    TaskState,
    check_dag_run_transition,
    check_task_transition,
    sources_of,
)
from cluster.states import DagRunState as R
from cluster.states import TaskState as T


def test_the_main_path_is_allowed() -> None:
    for source, target in [
        (T.NONE, T.SCHEDULED),
        (T.SCHEDULED, T.QUEUED),
        (T.QUEUED, T.RUNNING),
        (T.RUNNING, T.SUCCESS),
        (T.RUNNING, T.UP_FOR_RETRY),
        (T.UP_FOR_RETRY, T.SCHEDULED),
        (T.QUEUED, T.SCHEDULED),
        (T.RUNNING, T.FAILED),
    ]:
        check_task_transition(source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [(T.SUCCESS, T.RUNNING), (T.NONE, T.RUNNING), (T.FAILED, T.QUEUED), (T.SCHEDULED, T.RUNNING)],
)
def test_skipping_steps_is_refused(source: TaskState, target: TaskState) -> None:
    with pytest.raises(InvalidTransition, match=f"from {source} to {target}"):
        check_task_transition(source, target)


def test_finished_states_never_move_by_themselves() -> None:
    for state in FINISHED - {T.REMOVED}:
        assert TASK_TRANSITIONS[state] == frozenset()


def test_users_may_clear_or_mark_from_anywhere() -> None:
    assert sources_of(T.NONE, by_user=True) == frozenset(TaskState) - {T.NONE}
    with pytest.raises(InvalidTransition):
        sources_of(T.RUNNING, by_user=True)


def test_only_the_claim_reaches_running() -> None:
    assert sources_of(T.RUNNING) == {T.QUEUED}


def test_a_deferred_try_resumes_on_a_worker_or_fails() -> None:
    check_task_transition(T.RUNNING, T.DEFERRED)
    assert sources_of(T.DEFERRED) == {T.RUNNING}
    assert TASK_TRANSITIONS[T.DEFERRED] == {T.SCHEDULED, T.FAILED}
    assert T.DEFERRED in sources_of(T.NONE, by_user=True)  # a clear drops its trigger
    assert T.DEFERRED not in OCCUPYING  # it gives its slot back


def test_dag_run_transitions() -> None:
    check_dag_run_transition(R.QUEUED, R.RUNNING)
    check_dag_run_transition(R.FAILED, R.QUEUED)
    with pytest.raises(InvalidTransition):
        check_dag_run_transition(R.QUEUED, R.SUCCESS)
