"""Setup and teardown in the pure policy: teardowns run after failed work, work waits
for the setups it needs (directly or not), teardowns do not decide the run's state
unless they ask to, and clearing a task brings its setups and teardowns along."""

from __future__ import annotations

from typing import Any

from policy_dags import make_dag, utc

from cluster.actions import select_task_ids
from cluster.dagfiles.serialized import SerializedDag
from cluster.policy import InstanceSnapshot, decide_task_states, run_state
from cluster.policy.setup_teardown import setup_index
from cluster.states import DagRunState, TaskState

T = TaskState
SETUP: dict[str, Any] = {"is_setup": True}
TEARDOWN: dict[str, Any] = {"is_teardown": True, "trigger_rule": "all_done_setup_success"}


def decide(dag: SerializedDag, states: dict[str, TaskState]) -> dict[str, TaskState]:
    """One policy pass: the states it moves instances to."""
    instances = {t: InstanceSnapshot(t, s) for t, s in states.items()}
    changes = decide_task_states(dag, instances, now=utc(2024, 1, 1))
    return {c.task_id: c.target for c in changes}


def simple(**teardown: Any) -> SerializedDag:
    """``create >> work >> delete`` with ``delete`` the teardown of ``create``."""
    return make_dag(
        [("create", "work"), ("work", "delete"), ("create", "delete")],
        options={"create": SETUP, "delete": {**TEARDOWN, **teardown}},
    )


def test_the_teardown_runs_after_the_work_failed() -> None:
    dag = simple()
    assert decide(dag, {"create": T.SUCCESS, "work": T.RUNNING, "delete": T.NONE}) == {}
    moved = decide(dag, {"create": T.SUCCESS, "work": T.FAILED, "delete": T.NONE})
    assert moved == {"delete": T.SCHEDULED}


def test_a_failed_or_skipped_setup_takes_its_work_and_teardown_with_it() -> None:
    dag = simple()
    failed = decide(dag, {"create": T.FAILED, "work": T.NONE, "delete": T.NONE})
    assert failed == {"work": T.UPSTREAM_FAILED, "delete": T.UPSTREAM_FAILED}
    skipped = decide(dag, {"create": T.SKIPPED, "work": T.NONE, "delete": T.NONE})
    assert skipped == {"work": T.SKIPPED, "delete": T.SKIPPED}


def test_one_successful_setup_of_two_is_enough_for_the_teardown() -> None:
    dag = make_dag(
        [("a", "delete"), ("b", "delete")],
        options={"a": SETUP, "b": SETUP, "delete": TEARDOWN},
    )
    assert decide(dag, {"a": T.SUCCESS, "b": T.FAILED, "delete": T.NONE}) == {"delete": T.SCHEDULED}


def test_the_run_state_ignores_a_failed_teardown_unless_it_asks() -> None:
    states = {"create": T.SUCCESS, "work": T.SUCCESS, "delete": T.FAILED}
    assert run_state(simple(), states) is DagRunState.SUCCESS
    assert run_state(simple(on_failure_fail_dagrun=True), states) is DagRunState.FAILED


def test_failed_work_before_a_teardown_fails_the_run() -> None:
    states = {"create": T.SUCCESS, "work": T.FAILED, "delete": T.SUCCESS}
    assert run_state(simple(), states) is DagRunState.FAILED
    assert setup_index(simple()).run_leaves == ("work",)


def nested() -> SerializedDag:
    """``create >> prepare >> work >> delete`` with ``work`` only indirectly after ``create``."""
    return make_dag(
        [("create", "prepare"), ("prepare", "work"), ("work", "delete"), ("create", "delete")],
        options={"create": SETUP, "work": {"trigger_rule": "all_done"}, "delete": TEARDOWN},
    )


def test_work_waits_for_an_indirect_setup_that_runs_again() -> None:
    # after clearing work, create and delete: prepare is still a success from before
    states = {"create": T.NONE, "prepare": T.SUCCESS, "work": T.NONE, "delete": T.NONE}
    assert decide(nested(), states) == {"create": T.SCHEDULED}
    states["create"] = T.SUCCESS
    assert decide(nested(), states) == {"work": T.SCHEDULED}


def test_an_indirect_setup_failure_beats_the_trigger_rule() -> None:
    # work is all_done: without its setup it would run after prepare's upstream_failed
    moved = decide(
        nested(), {"create": T.FAILED, "prepare": T.NONE, "work": T.NONE, "delete": T.NONE}
    )
    assert moved == {
        "prepare": T.UPSTREAM_FAILED,
        "work": T.UPSTREAM_FAILED,
        "delete": T.UPSTREAM_FAILED,
    }
    skipped = {"create": T.SKIPPED, "prepare": T.SUCCESS, "work": T.NONE, "delete": T.NONE}
    assert decide(nested(), skipped) == {"work": T.SKIPPED, "delete": T.SKIPPED}


def test_a_setup_whose_teardown_is_not_downstream_is_not_needed() -> None:
    # other's teardown comes before work: other is not a setup work needs
    dag = make_dag(
        [("other", "other_down"), ("other_down", "work"), ("create", "work")],
        options={"other": SETUP, "other_down": TEARDOWN, "create": SETUP},
    )
    assert setup_index(dag).relevant.get("work") == ("create",)
    assert select_task_ids(dag, task_ids=["work"]) == {"work", "create"}


def test_clearing_work_clears_its_setups_and_teardowns() -> None:
    dag = nested()
    assert select_task_ids(dag, task_ids=["work"]) == {"create", "work", "delete"}
    assert select_task_ids(dag, task_ids=["create"]) == {"create", "delete"}
    assert select_task_ids(dag, task_ids=["delete"]) == {"delete"}


def test_clearing_with_upstream_or_downstream_follows_setups_to_their_teardowns() -> None:
    dag = make_dag(
        [("create", "a"), ("a", "b"), ("b", "delete"), ("create", "delete"), ("b", "after")],
        options={"create": SETUP, "delete": TEARDOWN},
    )
    assert select_task_ids(dag, task_ids=["after"], upstream=True) == {
        "after",
        "b",
        "a",
        "create",
        "delete",
    }
    assert select_task_ids(dag, task_ids=["a"], downstream=True) == {
        "a",
        "b",
        "after",
        "create",
        "delete",
    }


def test_the_reason_names_the_setup_when_it_decided() -> None:
    states = {"create": T.FAILED, "prepare": T.UPSTREAM_FAILED, "work": T.NONE, "delete": T.NONE}
    instances = {t: InstanceSnapshot(t, s) for t, s in states.items()}
    (work, _delete) = decide_task_states(nested(), instances, now=utc(2024, 1, 1))
    assert work.task_id == "work" and "a setup it needs" in work.reason
