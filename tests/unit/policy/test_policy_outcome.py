"""A run's end: its leaves decide, and a deadlock fails it."""

from __future__ import annotations

from policy_dags import make_dag

from cluster.policy import can_progress, run_state
from cluster.states import DagRunState, TaskState

T = TaskState


def test_still_running_while_instances_are_unfinished() -> None:
    dag = make_dag([("a", "b")])
    assert run_state(dag, {"a": T.RUNNING, "b": T.NONE}) is None
    assert run_state(dag, {"a": T.UP_FOR_RETRY, "b": T.NONE}) is None


def test_success_when_all_finished_and_leaves_succeeded_or_skipped() -> None:
    dag = make_dag([("a", "b"), ("a", "c")])
    assert run_state(dag, {"a": T.SUCCESS, "b": T.SUCCESS, "c": T.SKIPPED}) is DagRunState.SUCCESS


def test_failed_when_a_leaf_failed_or_upstream_failed() -> None:
    dag = make_dag([("a", "b"), ("a", "c")])
    assert run_state(dag, {"a": T.SUCCESS, "b": T.FAILED, "c": T.SUCCESS}) is DagRunState.FAILED
    dag2 = make_dag([("a", "b")])
    assert run_state(dag2, {"a": T.FAILED, "b": T.UPSTREAM_FAILED}) is DagRunState.FAILED


def test_a_failure_before_a_successful_cleanup_leaf_is_a_success_as_in_airflow() -> None:
    dag = make_dag([("a", "cleanup")], options={"cleanup": {"trigger_rule": "all_done"}})
    assert run_state(dag, {"a": T.FAILED, "cleanup": T.SUCCESS}) is DagRunState.SUCCESS


def test_deadlock_fails_the_run() -> None:
    # an all_success task whose upstream was removed can never run
    dag = make_dag([("a", "b"), ("b", "c")])
    states = {"a": T.SUCCESS, "b": T.REMOVED, "c": T.NONE}
    assert not can_progress(dag, states)
    assert run_state(dag, states) is DagRunState.FAILED


def test_removed_instances_are_ignored() -> None:
    dag = make_dag([("a", "b")])
    assert run_state(dag, {"a": T.SUCCESS, "b": T.REMOVED}) is DagRunState.SUCCESS


def test_waiting_on_depends_on_past_is_not_a_deadlock() -> None:
    dag = make_dag(tasks=["a"], options={"a": {"depends_on_past": True}})
    assert can_progress(dag, {"a": T.NONE})
    assert run_state(dag, {"a": T.NONE}) is None
