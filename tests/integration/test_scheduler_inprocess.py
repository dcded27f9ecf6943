"""The scheduler loop and the runner together, in this process, on a fake clock.

Every dispatched message runs through a real supervisor (and a real forked task child)
before ``send`` returns, so each ``run_once`` is deterministic: retry delays and
reschedule dates are crossed by moving the clock, never by sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cluster import actions
from cluster.actions import load_dag
from cluster.metastore.models import TaskInstance, XCom
from cluster.scheduler.fencing import Fence
from cluster.scheduler.leadership import Leadership
from cluster.scheduler.loop import SchedulerLoop
from cluster.states import TaskState
from tests.dagfiles import write_dag
from tests.example_expectations import EXPECTED
from tests.integration.scheduler_harness import (
    InProcessScheduler,
    history,
    task_instances,
    task_states,
)

FAILED_LEAF = {TaskState.FAILED, TaskState.UPSTREAM_FAILED}


def expected_run_state(leaves: list[str], expected_tasks: dict[str, str]) -> str:
    """Airflow's rule: a run fails when a leaf failed or is upstream_failed."""
    return "failed" if any(expected_tasks[leaf] in FAILED_LEAF for leaf in leaves) else "success"


def test_every_example_dag_ends_as_expected(
    inprocess_examples: InProcessScheduler, run_id: str
) -> None:
    harness = inprocess_examples
    harness.process_dags()
    for dag_id in EXPECTED:
        harness.trigger(dag_id, run_id)

    finished = harness.run_until_finished([(dag_id, run_id) for dag_id in EXPECTED])

    with harness.sessions() as session:
        leaves = {dag_id: load_dag(session, dag_id).leaves() for dag_id in EXPECTED}
    actual = {dag_id: task_states(harness.sessions, dag_id, run_id) for dag_id in EXPECTED}
    assert actual == EXPECTED
    assert {dag_id: state for (dag_id, _), state in finished.items()} == {
        dag_id: expected_run_state(leaves[dag_id], EXPECTED[dag_id]) for dag_id in EXPECTED
    }
    # the retry example really retried: two tries of flaky in the history
    assert [
        h.try_number for h in history(harness.sessions, "example_retries", run_id, "flaky")
    ] == [
        1,
        2,
    ]


RETRY_DAG = """
from datetime import datetime, timedelta
from cluster.sdk import DAG, task

SIDE_EFFECTS = "@SIDE_EFFECTS@"

def _fail_twice(name):
    path = f"{SIDE_EFFECTS}/{name}"
    with open(path, "a") as fh:
        fh.write("ran\\n")
    with open(path) as fh:
        if len(fh.readlines()) <= 2:
            raise RuntimeError("fails on purpose")

with DAG("retries", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(retries=2, retry_delay=timedelta(seconds=300))
    def fixed():
        _fail_twice("fixed")

    @task(retries=2, retry_delay=timedelta(seconds=300), retry_exponential_backoff=True)
    def backoff():
        _fail_twice("backoff")

    fixed()
    backoff()
"""


def _write_retry_dag(folder: Path, side_effects: Path) -> None:
    side_effects.mkdir()
    write_dag(folder / "retries.py", RETRY_DAG, side_effects=side_effects)


def _instance(harness: InProcessScheduler, run_id: str, task_id: str) -> TaskInstance:
    (ti,) = [t for t in task_instances(harness.sessions, "retries", run_id) if t.task_id == task_id]
    return ti


def _dispatched_by_one_iteration(harness: InProcessScheduler) -> set[tuple[str, int]]:
    before = len(harness.executor.results)
    harness.loop.run_once()
    return {(m.task_id, m.try_number) for m in harness.executor.messages()[before:]}


def test_retries_wait_for_their_delay(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    """retries=2, retry_delay=300 s: ``fixed`` waits 300 s twice, ``backoff`` 300 s then 600 s.

    Before each retry the clock stops one second short of ``next_try_at`` (nothing may
    be queued), then reaches it (exactly the due task is queued, with the next try number).
    """
    harness = inprocess
    side_effects = tmp_path / "side_effects"
    _write_retry_dag(dags_folder, side_effects)
    harness.process_dags()
    harness.trigger("retries", run_id)
    delays = {"fixed": [300, 300], "backoff": [300, 600]}

    assert _dispatched_by_one_iteration(harness) == {("fixed", 1), ("backoff", 1)}
    for attempt in (1, 2):
        due: dict[str, datetime] = {}
        for task_id, waits in delays.items():
            ti = _instance(harness, run_id, task_id)
            assert (ti.state, ti.try_number) == (TaskState.UP_FOR_RETRY, attempt)
            assert ti.end_date is not None
            due[task_id] = ti.end_date + timedelta(seconds=waits[attempt - 1])
            assert ti.next_try_at == due[task_id]
        for when in sorted(set(due.values())):
            harness.clock.set(when - timedelta(seconds=1))
            assert _dispatched_by_one_iteration(harness) == set(), f"re-queued before {when}"
            harness.clock.set(when)
            assert _dispatched_by_one_iteration(harness) == {
                (task_id, attempt + 1) for task_id, at in due.items() if at == when
            }

    assert harness.run_until_finished([("retries", run_id)]) == {("retries", run_id): "success"}
    for task_id in delays:
        rows = history(harness.sessions, "retries", run_id, task_id)
        assert [(h.try_number, h.state) for h in rows] == [
            (1, "up_for_retry"),
            (2, "up_for_retry"),
            (3, "success"),
        ]
        assert (side_effects / task_id).read_text().splitlines() == ["ran"] * 3


SIDE_EFFECT_DAG = """
from datetime import datetime
from cluster.sdk import DAG, task
from cluster.operators.bash import BashOperator

SIDE_EFFECTS = "@SIDE_EFFECTS@"

with DAG("side_effects", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def python_task(ti=None):
        with open(f"{SIDE_EFFECTS}/python_task", "a") as fh:
            fh.write(f"try {ti.try_number}\\n")

    bash_task = BashOperator(
        task_id="bash_task",
        bash_command="echo try {{ ti.try_number }} >> " + SIDE_EFFECTS + "/bash_task",
    )
    python_task() >> bash_task
"""


def test_a_message_delivered_twice_runs_once(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    harness = inprocess
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    write_dag(dags_folder / "side_effects.py", SIDE_EFFECT_DAG, side_effects=side_effects)
    harness.process_dags()
    harness.trigger("side_effects", run_id)
    harness.executor.deliveries = 2

    assert harness.run_until_finished([("side_effects", run_id)]) == {
        ("side_effects", run_id): "success"
    }

    # per task: one delivery ran and was recorded, the other claimed nothing (the pool
    # reports the lost claim first: the worker is handed it before the record commits)
    outcomes = [(r.message.task_id, r.state) for r in harness.executor.results]
    assert sorted(outcomes, key=lambda o: (o[0] == "bash_task", o[1] is None)) == [
        ("python_task", TaskState.SUCCESS),
        ("python_task", None),
        ("bash_task", TaskState.SUCCESS),
        ("bash_task", None),
    ]
    # an old message arriving after the try finished claims nothing either
    for message in harness.executor.messages():
        assert harness.runner.run([message])[0].state is None
    for task_id in ("python_task", "bash_task"):
        assert (side_effects / task_id).read_text().splitlines() == ["try 1"]
        assert [
            h.try_number for h in history(harness.sessions, "side_effects", run_id, task_id)
        ] == [1]


PREV_DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("prev", schedule="@daily", start_date=datetime(2024, 1, 1)):
    BashOperator(
        task_id="show",
        bash_command="echo {{ data_interval_start | ds }} {{ prev_data_interval_start_success | ds }}",
    )
"""


def test_prev_success_variables_name_the_previous_successful_run(
    inprocess: InProcessScheduler, dags_folder: Path
) -> None:
    harness = inprocess
    (dags_folder / "prev.py").write_text(PREV_DAG)
    harness.process_dags()
    first, second = "manual__first", "manual__second"
    for run_id, day in ((first, 10), (second, 12)):
        with harness.sessions.begin() as session:
            actions.trigger(
                session,
                "prev",
                actor=actions.Actor("pytest"),
                run_id=run_id,
                logical_date=datetime(2024, 3, day, tzinfo=UTC),
                now=harness.clock(),
            )
        assert harness.run_until_finished([("prev", run_id)]) == {("prev", run_id): "success"}
    with harness.sessions() as session:
        pushed = dict(
            session.execute(
                select(XCom.run_id, XCom.value).where(
                    XCom.dag_id == "prev", XCom.key == "return_value"
                )
            ).all()
        )
    # a manual @daily run at day D covers [D-1, D], as in Airflow
    assert json.loads(pushed[first]) == "2024-03-09 None"
    assert json.loads(pushed[second]) == "2024-03-11 2024-03-09"


class SuspendedMidIteration:
    """An elector that holds, except at its second question (the first pre-commit check).

    That answer also stops the loop, so ``run`` returns after the interrupted iteration.
    """

    def __init__(self, stop: Callable[[], None]) -> None:
        self.calls = 0
        self.suspended_at: int | None = 2
        self._stop = stop

    def start(self, on_change: Callable[[], None]) -> None:
        on_change()

    def holds(self) -> bool:
        self.calls += 1
        if self.calls == self.suspended_at:
            self._stop()
            return False
        return True

    def resign(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_an_election_lost_mid_iteration_commits_nothing(
    inprocess_examples: InProcessScheduler, run_id: str
) -> None:
    harness = inprocess_examples
    harness.process_dags()
    harness.trigger("example_bash_operator", run_id)
    fence = Fence(host="suspended")
    loop = SchedulerLoop(
        harness.settings,
        sessions=harness.sessions,
        executor=harness.executor,
        fence=fence,
        clock=harness.clock,
    )
    elector = SuspendedMidIteration(loop.stop)
    leadership = Leadership(elector, fence, sessions=harness.sessions, clock=harness.clock)

    loop.run(leadership)

    assert leadership.terms == 1 and elector.calls == 2
    assert harness.executor.results == []
    assert task_states(harness.sessions, "example_bash_operator", run_id) == {}
    assert harness.run_state("example_bash_operator", run_id) == "queued"
    # the same iteration, once the connection is back, writes and dispatches
    elector.suspended_at = None
    assert loop.run_once() > 0
    assert harness.run_state("example_bash_operator", run_id) == "running"
