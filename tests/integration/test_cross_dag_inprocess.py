"""Cross-DAG features end to end: DAG files, DAG processor, scheduler loop, the
production pool and the metastore (SQLite, MariaDB, PostgreSQL), on a fake clock.

TriggerDagRunOperator waits for its target in reschedule mode, the target running
while the trigger holds no slot; ExternalTaskSensor sees another DAG's states at a
shifted logical date; a recursive clear follows ExternalTaskMarkers across three DAGs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cluster import actions
from cluster.errors import UsageError
from cluster.metastore.models import DagRun, TaskInstanceHistory
from cluster.states import TaskState
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import TEST_ACTOR, InProcessScheduler, task_states

TRIGGER_DAGS = """
from datetime import datetime
from cluster.sdk import DAG, task
from cluster.operators.trigger_dagrun import TriggerDagRunOperator

with DAG("controller", schedule=None, start_date=datetime(2024, 1, 1)):
    TriggerDagRunOperator(
        task_id="trigger",
        trigger_dag_id="target",
        conf={"message": "Hello World"},
        wait_for_completion=True,
        mode="reschedule",
        poke_interval=30,
    )

@task
def work(dag_run=None):
    return dag_run.conf["message"]

with DAG("target", schedule=None, start_date=datetime(2024, 1, 1)):
    work()
"""


def test_trigger_waits_in_reschedule_mode_without_holding_a_slot(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    write_dag(dags_folder / "trigger.py", TRIGGER_DAGS)
    harness = inprocess
    harness.process_dags()
    harness.trigger("controller", run_id)

    finished = harness.run_until_finished([("controller", run_id)])

    assert finished == {("controller", run_id): "success"}
    with harness.sessions() as session:
        targets = session.scalars(select(DagRun).where(DagRun.dag_id == "target")).all()
        tries = session.scalars(
            select(TaskInstanceHistory.state)
            .where(TaskInstanceHistory.dag_id == "controller")
            .order_by(TaskInstanceHistory.try_number)
        ).all()
    assert [(t.state, t.conf) for t in targets] == [("success", {"message": "Hello World"})]
    assert task_states(harness.sessions, "target", targets[0].run_id) == {"work": "success"}
    # one pool process: the target's task ran between two pokes of the trigger
    order = [(r.message.dag_id, r.state) for r in harness.executor.results]
    assert order[0] == ("controller", TaskState.UP_FOR_RESCHEDULE)
    assert order.index(("target", TaskState.SUCCESS)) < order.index(
        ("controller", TaskState.SUCCESS)
    )
    assert "up_for_reschedule" in tries


SENSOR_DAGS = """
from datetime import datetime, timedelta
from cluster.errors import TaskSkipped
from cluster.sdk import DAG, task
from cluster.sensors.external_task import ExternalTaskSensor

@task
def ok():
    return 1

@task
def bad():
    raise RuntimeError("fails on purpose")

@task
def skip():
    raise TaskSkipped("nothing to do")

with DAG("upstream", schedule=None, start_date=datetime(2024, 1, 1)):
    ok()
    bad()
    skip()

with DAG("downstream", schedule=None, start_date=datetime(2024, 1, 1)):
    for name, kwargs in {
        "wait_ok": {"external_task_id": "ok"},
        "wait_bad": {"external_task_id": "bad", "failed_states": ["failed"]},
        "wait_skip": {"external_task_id": "skip", "skipped_states": ["skipped"]},
        "wait_run": {"failed_states": ["failed"]},
    }.items():
        ExternalTaskSensor(
            task_id=name,
            external_dag_id="upstream",
            execution_delta=timedelta(hours=1),
            mode="reschedule",
            poke_interval=60,
            **kwargs,
        )
"""


def test_external_task_sensor_across_two_dags(
    inprocess: InProcessScheduler, dags_folder: Path
) -> None:
    write_dag(dags_folder / "sensors.py", SENSOR_DAGS)
    harness = inprocess
    harness.process_dags()
    start = harness.clock()
    with harness.sessions.begin() as session:
        # the sensors wait first: the upstream run is created after them
        for dag_id, when in (("downstream", start + timedelta(hours=1)), ("upstream", start)):
            actions.trigger(
                session, dag_id, actor=TEST_ACTOR, run_id="r", logical_date=when, now=start
            )

    finished = harness.run_until_finished([("downstream", "r"), ("upstream", "r")])

    assert finished == {("downstream", "r"): "failed", ("upstream", "r"): "failed"}
    assert task_states(harness.sessions, "downstream", "r") == {
        "wait_ok": "success",
        "wait_bad": "failed",
        "wait_skip": "skipped",
        "wait_run": "failed",
    }


MARKER_DAGS = """
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, task
from cluster.sensors.external_task import ExternalTaskMarker

SIDE_EFFECTS = Path("@SIDE_EFFECTS@")

@task
def step(name):
    with open(SIDE_EFFECTS / "log", "a") as fh:
        fh.write(name + "\\n")

with DAG("dag_a", schedule=None, start_date=datetime(2024, 1, 1)):
    step.override(task_id="a1")("a1") >> ExternalTaskMarker(
        task_id="to_b", external_dag_id="dag_b", external_task_id="b1", recursion_depth=@DEPTH@
    )

with DAG("dag_b", schedule=None, start_date=datetime(2024, 1, 1)):
    step.override(task_id="b1")("b1") >> ExternalTaskMarker(
        task_id="to_c", external_dag_id="dag_c", external_task_id="c1"
    )

with DAG("dag_c", schedule=None, start_date=datetime(2024, 1, 1)):
    step.override(task_id="c1")("c1") >> step.override(task_id="c2")("c2")
"""


def _run_all(harness: InProcessScheduler) -> None:
    start = harness.clock()
    with harness.sessions.begin() as session:
        for dag_id in ("dag_a", "dag_b", "dag_c"):
            actions.trigger(
                session, dag_id, actor=TEST_ACTOR, run_id="r", logical_date=start, now=start
            )
    runs = [("dag_a", "r"), ("dag_b", "r"), ("dag_c", "r")]
    assert set(harness.run_until_finished(runs).values()) == {"success"}


def test_a_recursive_clear_follows_markers_across_three_dags(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    write_dag(dags_folder / "markers.py", MARKER_DAGS, side_effects=tmp_path, depth=10)
    harness = inprocess
    harness.process_dags()
    _run_all(harness)

    with harness.sessions.begin() as session:
        cleared = actions.clear(session, "dag_a", ["r"], {"to_b"}, actor=TEST_ACTOR)

    assert sorted((k.dag_id, k.task_id) for k in cleared) == [
        ("dag_a", "to_b"),
        ("dag_b", "b1"),
        ("dag_b", "to_c"),
        ("dag_c", "c1"),
        ("dag_c", "c2"),
    ]
    runs = [("dag_a", "r"), ("dag_b", "r"), ("dag_c", "r")]
    assert set(harness.run_until_finished(runs).values()) == {"success"}
    assert (tmp_path / "log").read_text().split() == ["a1", "b1", "c1", "c2", "b1", "c1", "c2"]
    with harness.sessions.begin() as session:
        alone = actions.clear(
            session, "dag_a", ["r"], {"to_b"}, actor=TEST_ACTOR, recursive=False, dry_run=True
        )
    assert [(k.dag_id, k.task_id) for k in alone] == [("dag_a", "to_b")]


def test_a_recursive_clear_stops_at_the_first_markers_depth(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    write_dag(dags_folder / "markers.py", MARKER_DAGS, side_effects=tmp_path, depth=1)
    harness = inprocess
    harness.process_dags()
    _run_all(harness)

    with (
        pytest.raises(UsageError, match="Maximum recursion depth 1 reached for ExternalTaskMarker"),
        harness.sessions.begin() as session,
    ):
        actions.clear(session, "dag_a", ["r"], {"to_b"}, actor=TEST_ACTOR)
    assert set(task_states(harness.sessions, "dag_c", "r").values()) == {"success"}
