"""``serialize_dag`` fills the serialized contract the scheduler and web rely on."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.errors import DagDefinitionError
from cluster.operators.bash import BashOperator
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, Label, Param, TaskGroup, task
from cluster.sensors.python import PythonSensor


def build() -> DAG:
    with DAG(
        "full",
        schedule="0 6 * * 1",
        start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
        catchup=True,
        max_active_runs=2,
        max_active_tasks=3,
        dagrun_timeout=timedelta(minutes=5),
        tags=["b", "a"],
        description="desc",
        doc_md="docs",
        params={"n": Param(1, type="integer")},
        default_args={"owner": "ops"},
        on_failure_callback=print,
    ) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("grp", tooltip="tip"):
            run = BashOperator(
                task_id="run",
                bash_command="echo",
                retries=2,
                retry_delay=timedelta(seconds=30),
                max_retry_delay=timedelta(minutes=2),
                execution_timeout=timedelta(seconds=90),
                pool="p",
                pool_slots=2,
                queue="q",
                priority_weight=5,
                weight_rule="absolute",
                trigger_rule="all_done",
                depends_on_past=True,
                on_success_callback=print,
            )
        wait = PythonSensor(task_id="wait", python_callable=lambda: True, mode="reschedule")

        @task
        def flow() -> None:
            """Task docs."""

        start >> Label("go") >> run >> wait >> flow()
    return dag


def test_dag_fields() -> None:
    ser = serialize_dag(build())
    assert (ser.dag_id, ser.schedule, ser.timezone) == ("full", "0 6 * * 1", "Europe/Amsterdam")
    assert ser.timetable["type"] == "cron"
    assert ser.start_date == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert (ser.catchup, ser.max_active_runs, ser.max_active_tasks) == (True, 2, 3)
    assert ser.dagrun_timeout == 300.0 and ser.tags == ("a", "b") and ser.owner == "ops"
    assert ser.params == {"n": {"type": "integer", "default": 1}}
    assert ser.task_groups == {"grp": {"tooltip": "tip", "parent": None, "prefix_group_id": True,
                                        "ui_color": "CornflowerBlue"}}  # fmt: skip
    assert ser.edge_labels == {"start>grp.run": "go"} and ser.has_callbacks
    assert ser.roots() == ["start"] and ser.leaves() == ["flow"]


def test_task_fields() -> None:
    tasks = serialize_dag(build()).tasks
    run = tasks["grp.run"]
    assert (run.operator, run.trigger_rule, run.retries, run.retry_delay) == (
        "BashOperator",
        "all_done",
        2,
        30.0,
    )
    assert (run.max_retry_delay, run.execution_timeout, run.pool, run.pool_slots) == (
        120.0,
        90.0,
        "p",
        2,
    )
    assert (run.queue, run.priority_weight, run.weight_rule, run.depends_on_past) == (
        "q",
        5,
        "absolute",
        True,
    )
    assert run.task_group_id == "grp" and run.has_callbacks and run.owner == "ops"
    assert run.upstream_task_ids == ("start",) and run.downstream_task_ids == ("wait",)
    assert run.template_fields == ("bash_command", "env", "cwd") and run.sensor_mode is None
    assert tasks["wait"].sensor_mode == "reschedule"
    assert tasks["start"].extra["empty"] is True and "empty" not in run.extra
    assert (
        tasks["flow"].extra["custom_operator_name"] == "@task"
        and tasks["flow"].doc_md == "Task docs."
    )


def test_json_round_trip_is_identity() -> None:
    text = serialize_dag(build()).to_json()
    assert SerializedDag.from_json(text).to_json() == text
    assert serialize_dag(build()).fingerprint() == SerializedDag.from_json(text).fingerprint()


def test_structure_change_changes_the_fingerprint() -> None:
    first = serialize_dag(build())
    dag = build()
    dag.get_task("grp.run").retries = 3
    assert serialize_dag(dag).fingerprint() != first.fingerprint()


def test_task_concurrency_limits_travel_and_are_left_out_when_unset() -> None:
    """``max_active_tis_per_dag`` / ``_per_dagrun`` reach the scheduler, for a mapped task
    through its ``partial`` arguments; absent from the JSON when unset, so the JSON of a
    DAG without them (and its fingerprint) is what it was, and old JSON reads as ``None``."""
    with DAG("limits", schedule=None) as dag:
        EmptyOperator(task_id="plain")
        EmptyOperator(task_id="per_run", max_active_tis_per_dagrun=3)
        BashOperator.partial(task_id="mapped", max_active_tis_per_dag=2).expand(
            bash_command=["true", "false"]
        )
    serialized = serialize_dag(dag)
    tasks = serialized.tasks
    assert (tasks["mapped"].max_active_tis_per_dag, tasks["mapped"].max_active_tis_per_dagrun) == (
        2,
        None,
    )
    assert tasks["per_run"].max_active_tis_per_dagrun == 3
    assert tasks["per_run"].max_active_tis_per_dag is None
    text = serialized.to_json()
    [plain] = [t for t in serialized.to_dict()["dag"]["tasks"] if t["task_id"] == "plain"]
    assert "max_active_tis_per_dag" not in plain and "max_active_tis_per_dagrun" not in plain
    read = SerializedDag.from_json(text)
    assert read.tasks["mapped"].max_active_tis_per_dag == 2
    assert read.tasks["plain"].max_active_tis_per_dag is None
    assert read.to_json() == text


def test_serializer_validates() -> None:
    with DAG("d") as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a >> b
    b >> a
    with pytest.raises(DagDefinitionError, match="Cycle"):
        serialize_dag(dag)


@pytest.mark.parametrize(
    ("schedule", "summary"),
    [(None, None), ("@once", "@once"), ("@daily", "@daily"), (timedelta(hours=1), "1:00:00")],
)
def test_schedule_summary(schedule: object, summary: str | None) -> None:
    with DAG("d", schedule=schedule, start_date=datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="t")
    assert serialize_dag(dag).schedule == summary


def _with_optional_fields() -> DAG:
    """Tasks that set the fields written only when set: setup, teardown, mapping, SLA."""
    with DAG("optional", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = BashOperator(
            task_id="work", bash_command="true", sla=timedelta(hours=1), max_active_tis_per_dag=3
        )
        teardown = EmptyOperator(task_id="teardown").as_teardown(setups=setup)

        @task
        def numbers() -> list[int]:
            return [1, 2]

        @task
        def double(x: int) -> int:
            return 2 * x

        setup >> work >> teardown
        double.expand(x=numbers())
    return dag


def test_each_serialized_task_holds_every_field_as_its_init_would_set_them() -> None:
    """``serialize_task`` fills the frozen dataclass through its ``__dict__`` (its
    ``__init__`` was nearly half of serializing a task): every field and nothing else,
    as ``__init__`` would."""
    names = {f.name for f in fields(SerializedTask)}
    optional = serialize_dag(_with_optional_fields())
    assert optional.tasks["setup"].is_setup and optional.tasks["teardown"].is_teardown
    assert optional.tasks["double"].mapping is not None and optional.tasks["numbers"].feeds_mapping
    for serialized in (serialize_dag(build()), optional):
        for serialized_task in serialized.tasks.values():
            assert set(vars(serialized_task)) == names
            assert SerializedTask(**vars(serialized_task)) == serialized_task
        assert SerializedDag.from_json(serialized.to_json()) == serialized
