"""Dynamic task mapping as pure policy: counts, expansion, and trigger rules over mapped
upstreams, with property tests that play whole runs to their end.

A little simulator stands in for the loop and the runner: it asks ``decide_run``,
writes expansions and changes, and ends each scheduled instance as the scenario says
(a producer records the length it pushed, as the runner does in ``task_map``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_dags import make_dag, utc
from policy_reference import reference_verdict

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy.changes import InstanceKey, key_of
from cluster.policy.mapping import (
    FAST_TRIGGERED,
    initial_map_indexes,
    instance_count,
    needs_expansion,
    ref_length,
    relevant_indexes,
)
from cluster.policy.outcome import run_state
from cluster.policy.readiness import InstanceSnapshot, decide_run
from cluster.states import FINISHED, DagRunState, TaskState

T = TaskState
NOW = utc(2024, 1, 1)
RULES = [
    "all_success", "all_failed", "all_done", "all_done_min_one_success", "all_skipped",
    "one_success", "one_failed", "one_done", "none_failed", "none_failed_min_one_success",
    "none_skipped", "always",
]  # fmt: skip


def xcom(task_id: str) -> dict[str, Any]:
    return {"type": "xcom", "task_id": task_id, "key": "return_value"}


def literal(n: int) -> dict[str, Any]:
    return {"type": "literal", "length": n, "value": list(range(n))}


def over(**refs: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "dict-of-lists", "args": refs}


# --- counting ----------------------------------------------------------------------------


def test_lengths_of_map_zip_concat_and_literals() -> None:
    lengths = {"a": 3, "b": 5}
    assert ref_length({"type": "map", "arg": xcom("a"), "callables": ["f"]}, lengths) == 3
    assert ref_length({"type": "zip", "args": [xcom("a"), xcom("b")]}, lengths) == 3
    zip_fill = {"type": "zip", "args": [xcom("a"), xcom("b")], "fillvalue": None}
    assert ref_length(zip_fill, lengths) == 5
    assert ref_length({"type": "concat", "args": [xcom("a"), literal(2)]}, lengths) == 5
    assert ref_length({"type": "concat", "args": [xcom("a"), xcom("c")]}, lengths) is None


def test_counts_multiply_over_arguments_and_enclosing_mapped_groups() -> None:
    dag = make_dag(
        [("p", "m")],
        tasks=["g"],
        options={
            "m": {"mapping": over(x=xcom("p"), y=literal(2))},
            "g": {"task_group_id": "outer.inner"},
        },
        task_groups={
            "outer": {"parent": None, "mapping": over(a=literal(3))},
            "outer.inner": {"parent": "outer", "mapping": over(b=xcom("p"))},
        },
    )
    assert instance_count(dag, "m", {}) is None
    assert instance_count(dag, "m", {"p": 4}) == 8
    assert instance_count(dag, "g", {"p": 4}) == 12
    assert not needs_expansion(dag, "p") and needs_expansion(dag, "g")


def test_literal_mappings_start_expanded_and_empty_ones_start_as_a_placeholder() -> None:
    dag = make_dag(
        tasks=["a", "b", "c", "plain"],
        options={
            "a": {"mapping": over(x=literal(3), y=literal(2))},
            "b": {"mapping": over(x=literal(0))},
            "c": {"mapping": {"kind": "list-of-dicts", "arg": xcom("a")}},
        },
    )
    assert list(initial_map_indexes(dag, "a")) == [0, 1, 2, 3, 4, 5]
    assert list(initial_map_indexes(dag, "b")) == [-1]
    assert list(initial_map_indexes(dag, "c")) == [-1]
    assert list(initial_map_indexes(dag, "plain")) == [-1]


def test_relevant_indexes_inside_mapped_groups() -> None:
    dag = make_dag(
        [("g1", "g2"), ("g1", "inner"), ("g1", "after")],
        options={
            "g1": {"task_group_id": "G"},
            "g2": {"task_group_id": "G"},
            "inner": {"task_group_id": "G.H"},
        },
        task_groups={
            "G": {"parent": None, "mapping": over(a=literal(3))},
            "G.H": {"parent": "G", "mapping": over(b=literal(2))},
        },
    )
    assert relevant_indexes(dag, "g2", 1, "g1", {}) == {1}
    assert relevant_indexes(dag, "g2", -1, "g1", {}) == set()
    assert relevant_indexes(dag, "inner", 5, "g1", {}) == {2}
    assert relevant_indexes(dag, "after", 0, "g1", {}) is None


# --- a simulated run ---------------------------------------------------------------------


@dataclass
class Run:
    """One run's instances, played to the end."""

    dag: SerializedDag
    #: what a producer pushes: its length
    pushed: Mapping[str, int] = field(default_factory=dict)
    #: instances whose try fails
    failures: set[tuple[str, int]] = field(default_factory=set)
    states: dict[InstanceKey, TaskState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for task_id in self.dag.tasks:
            for i in initial_map_indexes(self.dag, task_id):
                self.states[key_of(task_id, i)] = T.NONE

    def lengths(self) -> dict[str, int]:
        return {
            t: n
            for t, n in self.pushed.items()
            if self.states.get(t) is T.SUCCESS  # recorded with the producer's success
        }

    def play(self, max_steps: int = 50) -> DagRunState:
        for _ in range(max_steps):
            outcome = run_state(self.dag, self.states)
            if outcome is not None:
                return outcome
            self.step()
        raise AssertionError(f"the run did not end: {self.states}")

    def step(self) -> None:
        instances = {
            k: InstanceSnapshot(state=s, **_instance_args(k)) for k, s in self.states.items()
        }
        decision = decide_run(self.dag, instances, now=NOW, lengths=self.lengths())
        for expansion in decision.expansions:
            assert self.states.pop(expansion.task_id) is T.NONE
            for i in range(expansion.count):
                self.states[(expansion.task_id, i)] = T.NONE
        for revision in decision.revisions:
            for i in revision.added:
                assert (revision.task_id, i) not in self.states
                self.states[(revision.task_id, i)] = T.NONE
        for change in decision.changes:
            key = key_of(change.task_id, change.map_index)
            assert self.states[key] is change.source
            self.states[key] = change.target
        for key, state in list(self.states.items()):
            if state is T.SCHEDULED:
                self.states[key] = T.FAILED if _split(key) in self.failures else T.SUCCESS

    def of(self, task_id: str) -> dict[int, TaskState]:
        found = {}
        for key, state in self.states.items():
            t, i = _split(key)
            if t == task_id:
                found[i] = state
        return found


def _split(key: InstanceKey) -> tuple[str, int]:
    return (key, -1) if isinstance(key, str) else key


def _instance_args(key: InstanceKey) -> dict[str, Any]:
    task_id, map_index = _split(key)
    return {"task_id": task_id, "map_index": map_index}


def test_a_placeholder_expands_once_its_producer_pushed_and_the_reduce_waits_for_all() -> None:
    dag = make_dag([("p", "m"), ("m", "reduce")], options={"m": {"mapping": over(x=xcom("p"))}})
    run = Run(dag, pushed={"p": 3}, failures={("m", 1)})
    assert run.play() is DagRunState.FAILED
    assert run.of("m") == {0: T.SUCCESS, 1: T.FAILED, 2: T.SUCCESS}
    assert run.of("reduce") == {-1: T.UPSTREAM_FAILED}


def test_an_empty_expansion_skips_and_a_missing_one_is_upstream_failed() -> None:
    dag = make_dag(
        [("p", "m"), ("q", "n"), ("m", "after"), ("n", "after")],
        options={
            "m": {"mapping": over(x=xcom("p"))},
            "n": {"mapping": over(x=xcom("q")), "trigger_rule": "all_done"},
            "after": {"trigger_rule": "all_done"},
        },
    )
    run = Run(dag, pushed={"p": 0}, failures={("q", -1)})
    assert run.play() is DagRunState.SUCCESS
    assert run.of("m") == {-1: T.SKIPPED}
    assert run.of("n") == {-1: T.UPSTREAM_FAILED}


def test_a_cleared_mapped_task_is_revised_to_its_producer_s_new_length() -> None:
    """Airflow's re-expansion: the producer and the mapped task cleared, the producer
    pushes fewer values (surplus indexes ``removed``) or more (new indexes run)."""
    dag = make_dag(
        [("p", "m"), ("m", "reduce")],
        options={"m": {"mapping": over(x=xcom("p"))}, "reduce": {"trigger_rule": "all_done"}},
    )
    run = Run(dag, pushed={"p": 5})
    assert run.play() is DagRunState.SUCCESS
    assert run.of("m") == dict.fromkeys(range(5), T.SUCCESS)
    for pushed, expected in [
        (3, {0: T.SUCCESS, 1: T.SUCCESS, 2: T.SUCCESS, 3: T.REMOVED, 4: T.REMOVED}),
        (7, dict.fromkeys(range(7), T.SUCCESS)),
    ]:
        run.states = dict.fromkeys(run.states, T.NONE)  # clear p with its downstream
        run.pushed = {"p": pushed}
        assert run.play() is DagRunState.SUCCESS
        assert run.of("m") == expected
        assert run.of("reduce") == {-1: T.SUCCESS}


def test_an_all_success_reduce_after_a_shrink_is_a_deadlock_as_in_airflow() -> None:
    """Removed instances are not successes: the reduce can never run, and the run fails
    (Airflow 2.10's deadlock) instead of staying running."""
    dag = make_dag([("p", "m"), ("m", "reduce")], options={"m": {"mapping": over(x=xcom("p"))}})
    run = Run(dag, pushed={"p": 4})
    assert run.play() is DagRunState.SUCCESS
    run.states = dict.fromkeys(run.states, T.NONE)
    run.pushed = {"p": 2}
    assert run.play() is DagRunState.FAILED
    assert run.of("m") == {0: T.SUCCESS, 1: T.SUCCESS, 2: T.REMOVED, 3: T.REMOVED}
    assert run.of("reduce") == {-1: T.NONE}


def test_no_revision_while_the_new_length_is_unknown_or_unchanged() -> None:
    dag = make_dag([("p", "m")], options={"m": {"mapping": over(x=xcom("p"))}})
    instances = {
        "p": InstanceSnapshot("p", T.NONE),
        **{("m", i): InstanceSnapshot("m", T.NONE, map_index=i) for i in range(4)},
    }
    unknown = decide_run(dag, instances, now=NOW, lengths={})
    assert unknown.revisions == [] and [c.task_id for c in unknown.changes] == ["p"]
    instances["p"] = InstanceSnapshot("p", T.SUCCESS)
    same = decide_run(dag, instances, now=NOW, lengths={"p": 4})
    assert same.revisions == []
    assert [c.target for c in same.changes] == [T.SCHEDULED] * 4
    shorter = decide_run(dag, instances, now=NOW, lengths={"p": 2})
    assert [(c.map_index, c.target) for c in shorter.changes] == [
        (2, T.REMOVED), (3, T.REMOVED), (0, T.SCHEDULED), (1, T.SCHEDULED)
    ]  # fmt: skip


# --- properties --------------------------------------------------------------------------


@st.composite
def mapped_runs(draw: st.DrawFn) -> tuple[Run, str, int]:
    """producer → mapped (over its value or a literal) → downstream with a random rule."""
    length = draw(st.integers(0, 6))
    from_xcom = draw(st.booleans())
    rule = draw(st.sampled_from(RULES))
    source = xcom("p") if from_xcom else literal(length)
    dag = make_dag(
        [("p", "m"), ("m", "down")],
        options={"m": {"mapping": over(x=source)}, "down": {"trigger_rule": rule}},
    )
    failures = {("m", i) for i in draw(st.sets(st.integers(0, max(length - 1, 0))))}
    return Run(dag, pushed={"p": length}, failures=failures), rule, length


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mapped_runs())
def test_any_rule_downstream_of_a_mapped_task_ends_as_airflow_decides(
    case: tuple[Run, str, int],
) -> None:
    run, rule, length = case
    outcome = run.play()
    assert outcome in (DagRunState.SUCCESS, DagRunState.FAILED)
    assert all(s in FINISHED for s in run.states.values())
    mapped = run.of("m")
    if length == 0:
        assert mapped == {-1: T.SKIPPED}
    else:
        expected = {i: T.FAILED if ("m", i) in run.failures else T.SUCCESS for i in range(length)}
        assert mapped == expected
    verdict = reference_verdict(rule, [str(s) for s in mapped.values()])
    assert run.of("down") == {-1: T.SUCCESS if verdict == "run" else T(verdict)}


@st.composite
def group_runs(draw: st.DrawFn) -> tuple[Run, int, int]:
    """A mapped group (over a producer or a literal) holding ``first → second``, a nested
    mapped group holding ``inner`` (after ``first``), and ``after`` the group."""
    outer = draw(st.integers(0, 4))
    nested = draw(st.integers(0, 3))
    from_xcom = draw(st.booleans())
    dag = make_dag(
        [("p", "first"), ("first", "second"), ("first", "inner"), ("second", "after")],
        options={
            "first": {"task_group_id": "G"},
            "second": {"task_group_id": "G"},
            "inner": {"task_group_id": "G.H"},
            "after": {"trigger_rule": draw(st.sampled_from(RULES))},
        },
        task_groups={
            "G": {"parent": None, "mapping": over(a=xcom("p") if from_xcom else literal(outer))},
            "G.H": {"parent": "G", "mapping": over(b=literal(nested))},
        },
    )
    failing = draw(st.sets(st.integers(0, max(outer - 1, 0))))
    failures = {("first", i) for i in failing}
    return Run(dag, pushed={"p": outer}, failures=failures), outer, nested


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_runs())
def test_mapped_groups_map_index_by_index_and_always_end(case: tuple[Run, int, int]) -> None:
    run, outer, nested = case
    assert run.play() in (DagRunState.SUCCESS, DagRunState.FAILED)
    assert all(s in FINISHED for s in run.states.values())
    if outer == 0:
        assert run.of("first") == {-1: T.SKIPPED} == run.of("second")
        return
    first = run.of("first")
    assert set(first) == set(range(outer))
    for i in range(outer):
        expected = T.UPSTREAM_FAILED if first[i] is T.FAILED else T.SUCCESS
        assert run.of("second")[i] is expected
    inner = run.of("inner")
    if nested == 0:
        assert inner == {-1: T.SKIPPED}
    else:
        assert set(inner) == set(range(outer * nested))
        for j, state in inner.items():
            upstream = first[j // nested]
            assert state is (T.UPSTREAM_FAILED if upstream is T.FAILED else T.SUCCESS)


def test_a_one_rule_task_in_a_mapped_group_sees_every_instance_of_a_non_producer() -> None:
    """Airflow's ``is_fast_triggered``: only a ``one_*`` task directly in the mapped
    group, and only for upstream tasks its groups do not expand over."""
    groups = {"G": {"parent": None, "mapping": over(a=xcom("p"))}}
    in_g = {"task_group_id": "G"}
    dag = make_dag(
        [("p", "a"), ("a", "b"), ("p", "b"), ("a", "c")],
        options={
            "a": in_g,
            "b": {**in_g, "trigger_rule": "one_success"},
            "c": {**in_g, "trigger_rule": "all_success"},
        },
        task_groups=groups,
    )
    lengths = {"p": 3}
    assert relevant_indexes(dag, "b", 1, "a", lengths) is None
    assert relevant_indexes(dag, "c", 1, "a", lengths) == {1}
    # p is what the group expands over: not fast-triggered (and not in the group anyway)
    assert relevant_indexes(dag, "b", 1, "p", lengths) is None


@st.composite
def grouped_setups(draw: st.DrawFn) -> tuple[Run, str, int]:
    """A mapped group holding ``s`` (setup) → ``a`` (all_done) → ``w`` (random rule) →
    ``t`` (teardown of ``s``): ``w`` needs ``s`` without following it directly."""
    length = draw(st.integers(1, 4))
    rule = draw(st.sampled_from([r for r in RULES if r != "always"]))
    in_g = {"task_group_id": "G"}
    dag = make_dag(
        [("s", "a"), ("a", "w"), ("s", "t"), ("w", "t")],
        options={
            "s": {**in_g, "is_setup": True},
            "a": {**in_g, "trigger_rule": "all_done"},
            "w": {**in_g, "trigger_rule": rule},
            "t": {**in_g, "is_teardown": True, "trigger_rule": "all_done_setup_success"},
        },
        task_groups={"G": {"parent": None, "mapping": over(x=literal(length))}},
    )
    failures = {("s", i) for i in draw(st.sets(st.integers(0, length - 1)))}
    return Run(dag, failures=failures), rule, length


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_setups())
def test_setups_in_a_mapped_group_count_only_their_own_map_index(
    case: tuple[Run, str, int],
) -> None:
    """Airflow's ``_is_relevant_upstream`` for the setups a task needs indirectly and for
    a teardown's setups: instance ``i`` looks at ``s[i]`` only (every ``s`` instance for
    a ``one_*`` rule, Airflow's fast-triggered exception)."""
    run, rule, length = case
    assert run.play() in (DagRunState.SUCCESS, DagRunState.FAILED)
    assert all(s in FINISHED for s in run.states.values())
    setups = run.of("s")
    any_failed = T.FAILED in setups.values()
    for i in range(length):
        assert run.of("a")[i] is T.SUCCESS
        needed_failed = any_failed if rule in FAST_TRIGGERED else setups[i] is T.FAILED
        if needed_failed:
            assert run.of("w")[i] is T.UPSTREAM_FAILED
        else:
            verdict = reference_verdict(
                rule, [str(T.SUCCESS)] * (length if rule in FAST_TRIGGERED else 1)
            )
            assert run.of("w")[i] is (T.SUCCESS if verdict == "run" else T(verdict))
        assert run.of("t")[i] is (T.UPSTREAM_FAILED if setups[i] is T.FAILED else T.SUCCESS)
