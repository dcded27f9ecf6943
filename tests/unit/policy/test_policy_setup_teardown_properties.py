"""Property tests: random setup/work/teardown DAGs with random failures run to the end.

Each example draws one to three scopes (a setup, a few work tasks, a teardown of the
setup; a scope may be nested in the previous one, as ``with`` blocks nest), random
extra edges between work tasks, random trigger rules where Airflow allows them, and
an outcome for every task that runs (success, failure or a skip of its own). A loop
plays scheduler and runner with the policy until the run ends; then one random task
is cleared as a user would (with the setups and teardowns that come along) and the
run is played again with new outcomes: that is where a work task meets a setup it
does not follow directly. After each play the test checks Airflow's promises: the run
terminates; every teardown with a successful setup ran; no work task ran without
every setup it needs having succeeded; and the run failed exactly when a task that
decides it (teardowns looked through) failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_dags import make_dag, utc

from cluster.actions import select_task_ids
from cluster.dagfiles.serialized import SerializedDag
from cluster.policy import InstanceSnapshot, decide_task_states, run_state
from cluster.policy.setup_teardown import setup_index
from cluster.states import FINISHED, DagRunState, TaskState

T = TaskState
WORK_RULES = ["all_success", "all_done", "one_success", "none_failed", "one_failed", "always"]
OUTCOMES = {"success": T.SUCCESS, "fail": T.FAILED, "skip": T.SKIPPED}


@dataclass
class Scenario:
    dag: SerializedDag
    outcomes: dict[str, TaskState]
    #: the task a user clears after the first play, and the outcomes of the second
    cleared: str
    again: dict[str, TaskState]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    edges: list[tuple[str, str]] = []
    options: dict[str, dict[str, Any]] = {}
    work: list[str] = []
    previous: tuple[str, str] | None = None
    for n in range(draw(st.integers(1, 3))):
        setup, teardown = f"s{n}", f"t{n}"
        options[setup] = {"is_setup": True}
        options[teardown] = {
            "is_teardown": True,
            "trigger_rule": "all_done_setup_success",
            "on_failure_fail_dagrun": draw(st.booleans()),
        }
        edges.append((setup, teardown))
        inner = [f"w{n}_{i}" for i in range(draw(st.integers(1, 4)))]
        links = [
            (up, down)
            for i, up in enumerate(inner)
            for down in inner[i + 1 :]
            if draw(st.booleans())
        ]
        # as a ``with`` block links them: the setup before the block's roots, the
        # teardown after its leaves; the other work only follows the setup indirectly
        edges += links
        edges += [(setup, t) for t in inner if all(d != t for _, d in links)]
        edges += [(t, teardown) for t in inner if all(u != t for u, _ in links)]
        if previous is not None and draw(st.booleans()):  # nest in the previous scope
            edges += [(previous[0], setup), (teardown, previous[1])]
        elif previous is not None and draw(st.booleans()):  # or follow it
            edges.append((draw(st.sampled_from(work)), setup))
        work += inner
        previous = (setup, teardown)
    for i, up in enumerate(work):  # forward edges between work tasks keep it acyclic
        for down in work[i + 1 :]:
            if draw(st.integers(0, 7)) == 0:
                edges.append((up, down))
    for task in work:
        after_setup = any(u.startswith("s") for u, d in edges if d == task)
        if not after_setup:  # Airflow requires all_success right after a setup
            options[task] = {"trigger_rule": draw(st.sampled_from(WORK_RULES))}
    dag = make_dag(edges, options=options)
    outcome = st.sampled_from(sorted(OUTCOMES)).map(OUTCOMES.__getitem__)
    outcomes = {t: draw(outcome) for t in dag.tasks}
    again = {t: draw(outcome) for t in dag.tasks}
    return Scenario(dag, outcomes, draw(st.sampled_from(sorted(dag.tasks))), again)


def exempt(dag: SerializedDag, task_id: str) -> bool:
    """Teardowns and ``always`` tasks do not wait for setups they do not follow directly."""
    task = dag.tasks[task_id]
    return task.is_teardown or task.trigger_rule == "always"


def play(
    dag: SerializedDag, states: dict[str, TaskState], outcomes: dict[str, TaskState]
) -> tuple[DagRunState, set[str]]:
    """Run to the end from ``states`` (changed in place): decide, run what was
    scheduled; returns the run state and which tasks ran.

    :raises AssertionError: when a work task starts before a setup it needs succeeded.
    """
    needs = setup_index(dag).relevant
    ran: set[str] = set()
    for _ in range(len(dag.tasks) + 2):
        instances = {t: InstanceSnapshot(t, s) for t, s in states.items()}
        for change in decide_task_states(dag, instances, now=utc(2024, 1, 1)):
            states[change.task_id] = change.target
        for task, state in states.items():
            if state is T.SCHEDULED:
                if not exempt(dag, task):
                    waiting = [s for s in needs.get(task, ()) if states[s] is not T.SUCCESS]
                    assert not waiting, f"{task} started before its setups {waiting}: {states}"
                ran.add(task)
                states[task] = outcomes[task]
        outcome = run_state(dag, states)
        if outcome is not None:
            return outcome, ran
    raise AssertionError(f"the run did not end: {states}")


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_run_ends_and_keeps_the_setup_teardown_promises(scenario: Scenario) -> None:
    dag = scenario.dag
    states = dict.fromkeys(dag.tasks, T.NONE)
    check(dag, states, set(dag.tasks), *play(dag, states, scenario.outcomes))
    cleared = select_task_ids(dag, task_ids=[scenario.cleared])
    for task_id in cleared:
        states[task_id] = T.NONE
    check(dag, states, cleared, *play(dag, states, scenario.again))


def check(
    dag: SerializedDag,
    states: dict[str, TaskState],
    reset: set[str],
    outcome: DagRunState,
    ran: set[str],
) -> None:
    """The promises, for a play that started with the ``reset`` tasks at ``none``."""
    assert all(s in FINISHED for s in states.values()), states
    index = setup_index(dag)
    for task in dag.tasks.values():
        if task.is_teardown and task.task_id in reset:
            setups = [u for u in task.upstream_task_ids if dag.tasks[u].is_setup]
            if any(states[s] is T.SUCCESS for s in setups):
                assert task.task_id in ran, f"{task.task_id} did not run: {states}"
        elif task.task_id in ran and not exempt(dag, task.task_id):
            needed = index.relevant.get(task.task_id, ())
            assert all(states[s] is T.SUCCESS for s in needed), (task.task_id, states)
    deciding = [states[t] for t in index.run_leaves]
    failed = any(s in (T.FAILED, T.UPSTREAM_FAILED) for s in deciding)
    assert outcome is (DagRunState.FAILED if failed else DagRunState.SUCCESS)
