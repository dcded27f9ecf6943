"""Which ``none`` instances of one run to schedule, skip or fail, and which retries wake.

The policy evaluates each instance's trigger rule (:mod:`.trigger_rules`) over its
direct upstream states, its ``depends_on_past`` condition, and for ``up_for_retry`` /
``up_for_reschedule`` instances whether their time has come. Unlike Airflow, which
moves skips and upstream failures one level per loop, one call propagates them
through the whole run in topological order; the end states are the same, a run just
settles in fewer loops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.policy.changes import (
    Expansion,
    InstanceKey,
    Revision,
    StateChange,
    instance_key,
    key_of,
)
from cluster.policy.graph import topological_order
from cluster.policy.mapping import (
    Lengths,
    instance_count,
    needs_expansion,
    relevant_indexes,
    revised_indexes,
)
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
    map_index: int = -1


#: a run's instances by task id, then by map index
ByTask = dict[str, dict[int, InstanceSnapshot]]


@dataclass
class RunDecision:
    """What to write for one run: expansions first, then state changes (in order)."""

    changes: list[StateChange] = field(default_factory=list)
    expansions: list[Expansion] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)


def by_task(instances: Iterable[InstanceSnapshot]) -> ByTask:
    grouped: ByTask = {}
    for instance in instances:
        grouped.setdefault(instance.task_id, {})[instance.map_index] = instance
    return grouped


def decide_task_states(
    dag: SerializedDag,
    instances: Mapping[Any, InstanceSnapshot],
    *,
    now: datetime,
    previous_states: Mapping[Any, TaskState] | None = None,
) -> list[StateChange]:
    """The state changes to write for one run, upstream tasks first.

    :param instances: the run's instances (keys are not read: each snapshot names its
        task and map index); a task without an instance is neither decided nor
        counted as done (its downstream waits).
    :param previous_states: the previous run's states by task id (or ``(task_id,
        map_index)`` for mapped instances), for ``depends_on_past``; ``None`` when this
        is the DAG's first run (always met). A task missing from it has not run there
        yet: the instance waits, as in Airflow.
    """
    return decide_run(dag, instances, now=now, previous_states=previous_states).changes


def decide_run(
    dag: SerializedDag,
    instances: Mapping[Any, InstanceSnapshot],
    *,
    now: datetime,
    previous_states: Mapping[Any, TaskState] | None = None,
    lengths: Lengths | None = None,
) -> RunDecision:
    """:func:`decide_task_states`, plus the expansions of mapped placeholders.

    :param lengths: the pushed lengths of the producers mapped tasks expand over
        (see :mod:`cluster.policy.mapping`); a placeholder whose trigger rule is met
        but whose length is missing is ``upstream_failed``, as in Airflow.
    """
    if not dag.has_mapping:
        return _decide_plain(dag, instances, now, previous_states)
    run = by_task(instances.values())
    decision = RunDecision()
    context = _Context(dag, run, now, previous_states, lengths or {})
    for task_id in topological_order(dag):
        current = run.get(task_id)
        if current is None:
            continue
        task = dag.tasks[task_id]
        if -1 not in current and needs_expansion(dag, task_id):
            _revise(context, task, current, decision)
        for map_index in sorted(m for m, i in current.items() if i.state in WAITING):
            instance = current[map_index]
            change = _decide_one(task, instance, context)
            if isinstance(change, Expansion):
                decision.expansions.append(change)
                _expand(context, task, change.count, decision)
                break
            if change is not None:
                decision.changes.append(change)
                current[map_index] = replace(instance, state=change.target)
    return decision


def _decide_plain(
    dag: SerializedDag,
    instances: Mapping[Any, InstanceSnapshot],
    now: datetime,
    previous_states: Mapping[InstanceKey, TaskState] | None,
) -> RunDecision:
    """A DAG without mapping: one instance per task, upstream states read by task id
    (the scheduler's hot path: no grouping by map index)."""
    by_id = {i.task_id: i for i in instances.values()}
    states: dict[str, TaskState | None] = {t: i.state for t, i in by_id.items()}
    context = _Context(dag, {}, now, previous_states, {}, states)
    changes: list[StateChange] = []
    for task_id in topological_order(dag):
        instance = by_id.get(task_id)
        if instance is None or instance.state not in WAITING:
            continue
        change = _decide_one(dag.tasks[task_id], instance, context)
        if isinstance(change, StateChange):
            changes.append(change)
            states[task_id] = change.target
    return RunDecision(changes)


@dataclass
class _Context:
    dag: SerializedDag
    run: ByTask
    now: datetime
    previous_states: Mapping[InstanceKey, TaskState] | None
    lengths: Lengths
    #: a DAG without mapping: each task's one state, by task id
    plain: dict[str, TaskState | None] | None = None


def _expand(context: _Context, task: SerializedTask, count: int, decision: RunDecision) -> None:
    """Replace the placeholder by ``count`` waiting instances and decide each of them."""
    fresh = {i: InstanceSnapshot(task.task_id, TaskState.NONE, None, i) for i in range(count)}
    context.run[task.task_id] = fresh
    for map_index, instance in fresh.items():
        change = _decide_one(task, instance, context)
        if isinstance(change, StateChange):
            decision.changes.append(change)
            fresh[map_index] = replace(instance, state=change.target)


#: states an instance past its task's new length leaves for ``removed`` (a running or
#: finished try keeps its state; ``up_for_reschedule`` may not move there)
_REMOVABLE = frozenset({TaskState.NONE, TaskState.SCHEDULED, TaskState.UP_FOR_RETRY})


def _revise(
    context: _Context,
    task: SerializedTask,
    current: dict[int, InstanceSnapshot],
    decision: RunDecision,
) -> None:
    """An expanded task whose first waiting instance may run gets as many instances as
    its length now says: new indexes are added (``none``, decided below with the others)
    and waiting ones past the length are ``removed``. Only once the trigger rule is met,
    as in Airflow: before, a cleared producer's length is still the old one."""
    first = min((m for m, i in current.items() if i.state in WAITING), default=None)
    if first is None:
        return
    waiting = current[first]
    states_of = _states_of(context, task.task_id, waiting.map_index)
    counts = UpstreamCounts.of(s for u in task.upstream_task_ids for s in states_of(u))
    if _verdict(context.dag, task, counts, states_of)[0] is not Verdict.RUN:
        return
    count = instance_count(context.dag, task.task_id, context.lengths)
    if count is None:
        return
    added, surplus = revised_indexes(current, count)
    removed = [i for i in surplus if current[i].state in _REMOVABLE]
    if not added and not removed:
        return
    decision.revisions.append(Revision(task.task_id, tuple(added), tuple(removed)))
    current.update({i: InstanceSnapshot(task.task_id, TaskState.NONE, None, i) for i in added})
    for map_index in removed:
        instance = current[map_index]
        reason = f"map index {map_index} is past the task's new length {count}"
        change = StateChange(task.task_id, instance.state, TaskState.REMOVED, reason, map_index)
        decision.changes.append(change)
        current[map_index] = replace(instance, state=TaskState.REMOVED)


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


def _states_of(context: _Context, task_id: str, map_index: int) -> StatesOf:
    """The states of another task's instances that instance ``map_index`` of ``task_id``
    depends on (``(None,)`` without an instance): all of them, or inside a mapped group
    the relevant ones (:func:`~cluster.policy.mapping.relevant_indexes`) and the
    unexpanded placeholder. Airflow filters direct upstream tasks and the setups a task
    needs indirectly alike (``_is_relevant_upstream``)."""
    if context.plain is not None:
        plain = context.plain
        return lambda t: (plain.get(t),)
    run, dag, lengths = context.run, context.dag, context.lengths
    in_group = task_id in dag.mapped_groups

    def states_of(other: str) -> tuple[TaskState | None, ...]:
        instances = run.get(other)
        if instances is None:
            return (None,)
        relevant = relevant_indexes(dag, task_id, map_index, other, lengths) if in_group else None
        if relevant is None:
            return tuple(i.state for i in instances.values())
        return tuple(i.state for m, i in instances.items() if m < 0 or m in relevant)

    return states_of


def _decide_one(
    task: SerializedTask, instance: InstanceSnapshot, context: _Context
) -> StateChange | Expansion | None:
    states_of = _states_of(context, task.task_id, instance.map_index)
    counts = UpstreamCounts.of(s for u in task.upstream_task_ids for s in states_of(u))
    verdict, reason = _verdict(context.dag, task, counts, states_of)
    past_met = _past_met(task, instance.map_index, context.previous_states)
    if verdict is Verdict.WAIT:
        return None
    if verdict is Verdict.SKIP and not past_met:
        return None  # Airflow waits for past depends before skipping
    if verdict is Verdict.RUN:
        if instance.map_index < 0 and needs_expansion(context.dag, task.task_id):
            return _expansion(task, instance, context)
        if not past_met or not _time_has_come(instance, context.now):
            return None
    target = _TARGETS[verdict]
    return StateChange(task.task_id, instance.state, target, reason, instance.map_index)


def _expansion(
    task: SerializedTask, instance: InstanceSnapshot, context: _Context
) -> StateChange | Expansion:
    """Expand a placeholder whose trigger rule is met, or end it (Airflow's
    ``expand_mapped_task``): no length is ``upstream_failed``, zero is ``skipped``."""
    count = instance_count(context.dag, task.task_id, context.lengths)
    if count is None:
        reason = "cannot expand: a value it maps over was never pushed"
        return StateChange(task.task_id, instance.state, TaskState.UPSTREAM_FAILED, reason)
    if count == 0:
        reason = "mapped over an empty value: nothing to run"
        return StateChange(task.task_id, instance.state, TaskState.SKIPPED, reason)
    return Expansion(task.task_id, count)


def _past_met(
    task: SerializedTask, map_index: int, previous_states: Mapping[InstanceKey, TaskState] | None
) -> bool:
    if not task.depends_on_past or previous_states is None:
        return True
    return previous_states.get(key_of(task.task_id, map_index)) in PAST_OK


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


def can_progress(dag: SerializedDag, states: Mapping[Any, TaskState]) -> bool:
    """Whether any unfinished instance of the run can still move without a user.

    ``False`` is a deadlock: the run will never finish by itself (an ``all_success``
    task whose upstream was removed, say). Like Airflow, waiting on
    ``depends_on_past`` is never called a deadlock: the previous run may still finish
    or be cleared, so it is left out of this check.
    """
    if any(s not in FINISHED and s is not TaskState.NONE for s in states.values()):
        return True  # scheduled, queued, running, or waiting for a retry: it will move
    instances = {k: InstanceSnapshot(*_snapshot_args(k, s)) for k, s in states.items()}
    decision = decide_run(dag, instances, now=datetime.max)
    return bool(decision.changes or decision.expansions)


def _snapshot_args(key: InstanceKey, state: TaskState) -> tuple[str, TaskState, None, int]:
    task_id, map_index = instance_key(key)
    return task_id, state, None, map_index
