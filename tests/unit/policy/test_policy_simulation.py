"""Property tests: random DAGs run to the end under the policy, checked by a reference.

Each example draws a DAG (random acyclic edges, trigger rules, retries, pools) and a
fixed outcome for every try of every task (success, failure, self-skip, or branch
that skips some of its downstream tasks). A small loop then plays scheduler,
executor and runner with the policy's decisions until the run ends, and checks that
(a) it ends within a bound, (b) every task ends as the plain reference in
``policy_reference`` says, and (c) queueing never exceeds pools, ``max_active_tasks``
or parallelism.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_dags import make_dag, utc
from policy_reference import reference_final_states, reference_run_state

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy import (
    DagLoad,
    InstanceSnapshot,
    PoolSnapshot,
    QueueCandidate,
    decide_task_states,
    effective_priority_weights,
    next_try_at,
    run_state,
    select_to_queue,
    should_retry,
)
from cluster.policy.graph import topological_order
from cluster.states import OCCUPYING, DagRunState, TaskState

RULES = [
    "all_success",
    "all_failed",
    "all_done",
    "all_done_min_one_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
]
STEP = timedelta(seconds=60)
MAX_STEPS = 400
T = TaskState


@dataclass
class Scenario:
    dag: SerializedDag
    #: per task, the outcome of each try: success, fail, skip or branch
    outcomes: dict[str, list[str]]
    #: per branch task, the downstream tasks it does not follow
    branch_skips: dict[str, list[str]]
    durations: dict[str, int]
    pools: dict[str, int]
    parallelism: int


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 12))
    ids = [f"t{i}" for i in range(n)]
    edges = [
        (ids[i], ids[j])
        for i in range(n)
        for j in range(i + 1, n)
        if draw(st.booleans()) and draw(st.booleans())
    ]
    pools = {"default_pool": draw(st.integers(1, 3)), "small": draw(st.integers(1, 2))}
    options: dict[str, dict[str, object]] = {}
    outcomes: dict[str, list[str]] = {}
    branch_skips: dict[str, list[str]] = {}
    durations: dict[str, int] = {}
    for task in ids:
        pool = draw(st.sampled_from(sorted(pools)))
        retries = draw(st.integers(0, 2))
        options[task] = {
            "trigger_rule": draw(st.sampled_from(RULES)),
            "retries": retries,
            "retry_delay": float(draw(st.sampled_from([0, 30, 60, 150]))),
            "pool": pool,
            "pool_slots": draw(st.integers(1, pools[pool])),
            "priority_weight": draw(st.integers(1, 3)),
            "weight_rule": draw(st.sampled_from(["downstream", "upstream", "absolute"])),
        }
        downstream = [d for u, d in edges if u == task]
        kinds = ["success", "fail", "skip", *(["branch"] if downstream else [])]
        outcomes[task] = draw(
            st.lists(st.sampled_from(kinds), min_size=retries + 1, max_size=retries + 1)
        )
        branch_skips[task] = (
            draw(st.lists(st.sampled_from(downstream), unique=True)) if downstream else []
        )
        durations[task] = draw(st.integers(1, 3))
    dag = make_dag(edges, tasks=ids, options=options, max_active_tasks=draw(st.integers(1, 4)))
    return Scenario(dag, outcomes, branch_skips, durations, pools, draw(st.integers(1, 4)))


@dataclass
class Simulation:
    """Scheduler, executor and runner for one run, in one-minute steps."""

    scenario: Scenario
    states: dict[str, TaskState] = field(default_factory=dict)
    ready_at: dict[str, object] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)
    ends_at: dict[str, int] = field(default_factory=dict)
    finished_at: dict[str, int] = field(default_factory=dict)
    step: int = 0

    def __post_init__(self) -> None:
        self.states = {t: T.NONE for t in self.scenario.dag.tasks}
        self.tries = dict.fromkeys(self.scenario.dag.tasks, 0)
        self.weights = effective_priority_weights(self.scenario.dag)

    @property
    def now(self):  # type: ignore[no-untyped-def]
        return utc(2024, 1, 1) + self.step * STEP

    def run(self) -> DagRunState:
        while self.step < MAX_STEPS:
            self.start_queued()
            self.finish_running()
            self.decide()
            self.queue()
            outcome = run_state(self.scenario.dag, self.states)
            if outcome is not None:
                return outcome
            self.step += 1
        raise AssertionError(f"run did not end within {MAX_STEPS} steps: {self.states}")

    def start_queued(self) -> None:
        for task, state in self.states.items():
            if state is T.QUEUED:
                self.states[task] = T.RUNNING
                self.tries[task] += 1
                self.ends_at[task] = self.step + self.scenario.durations[task]

    def finish_running(self) -> None:
        for task, state in list(self.states.items()):
            if state is not T.RUNNING or self.ends_at[task] != self.step:
                continue
            try_number = self.tries[task]
            outcome = self.scenario.outcomes[task][try_number - 1]
            spec = self.scenario.dag.tasks[task]
            if outcome == "fail" and should_retry(spec, try_number):
                self.states[task] = T.UP_FOR_RETRY
                self.ready_at[task] = next_try_at(spec, try_number, self.now)
                continue
            self.states[task] = {
                "success": T.SUCCESS,
                "branch": T.SUCCESS,
                "skip": T.SKIPPED,
                "fail": T.FAILED,
            }[outcome]
            self.finished_at[task] = self.step
            if outcome == "branch":
                for skipped in self.scenario.branch_skips[task]:
                    if self.states[skipped] is T.NONE:
                        self.states[skipped] = T.SKIPPED

    def decide(self) -> None:
        instances = {
            t: InstanceSnapshot(t, s, self.ready_at.get(t))  # type: ignore[arg-type]
            for t, s in self.states.items()
        }
        for change in decide_task_states(self.scenario.dag, instances, now=self.now):
            assert self.states[change.task_id] is change.source
            self.states[change.task_id] = change.target

    def queue(self) -> None:
        dag = self.scenario.dag
        occupying = [t for t, s in self.states.items() if s in OCCUPYING]
        pools = {
            name: PoolSnapshot(
                name,
                size,
                sum(dag.tasks[t].pool_slots for t in occupying if dag.tasks[t].pool == name),
            )
            for name, size in self.scenario.pools.items()
        }
        candidates = [
            QueueCandidate(
                dag.dag_id,
                "run",
                t,
                utc(2024, 1, 1),
                self.weights[t],
                dag.tasks[t].pool,
                dag.tasks[t].pool_slots,
            )
            for t, s in self.states.items()
            if s is T.SCHEDULED
        ]
        decision = select_to_queue(
            candidates,
            pools=pools,
            dag_loads={dag.dag_id: DagLoad(dag.max_active_tasks, len(occupying))},
            free_executor_slots=self.scenario.parallelism - len(occupying),
        )
        assert decision.never_fits == () and decision.missing_pool == ()
        weights = [c.priority_weight for c in decision.to_queue]
        assert weights == sorted(weights, reverse=True)
        for candidate in decision.to_queue:
            self.states[candidate.task_id] = T.QUEUED
        self.check_limits()

    def check_limits(self) -> None:
        dag = self.scenario.dag
        occupying = [t for t, s in self.states.items() if s in OCCUPYING]
        assert len(occupying) <= self.scenario.parallelism
        assert len(occupying) <= dag.max_active_tasks
        for name, size in self.scenario.pools.items():
            used = sum(dag.tasks[t].pool_slots for t in occupying if dag.tasks[t].pool == name)
            assert used <= size, (name, used, size)


def decisive_outcome(scenario: Scenario, task: str) -> str:
    """The outcome of the last try a task gets once it runs: the first non-failure."""
    return next((o for o in scenario.outcomes[task] if o != "fail"), "fail")


def outcome_if_run(scenario: Scenario, task: str) -> str:
    return {"success": "success", "branch": "success", "skip": "skipped", "fail": "failed"}[
        decisive_outcome(scenario, task)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_runs_end_as_the_reference_says_within_limits(scenario: Scenario) -> None:
    sim = Simulation(scenario)
    outcome = sim.run()
    dag = scenario.dag
    expected = reference_final_states(
        order=topological_order(dag),
        upstream={t: dag.tasks[t].upstream_task_ids for t in dag.tasks},
        rules={t: dag.tasks[t].trigger_rule for t in dag.tasks},
        outcome_if_run={t: outcome_if_run(scenario, t) for t in dag.tasks},
        finished_at_step=sim.finished_at,
        branch_skips={
            t: skips
            for t, skips in scenario.branch_skips.items()
            if decisive_outcome(scenario, t) == "branch"
        },
        last_step=sim.step,
    )
    assert {t: str(s) for t, s in sim.states.items()} == expected
    assert str(outcome) == reference_run_state(dag.leaves(), expected)
