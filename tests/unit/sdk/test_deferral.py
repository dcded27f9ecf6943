"""Deferrable operators in the SDK: what a task defers on, and how it resumes.

``execute_task`` runs a deferral's trigger inline (as Airflow's ``dag.test()``), or with
``inline_triggers=False`` lets :class:`TaskDeferred` out so the trigger can be checked.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import (
    ExternalStateError,
    TaskDeferralError,
    TaskDeferred,
    TaskFailedNoRetry,
    TaskSkipped,
)
from cluster.execution import inprocess
from cluster.metastore.triggers import decode_value, encode_value
from cluster.operators.empty import EmptyOperator
from cluster.operators.trigger_dagrun import TriggerDagRunOperator
from cluster.sdk import DAG, BaseOperator
from cluster.sdk.deferral import call_task
from cluster.sdk.node import NodeOptions, node_options, set_node_options
from cluster.sdk.runtime import TriggeredRun
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryRuntime, make_context
from cluster.sensors.date_time import DateTimeSensorAsync
from cluster.sensors.external_task import ExternalTaskSensor
from cluster.sensors.filesystem import FileSensor
from cluster.sensors.time_delta import TimeDeltaSensorAsync
from cluster.triggers.base import TaskSuccessEvent, TriggerEvent
from cluster.triggers.external_task import DagStateTrigger, WorkflowTrigger
from cluster.triggers.file import FileTrigger
from cluster.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger

START = datetime(2025, 1, 1, tzinfo=UTC)


def deferred_by(task: BaseOperator, **context_args: Any) -> TaskDeferred:
    context = make_context(task, **context_args)
    with pytest.raises(TaskDeferred) as caught:
        execute_task(task, context, inline_triggers=False)
    return caught.value


def first_event(trigger: Any, timeout: float = 5.0) -> Any:
    async def run() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(run(), timeout))


def test_time_delta_sensor_async_defers_to_the_moment_and_resumes() -> None:
    with DAG("d", start_date=START):
        task = TimeDeltaSensorAsync(task_id="wait", delta=timedelta(hours=1))
    now = datetime.now(UTC)
    deferred = deferred_by(task, logical_date=now)
    assert isinstance(deferred.trigger, DateTimeTrigger)
    assert deferred.trigger.moment == now + timedelta(hours=1)
    assert deferred.method_name == "execute_complete"
    # already past: it succeeds without deferring
    assert execute_task(task, make_context(task, logical_date=START)) is True


def test_a_deferred_task_resumes_inline_after_its_trigger_fires() -> None:
    with DAG("d", start_date=START):
        task = TimeDeltaSensorAsync(task_id="wait", delta=timedelta(seconds=0.2))
    started = datetime.now(UTC)
    context = make_context(task, logical_date=started)
    assert execute_task(task, context) is None  # execute_complete's result
    assert datetime.now(UTC) >= started + timedelta(seconds=0.2)


def test_triggers_serialize_to_importable_classpaths_and_plain_data() -> None:
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    path, kwargs = DateTimeTrigger(moment).serialize()
    assert path == "cluster.triggers.temporal.DateTimeTrigger"
    assert decode_value(encode_value(kwargs)) == {"moment": moment, "end_from_trigger": False}
    assert TimeDeltaTrigger(timedelta(minutes=5)).serialize()[0] == path
    with pytest.raises(ValueError, match="naive"):
        DateTimeTrigger(datetime(2030, 1, 1))
    for trigger in (
        FileTrigger("/tmp/x"),
        WorkflowTrigger("other", [moment]),
        DagStateTrigger("other", ["success"], [moment]),
    ):
        classpath, kwargs = trigger.serialize()
        module, name = classpath.rsplit(".", 1)
        assert module.startswith("cluster.triggers.") and name == type(trigger).__name__
        rebuilt = type(trigger)(**decode_value(encode_value(kwargs)))
        assert rebuilt.serialize() == (classpath, kwargs)


def test_date_time_trigger_fires_with_its_moment_or_ends_the_task() -> None:
    moment = datetime.now(UTC) + timedelta(seconds=0.1)
    assert first_event(DateTimeTrigger(moment)) == TriggerEvent(moment)
    ended = first_event(DateTimeTrigger(moment, end_from_trigger=True))
    assert ended == TaskSuccessEvent()
    with DAG("d", start_date=START):
        task = DateTimeSensorAsync(task_id="at", target_time=moment)
    context = make_context(task)
    # a task-end event ends the try without calling the method it would resume in
    assert task.resume_execution("no_such_method", {"event": ended.payload}, context) is None


def test_file_trigger_fires_when_the_file_appears(tmp_path: Path) -> None:
    target = tmp_path / "later.txt"
    threading.Timer(0.2, target.write_text, args=("x",)).start()
    event = first_event(FileTrigger(str(tmp_path / "*.txt"), poke_interval=0.05))
    assert event == TriggerEvent(True)


def test_deferrable_file_sensor_pokes_once_then_defers_with_its_timeout(tmp_path: Path) -> None:
    with DAG("d", start_date=START):
        task = FileSensor(
            task_id="f", filepath=str(tmp_path / "x"), deferrable=True, timeout=30, poke_interval=1
        )
    deferred = deferred_by(task)
    assert isinstance(deferred.trigger, FileTrigger)
    assert (deferred.trigger.filepath, deferred.timeout) == (
        str(tmp_path / "x"),
        timedelta(seconds=30),
    )
    (tmp_path / "x").write_text("here")
    assert execute_task(task, make_context(task)) is None  # found at the first poke
    with pytest.raises(Exception, match="not found"):
        task.execute_complete(make_context(task), event=False)


def test_a_failed_trigger_fails_the_try_with_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with DAG("d", start_date=START):
        task = TimeDeltaSensorAsync(task_id="wait", delta=timedelta(0))
    kwargs = {"error": "Trigger failure", "traceback": ["Traceback:\n", "ValueError: boom\n"]}
    with caplog.at_level(logging.ERROR), pytest.raises(TaskDeferralError, match="Trigger failure"):
        call_task(task, make_context(task), next_method="__fail__", next_kwargs=kwargs)
    assert "ValueError: boom" in caplog.text


def test_workflow_trigger_reports_how_the_external_tasks_ended(runtime: InMemoryRuntime) -> None:
    trigger = WorkflowTrigger(
        "other", [START], ["a", "b"], failed_states=["failed"], poke_interval=0.01
    )
    runtime.states[("other", "a", START)] = "success"
    runtime.states[("other", "b", START)] = "running"
    threading.Timer(
        0.1, runtime.states.__setitem__, args=(("other", "b", START), "success")
    ).start()
    assert first_event(trigger) == TriggerEvent({"status": "success"})
    runtime.states[("other", "b", START)] = "failed"
    assert first_event(trigger) == TriggerEvent({"status": "failed"})


def test_deferrable_external_task_sensor_defers_and_ends_as_the_event_says(
    runtime: InMemoryRuntime,
) -> None:
    with DAG("child", start_date=START):
        task = ExternalTaskSensor(
            task_id="s", external_dag_id="other", external_task_id="a", deferrable=True
        )
    deferred = deferred_by(task, logical_date=START)
    assert isinstance(deferred.trigger, WorkflowTrigger)
    assert (deferred.trigger.external_task_ids, deferred.trigger.execution_dates) == (
        ["a"],
        [START],
    )
    context = make_context(task, logical_date=START)
    task.execute_complete(context, {"status": "success"})
    with pytest.raises(TaskSkipped):
        task.execute_complete(context, {"status": "skipped"})
    with pytest.raises(ExternalStateError):
        task.execute_complete(context, {"status": "failed"})


def test_deferrable_trigger_dag_run_waits_on_the_run_it_made(runtime: InMemoryRuntime) -> None:
    with DAG("controller", start_date=START):
        task = TriggerDagRunOperator(
            task_id="t",
            trigger_dag_id="target",
            trigger_run_id="r1",
            wait_for_completion=True,
            deferrable=True,
            poke_interval=0.01,
        )
    deferred = deferred_by(task)
    assert isinstance(deferred.trigger, DagStateTrigger)
    assert deferred.trigger.states == ["success", "failed"]
    assert deferred.kwargs == {"run_id": "r1"}
    runtime.runs[("target", "r1")] = TriggeredRun("target", "r1", START, "success")
    task.execute_complete(make_context(task), event=None, run_id="r1")
    runtime.runs[("target", "r1")] = TriggeredRun("target", "r1", START, "failed")
    with pytest.raises(ExternalStateError, match="failed"):
        task.execute_complete(make_context(task), event=None, run_id="r1")


def test_default_deferrable_comes_from_the_node_options() -> None:
    previous = node_options()
    set_node_options(NodeOptions(default_deferrable=True))
    try:
        with DAG("d", start_date=START):
            assert FileSensor(task_id="f", filepath="x").deferrable
            assert not FileSensor(task_id="g", filepath="x", deferrable=False).deferrable
    finally:
        set_node_options(previous)
    with DAG("e", start_date=START):
        assert not FileSensor(task_id="f", filepath="x").deferrable


def test_a_task_end_event_can_fail_or_skip_the_task() -> None:
    with DAG("d", start_date=START):
        task = TimeDeltaSensorAsync(task_id="wait", delta=timedelta(0))
    context = make_context(task)
    from_trigger = {"__tradewind_task_end__": "failed", "xcoms": {"k": 1}}
    with pytest.raises(TaskFailedNoRetry):
        task.resume_execution("execute_complete", {"event": from_trigger}, context)
    assert context["ti"].xcom_pull(task_ids="wait", key="k") == 1


def test_dags_test_runs_mapped_deferring_tasks_to_the_end() -> None:
    with DAG("mapped", start_date=START, schedule=None) as dag:
        waits = TimeDeltaSensorAsync.partial(task_id="wait").expand(
            delta=[timedelta(seconds=0.1), timedelta(seconds=0.2)]
        )
        waits >> EmptyOperator(task_id="after")
    outcome, results = inprocess.test_dag(dag, logical_date=datetime.now(UTC))
    assert str(outcome) == "success"
    assert sorted((r.task_id, r.map_index, str(r.state)) for r in results.values()) == [
        ("after", -1, "success"),
        ("wait", 0, "success"),
        ("wait", 1, "success"),
    ]
