"""Deciding a run's waiting instances: schedule, skip, upstream_failed, or wait."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from policy_dags import make_dag, utc

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy import InstanceSnapshot, StateChange, decide_task_states
from cluster.states import TaskState

T = TaskState
NOW = utc(2024, 1, 1, 12)


def decide(
    dag: SerializedDag,
    states: Mapping[str, TaskState],
    previous: Mapping[str, TaskState] | None = None,
) -> dict[str, TaskState]:
    instances = {t: InstanceSnapshot(t, s) for t, s in states.items()}
    changes = decide_task_states(dag, instances, now=NOW, previous_states=previous)
    return {c.task_id: c.target for c in changes}


def test_roots_are_scheduled_and_downstream_waits() -> None:
    dag = make_dag([("a", "b")])
    assert decide(dag, {"a": T.NONE, "b": T.NONE}) == {"a": T.SCHEDULED}


def test_a_failure_propagates_upstream_failed_through_the_whole_chain_at_once() -> None:
    dag = make_dag([("a", "b"), ("b", "c"), ("c", "d")])
    states = {"a": T.FAILED, "b": T.NONE, "c": T.NONE, "d": T.NONE}
    assert decide(dag, states) == {
        "b": T.UPSTREAM_FAILED,
        "c": T.UPSTREAM_FAILED,
        "d": T.UPSTREAM_FAILED,
    }


def test_an_all_done_cleanup_still_runs_after_upstream_failed() -> None:
    dag = make_dag(
        [("a", "b"), ("b", "cleanup")], options={"cleanup": {"trigger_rule": "all_done"}}
    )
    assert decide(dag, {"a": T.FAILED, "b": T.NONE, "cleanup": T.NONE}) == {
        "b": T.UPSTREAM_FAILED,
        "cleanup": T.SCHEDULED,
    }


def test_branch_skip_propagates_and_the_join_runs_with_none_failed_min_one_success() -> None:
    # branch → (left, right) → join; the runner skipped "right" (not followed)
    dag = make_dag(
        [
            ("branch", "left"),
            ("branch", "right"),
            ("right", "after_right"),
            ("left", "join"),
            ("after_right", "join"),
        ],
        options={"join": {"trigger_rule": "none_failed_min_one_success"}},
    )
    states = {
        "branch": T.SUCCESS,
        "left": T.SUCCESS,
        "right": T.SKIPPED,
        "after_right": T.NONE,
        "join": T.NONE,
    }
    assert decide(dag, states) == {"after_right": T.SKIPPED, "join": T.SCHEDULED}


def test_a_default_join_after_a_branch_is_skipped_like_airflow() -> None:
    dag = make_dag([("branch", "left"), ("branch", "right"), ("left", "join"), ("right", "join")])
    states = {"branch": T.SUCCESS, "left": T.RUNNING, "right": T.SKIPPED, "join": T.NONE}
    assert decide(dag, states) == {"join": T.SKIPPED}


def test_short_circuit_skips_everything_downstream() -> None:
    dag = make_dag([("check", "a"), ("a", "b"), ("b", "c")])
    states = {"check": T.SUCCESS, "a": T.SKIPPED, "b": T.NONE, "c": T.NONE}
    assert decide(dag, states) == {"b": T.SKIPPED, "c": T.SKIPPED}


def test_retry_is_scheduled_only_once_its_time_has_come() -> None:
    dag = make_dag(tasks=["a"])
    early = InstanceSnapshot("a", T.UP_FOR_RETRY, ready_at=NOW + timedelta(seconds=1))
    due = InstanceSnapshot("a", T.UP_FOR_RETRY, ready_at=NOW)
    assert decide_task_states(dag, {"a": early}, now=NOW) == []
    assert decide_task_states(dag, {"a": due}, now=NOW) == [
        StateChange("a", T.UP_FOR_RETRY, T.SCHEDULED, "trigger rule all_success met")
    ]


def test_reschedule_is_scheduled_once_its_time_has_come() -> None:
    dag = make_dag([("a", "sensor")])
    waiting = InstanceSnapshot("sensor", T.UP_FOR_RESCHEDULE, ready_at=NOW + timedelta(minutes=5))
    upstream = InstanceSnapshot("a", T.SUCCESS)
    assert decide_task_states(dag, {"a": upstream, "sensor": waiting}, now=NOW) == []
    later = NOW + timedelta(minutes=5)
    [change] = decide_task_states(dag, {"a": upstream, "sensor": waiting}, now=later)
    assert (change.source, change.target) == (T.UP_FOR_RESCHEDULE, T.SCHEDULED)


def test_instances_already_moving_are_left_alone() -> None:
    dag = make_dag([("a", "b")])
    assert decide(dag, {"a": T.QUEUED, "b": T.NONE}) == {}
    assert decide(dag, {"a": T.SUCCESS, "b": T.SCHEDULED}) == {}


def test_depends_on_past_waits_for_the_previous_run_success_or_skip() -> None:
    dag = make_dag(tasks=["a"], options={"a": {"depends_on_past": True}})
    assert decide(dag, {"a": T.NONE}, previous=None) == {"a": T.SCHEDULED}  # first run
    assert decide(dag, {"a": T.NONE}, previous={"a": T.SUCCESS}) == {"a": T.SCHEDULED}
    assert decide(dag, {"a": T.NONE}, previous={"a": T.SKIPPED}) == {"a": T.SCHEDULED}
    assert decide(dag, {"a": T.NONE}, previous={"a": T.FAILED}) == {}
    assert decide(dag, {"a": T.NONE}, previous={"a": T.RUNNING}) == {}
    assert decide(dag, {"a": T.NONE}, previous={}) == {}  # not run there yet


def test_depends_on_past_waits_before_skipping_but_not_before_upstream_failed() -> None:
    dag = make_dag([("a", "b")], options={"b": {"depends_on_past": True}})
    assert decide(dag, {"a": T.SKIPPED, "b": T.NONE}, previous={"b": T.RUNNING}) == {}
    assert decide(dag, {"a": T.FAILED, "b": T.NONE}, previous={"b": T.RUNNING}) == {
        "b": T.UPSTREAM_FAILED
    }


def test_reason_says_why_an_instance_can_never_run() -> None:
    dag = make_dag([("a", "c"), ("b", "c")])
    instances = {
        "a": InstanceSnapshot("a", T.FAILED),
        "b": InstanceSnapshot("b", T.RUNNING),
        "c": InstanceSnapshot("c", T.NONE),
    }
    [change] = decide_task_states(dag, instances, now=NOW)
    assert change.reason == "trigger rule all_success can no longer be met: 1 failed, 1 unfinished"
