"""Which ``none`` instances of one run to schedule, skip or fail, and which retries wake.

The policy evaluates each instance's trigger rule (:mod:`.trigger_rules`) over its
direct upstream states, its ``depends_on_past`` condition, and for ``up_for_retry`` /
``up_for_reschedule`` instances whether their time has come. Unlike Airflow, which
moves skips and upstream failures one level per loop, one call propagates them
through the whole run in topological order; the end states are the same, a run just
settles in fewer loops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.policy.changes import StateChange
from cluster.policy.graph import topological_order
from cluster.policy.setup_teardown import (
    StatesOf,
    all_done_setup_success,
    direct_setup_counts,
    with_indirect_setups,
)
from cluster.policy.trigger_rules import (
    SETUP_RULE,
    UpstreamCounts,
    Verdict,
    evaluate_trigger_rule,
)
from cluster.states import FINISHED, TaskState

#: states in which an instance is waiting for the scheduler to let it run
WAITING: frozenset[TaskState] = frozenset(
    {TaskState.NONE, TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE}
)
#: the previous run's states that satisfy ``depends_on_past``
PAST_OK: frozenset[TaskState] = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})

_TARGETS = {
    Verdict.RUN: TaskState.SCHEDULED,
    Verdict.SKIP: TaskState.SKIPPED,
    Verdict.UPSTREAM_FAILED: TaskState.UPSTREAM_FAILED,
}


@dataclass(frozen=True)
class InstanceSnapshot:
    """One task instance of the run, as loaded from the metastore.

    :param ready_at: for ``up_for_retry`` its ``next_try_at``; for
        ``up_for_reschedule`` the reschedule date. ``None`` means "now".
    """

    task_id: str
    state: TaskState
    ready_at: datetime | None = None


def decide_task_states(
    dag: SerializedDag,
    instances: Mapping[str, InstanceSnapshot],
    *,
    now: datetime,
    previous_states: Mapping[str, TaskState] | None = None,
) -> list[StateChange]:
    """The state changes to write for one run, upstream tasks first.

    :param instances: the run's instances by task id; a task without an instance is
        neither decided nor counted as done (its downstream waits).
    :param previous_states: the previous run's states by task id, for
        ``depends_on_past``; ``None`` when this is the DAG's first run (always met).
        A task missing from it has not run there yet: the instance waits, as in Airflow.
    """
    states: dict[str, TaskState | None] = {t: i.state for t, i in instances.items()}
    changes: list[StateChange] = []
    for task_id in topological_order(dag):
        instance = instances.get(task_id)
        if instance is None or instance.state not in WAITING:
            continue
        task = dag.tasks[task_id]
        change = _decide_one(dag, task, instance, states, now=now, previous_states=previous_states)
        if change is None:
            continue
        changes.append(change)
        states[task_id] = change.target
    return changes


def _verdict(
    dag: SerializedDag, task: SerializedTask, counts: UpstreamCounts, states_of: StatesOf
) -> tuple[Verdict, str]:
    """The task's trigger rule over its direct upstream tasks, then the setups it needs
    but does not follow directly (:mod:`.setup_teardown`); and why, for the log."""
    if task.trigger_rule == SETUP_RULE:
        setups = direct_setup_counts(dag, task.task_id, states_of)
        verdict = all_done_setup_success(counts, setups) if counts.total else Verdict.RUN
    else:
        verdict = evaluate_trigger_rule(task.trigger_rule, counts)
    final = with_indirect_setups(dag, task.task_id, verdict, states_of)
    if final is not verdict and final is not Verdict.WAIT:
        return final, "a setup it needs (not directly upstream) failed or was skipped"
    if verdict is Verdict.RUN:
        return final, f"trigger rule {task.trigger_rule} met"
    return final, f"trigger rule {task.trigger_rule} can no longer be met: {_describe(counts)}"


def _decide_one(
    dag: SerializedDag,
    task: SerializedTask,
    instance: InstanceSnapshot,
    states: Mapping[str, TaskState | None],
    *,
    now: datetime,
    previous_states: Mapping[str, TaskState] | None,
) -> StateChange | None:
    counts = UpstreamCounts.of(states.get(u) for u in task.upstream_task_ids)
    verdict, reason = _verdict(dag, task, counts, lambda t: (states.get(t),))
    past_met = _past_met(task, previous_states)
    if verdict is Verdict.WAIT:
        return None
    if verdict is Verdict.SKIP and not past_met:
        return None  # Airflow waits for past depends before skipping
    if verdict is Verdict.RUN and (not past_met or not _time_has_come(instance, now)):
        return None
    return StateChange(task.task_id, instance.state, _TARGETS[verdict], reason)


def _past_met(task: SerializedTask, previous_states: Mapping[str, TaskState] | None) -> bool:
    if not task.depends_on_past or previous_states is None:
        return True
    return previous_states.get(task.task_id) in PAST_OK


def _time_has_come(instance: InstanceSnapshot, now: datetime) -> bool:
    if instance.state is TaskState.NONE or instance.ready_at is None:
        return True
    return instance.ready_at <= now


def _describe(counts: UpstreamCounts) -> str:
    parts = {
        "success": counts.success,
        "skipped": counts.skipped,
        "failed": counts.failed,
        "upstream_failed": counts.upstream_failed,
        "removed": counts.removed,
        "unfinished": counts.total - counts.done,
    }
    return ", ".join(f"{n} {name}" for name, n in parts.items() if n)


def can_progress(dag: SerializedDag, states: Mapping[str, TaskState]) -> bool:
    """Whether any unfinished instance of the run can still move without a user.

    ``False`` is a deadlock: the run will never finish by itself (an ``all_success``
    task whose upstream was removed, say). Like Airflow, waiting on
    ``depends_on_past`` is never called a deadlock: the previous run may still finish
    or be cleared, so it is left out of this check.
    """
    if any(s not in FINISHED and s is not TaskState.NONE for s in states.values()):
        return True  # scheduled, queued, running, or waiting for a retry: it will move
    instances = {t: InstanceSnapshot(t, s) for t, s in states.items()}
    return bool(decide_task_states(dag, instances, now=datetime.max))
