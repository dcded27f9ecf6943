"""TriggerDagRunOperator, ExternalTaskSensor and ExternalTaskMarker against an
in-memory runtime (the metastore side is tested in
tests/integration/test_cross_dag_inprocess.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.errors import (
    AlreadyExistsError,
    DagDefinitionError,
    ExternalStateError,
    TaskRescheduled,
    TaskSkipped,
    UsageError,
)
from cluster.operators.trigger_dagrun import TriggerDagRunOperator
from cluster.policy.external_markers import follow_markers, render_marker_date
from cluster.sdk import DAG
from cluster.sdk.runtime import TriggeredRun
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryRuntime, make_context
from cluster.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor
from tests.clocks import START, FakeClock


def run(task: Any, **ti: Any) -> dict[str, Any]:
    context = make_context(task, logical_date=START)
    for key, value in ti.items():
        setattr(context["ti"], key, value)
    execute_task(task, context)
    return context


def trigger_op(**kwargs: Any) -> TriggerDagRunOperator:
    with DAG("controller"):
        op = TriggerDagRunOperator(task_id="t", trigger_dag_id="target", **kwargs)
    clock = FakeClock()
    op._sleep, op._clock = clock.sleep, clock
    return op


def test_trigger_creates_a_run_and_pushes_its_id(runtime: InMemoryRuntime) -> None:
    context = run(trigger_op(conf={"message": "Hello World"}, trigger_run_id="r1"))
    assert [(r.dag_id, r.run_id, r.conf) for r in runtime.triggered] == [
        ("target", "r1", {"message": "Hello World"})
    ]
    assert context["ti"].xcom_pull(task_ids="t", key="trigger_run_id") == "r1"


def test_an_existing_run_fails_skips_or_is_reset(runtime: InMemoryRuntime) -> None:
    runtime.runs[("target", "r1")] = TriggeredRun("target", "r1", START, "failed")
    with pytest.raises(AlreadyExistsError):
        run(trigger_op(trigger_run_id="r1"))
    with pytest.raises(TaskSkipped):
        run(trigger_op(trigger_run_id="r1", skip_when_already_exists=True))
    run(trigger_op(trigger_run_id="r1", reset_dag_run=True))
    assert runtime.runs[("target", "r1")].state == "queued"


def test_wait_for_completion_in_poke_mode_fails_on_a_failed_run(runtime: InMemoryRuntime) -> None:
    op = trigger_op(trigger_run_id="r1", wait_for_completion=True, poke_interval=5)
    pokes: list[float] = []

    def sleep(seconds: float) -> None:
        pokes.append(seconds)
        runtime.runs[("target", "r1")] = TriggeredRun("target", "r1", START, "failed")

    op._sleep = sleep
    with pytest.raises(ExternalStateError, match="failed with failed states failed"):
        run(op)
    assert pokes == [5.0]


def test_reschedule_mode_triggers_once_then_polls(runtime: InMemoryRuntime) -> None:
    op = trigger_op(wait_for_completion=True, mode="reschedule", poke_interval=30)
    with pytest.raises(TaskRescheduled):
        run(op, start_date=START, sensor_started_at=None)
    later = START + timedelta(seconds=30)
    with pytest.raises(TaskRescheduled):
        run(op, start_date=later, sensor_started_at=START)
    assert len(runtime.triggered) == 1
    run_id = runtime.triggered[0].run_id
    assert run_id == f"manual__{START.isoformat()}"
    runtime.runs[("target", run_id)] = TriggeredRun("target", run_id, START, "success")
    context = run(op, start_date=later + timedelta(seconds=30), sensor_started_at=START)
    assert len(runtime.triggered) == 1
    assert context["ti"].xcom_pull(task_ids="t", key="trigger_run_id") == run_id


def test_deferrable_defers_instead_of_poking() -> None:
    op = trigger_op(deferrable=True, wait_for_completion=True)
    assert (op.deferrable, op.mode) == (True, "poke")  # tests/unit/sdk/test_deferral.py


def sensor(**kwargs: Any) -> ExternalTaskSensor:
    with DAG("child"):
        s = ExternalTaskSensor(task_id="s", external_dag_id="parent", **kwargs)
    s._sleep = lambda _s: None
    return s


@pytest.mark.parametrize(
    ("state", "outcome"),
    [("success", None), ("failed", ExternalStateError), ("skipped", TaskSkipped)],
)
def test_sensor_allowed_failed_skipped(
    runtime: InMemoryRuntime, state: str, outcome: type[Exception] | None
) -> None:
    runtime.states[("parent", "p", START)] = state
    s = sensor(
        external_task_id="p",
        failed_states=["failed"],
        skipped_states=["skipped"],
        mode="reschedule",
    )
    if outcome is None:
        run(s)
    else:
        with pytest.raises(outcome):
            run(s)


def test_sensor_waits_while_the_task_is_not_done(runtime: InMemoryRuntime) -> None:
    runtime.states[("parent", "p", START)] = "running"
    with pytest.raises(TaskRescheduled):
        run(sensor(external_task_id="p", mode="reschedule"))


def test_execution_delta_and_date_fn_shift_the_date(runtime: InMemoryRuntime) -> None:
    runtime.states[("parent", "p", START - timedelta(hours=1))] = "success"
    run(sensor(external_task_id="p", execution_delta=timedelta(hours=1)))
    run(sensor(external_task_id="p", execution_date_fn=lambda dt: dt - timedelta(hours=1)))
    seen: list[str] = []

    def by_context(dt: Any, ds: str, **kwargs: Any) -> Any:
        seen.append(ds)
        return [dt - timedelta(hours=1)]

    run(sensor(external_task_id="p", execution_date_fn=by_context))
    assert seen == [START.strftime("%Y-%m-%d")]


def test_task_group_and_whole_dag(runtime: InMemoryRuntime) -> None:
    runtime.groups[("parent", "g")] = ["g.a", "g.b"]
    runtime.states[("parent", "g.a", START)] = "success"
    runtime.states[("parent", "g.b", START)] = "running"
    with pytest.raises(TaskRescheduled):
        run(sensor(external_task_group_id="g", mode="reschedule"))
    runtime.states[("parent", "g.b", START)] = "success"
    run(sensor(external_task_group_id="g", mode="reschedule"))
    runtime.states[("parent", None, START)] = "failed"
    with pytest.raises(ExternalStateError, match="external DAG parent failed"):
        run(sensor(failed_states=["failed"]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"external_task_id": "p", "external_task_ids": ["q"]},
        {"external_task_ids": ["p"], "external_task_group_id": "g"},
        {"external_task_id": "p", "allowed_states": ["success"], "failed_states": ["success"]},
        {"external_task_id": "p", "allowed_states": ["up_for_nothing"]},
        {"allowed_states": ["upstream_failed"]},
        {"execution_delta": timedelta(1), "execution_date_fn": lambda d: d},
    ],
)
def test_sensor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(DagDefinitionError):
        sensor(**kwargs)


def marker_dag(depth: int = 10, date: str | None = None) -> Any:
    with DAG("parent") as dag:
        extra = {"execution_date": date} if date else {}
        ExternalTaskMarker(
            task_id="m",
            external_dag_id="child",
            external_task_id="c",
            recursion_depth=depth,
            **extra,
        )
    return serialize_dag(dag)


def test_marker_serializes_its_target_and_renders_its_date() -> None:
    serialized = marker_dag()
    assert serialized.tasks["m"].extra["external_marker"]["dag_id"] == "child"
    assert serialized.tasks["m"].extra["empty"] is True
    assert render_marker_date("{{ logical_date.isoformat() }}", START) == START
    shifted = "{{ (logical_date - macros_delta).isoformat() }}"
    with pytest.raises(UsageError):
        render_marker_date(shifted, START)
    with pytest.raises(UsageError):
        render_marker_date("2024-01-01T00:00:00", START)


def test_follow_markers_stops_at_the_first_markers_depth() -> None:
    instances = [("r", "m", START, (None, None))]
    limit: list[int] = []
    visited: set[tuple[str, str, str]] = set()
    [target] = follow_markers(marker_dag(depth=2), instances, visited, 0, limit)
    assert (target.dag_id, target.task_id, target.logical_date) == ("child", "c", START)
    assert follow_markers(marker_dag(depth=2), instances, visited, 0, limit) == []
    with pytest.raises(UsageError, match="Maximum recursion depth 2"):
        follow_markers(marker_dag(depth=9), [("r2", "m", START, (None, None))], visited, 2, limit)


def test_marker_rejects_a_zero_depth() -> None:
    with pytest.raises(DagDefinitionError), DAG("d"):
        ExternalTaskMarker(
            task_id="m", external_dag_id="x", external_task_id="y", recursion_depth=0
        )


def test_an_unknown_task_group_waits_as_on_airflow(runtime: InMemoryRuntime) -> None:
    """Airflow falls back to the group id as a task id: the sensor waits until its
    timeout (Airflow's run of example_external_task_marker_dag ends child_task2 failed)."""
    with pytest.raises(TaskRescheduled):
        run(sensor(external_task_group_id="missing", mode="reschedule"))
