"""Setup and teardown tasks over the serialized graph: Airflow 2.10's rules, pure.

Three questions are answered here, each as Airflow answers it:

* which setups a task needs (``get_upstreams_only_setups``): a setup upstream of the
  task whose teardown is downstream of it, or that has no teardown. A work task waits
  for those it does not follow directly too (*indirect* setups), and becomes
  ``upstream_failed`` or ``skipped`` when one of them fails or is skipped, whatever its
  trigger rule; that matters when only the work task and its setup are cleared;
* which instances decide the run's state (``DagRun._tis_for_dagrun_state``): the
  leaves, looking through teardowns, whose failure is ignored unless the teardown has
  ``on_failure_fail_dagrun``;
* what clearing a task brings with it (``DAG.partial_subset``): its relevant setups
  and their teardowns.

The per-DAG index is computed once per :class:`SerializedDag` object and dropped with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy.graph import ancestors, descendants
from cluster.policy.trigger_rules import UpstreamCounts, Verdict
from cluster.states import TaskState

#: a run's states of one task's instances (``[None]``: no instance yet)
StatesOf = Callable[[str], Iterable[TaskState | None]]


@dataclass(frozen=True)
class SetupIndex:
    """What the policy needs to know about one DAG's setups and teardowns."""

    #: setup id → its teardowns (the teardowns directly downstream of it)
    teardowns: dict[str, tuple[str, ...]]
    #: task id → the setups it needs (Airflow's relevant setups), for tasks that have any
    relevant: dict[str, tuple[str, ...]]
    #: task id → the relevant setups it does not follow directly; never for teardowns
    indirect: dict[str, tuple[str, ...]]
    #: the tasks whose states decide the run's state
    run_leaves: tuple[str, ...]


_INDEXES: dict[int, SetupIndex] = {}


def setup_index(dag: SerializedDag) -> SetupIndex:
    """The :class:`SetupIndex` of ``dag``, computed on first use."""
    found = _INDEXES.get(id(dag))
    if found is None:
        found = _INDEXES[id(dag)] = _build_index(dag)
        weakref.finalize(dag, _INDEXES.pop, id(dag), None)
    return found


def _build_index(dag: SerializedDag) -> SetupIndex:
    tasks = dag.tasks
    teardowns = {
        t.task_id: tuple(d for d in t.downstream_task_ids if tasks[d].is_teardown)
        for t in tasks.values()
        if t.is_setup
    }
    relevant: dict[str, list[str]] = {}
    for setup_id, own_teardowns in teardowns.items():
        scope = descendants(dag, setup_id)
        if own_teardowns:
            # inside the scope: between the setup and one of its teardowns
            scope &= set().union(*(ancestors(dag, t) for t in own_teardowns))
        for task_id in scope:
            relevant.setdefault(task_id, []).append(setup_id)
    indirect = {
        task_id: tuple(s for s in setups if s not in tasks[task_id].upstream_task_ids)
        for task_id, setups in relevant.items()
        if not tasks[task_id].is_teardown
    }
    return SetupIndex(
        teardowns=teardowns,
        relevant={t: tuple(sorted(s)) for t, s in relevant.items()},
        indirect={t: tuple(sorted(s)) for t, s in indirect.items() if s},
        run_leaves=_run_leaves(dag),
    )


def _run_leaves(dag: SerializedDag) -> tuple[str, ...]:
    """Airflow's effective leaves: a task whose downstream tasks are all ignorable
    teardowns counts as a leaf, and an ignorable teardown never does. A DAG of only
    ignorable teardowns falls back to its plain leaves."""
    tasks = dag.tasks

    def ignorable(task_id: str) -> bool:
        task = tasks[task_id]
        return task.is_teardown and not task.on_failure_fail_dagrun

    leaves = tuple(
        t.task_id
        for t in tasks.values()
        if not ignorable(t.task_id) and all(ignorable(d) for d in t.downstream_task_ids)
    )
    return leaves or tuple(dag.leaves())


def all_done_setup_success(counts: UpstreamCounts, setups: UpstreamCounts) -> Verdict:
    """Trigger rule ``all_done_setup_success`` (a teardown's): run once every upstream
    task is done, if at least one upstream setup succeeded; skipped when all of them
    were skipped, ``upstream_failed`` when none succeeded. Without an upstream setup
    it is ``all_done``.

    :param setups: the counts of the upstream instances that are setups.
    """
    if not counts.all_done:
        return Verdict.WAIT
    if setups.total and setups.skipped >= setups.total:
        return Verdict.SKIP
    if setups.total and setups.success == 0:
        return Verdict.UPSTREAM_FAILED
    return Verdict.RUN


def direct_setup_counts(dag: SerializedDag, task_id: str, states_of: StatesOf) -> UpstreamCounts:
    """The counts of ``task_id``'s direct upstream instances that are setups."""
    task = dag.tasks[task_id]
    setups = [u for u in task.upstream_task_ids if dag.tasks[u].is_setup]
    return UpstreamCounts.of(s for u in setups for s in states_of(u))


def with_indirect_setups(
    dag: SerializedDag, task_id: str, verdict: Verdict, states_of: StatesOf
) -> Verdict:
    """``verdict`` (from the direct upstream tasks) under the indirect-setup constraint.

    A failed indirect setup makes the task ``upstream_failed`` and a skipped one
    ``skipped``, before its own trigger rule is looked at; until all of them
    succeeded the task does not run (it may still be skipped or failed by its direct
    upstream tasks, as in Airflow). Teardowns and ``always`` tasks are exempt.
    """
    task = dag.tasks[task_id]
    if task.trigger_rule == "always" or not task.upstream_task_ids:
        return verdict
    indirect = setup_index(dag).indirect.get(task_id)
    if not indirect:
        return verdict
    counts = UpstreamCounts.of(s for setup in indirect for s in states_of(setup))
    if counts.failures:
        return Verdict.UPSTREAM_FAILED
    if counts.skipped:
        return Verdict.SKIP
    if counts.success < counts.total and verdict is Verdict.RUN:
        return Verdict.WAIT
    return verdict


def with_setups_and_teardowns(dag: SerializedDag, task_ids: Iterable[str]) -> set[str]:
    """``task_ids`` plus, for each work task among them, its relevant setups and their
    teardowns, and for each setup among them its teardowns: what clearing those tasks
    clears in Airflow (``partial_subset`` without upstream or downstream)."""
    index = setup_index(dag)
    chosen = set(task_ids)
    extra: set[str] = set()
    for task_id in chosen:
        task = dag.tasks[task_id]
        if task.is_setup:
            extra.update(index.teardowns.get(task_id, ()))
        elif not task.is_teardown:
            for setup_id in index.relevant.get(task_id, ()):
                extra.add(setup_id)
                extra.update(index.teardowns.get(setup_id, ()))
    return chosen | extra


def with_setup_teardowns_upstream(dag: SerializedDag, task_id: str) -> set[str]:
    """Every task upstream of ``task_id`` and the teardowns of the setups among them
    (Airflow's ``get_upstreams_follow_setups``, for clearing with upstream)."""
    index = setup_index(dag)
    found = ancestors(dag, task_id)
    for setup_id in [t for t in found if dag.tasks[t].is_setup]:
        found.update(t for t in index.teardowns.get(setup_id, ()) if t != task_id)
    return found


def is_run_leaf(dag: SerializedDag, task_id: str) -> bool:
    return task_id in setup_index(dag).run_leaves
