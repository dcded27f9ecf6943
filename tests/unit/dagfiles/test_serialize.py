"""The serialized form of a task is exactly what its dataclass describes, built the fast
way: every field set, nothing else, and a JSON round trip that loses nothing."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.operators.bash import BashOperator
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, task
from cluster.sensors.time_delta import TimeDeltaSensor

FIELDS = {f.name for f in fields(SerializedTask)}


def _varied_dag() -> DAG:
    """Tasks that set the optional fields, and tasks that leave them at their defaults."""
    with DAG("varied", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        setup = EmptyOperator(task_id="setup").as_setup()
        work = BashOperator(
            task_id="work",
            bash_command="true",
            retries=2,
            retry_delay=timedelta(seconds=7),
            execution_timeout=timedelta(minutes=1),
            sla=timedelta(hours=1),
            max_active_tis_per_dag=3,
            doc_md="does the work",
        )
        teardown = EmptyOperator(task_id="teardown").as_teardown(setups=setup)
        wait = TimeDeltaSensor(task_id="wait", delta=timedelta(seconds=1), mode="reschedule")

        @task
        def numbers() -> list[int]:
            return [1, 2]

        @task
        def double(x: int) -> int:
            return 2 * x

        setup >> work >> teardown
        work >> wait
        double.expand(x=numbers())
    return dag


def test_each_serialized_task_holds_every_field_and_equals_what_its_init_builds() -> None:
    serialized = serialize_dag(_varied_dag())
    assert set(serialized.tasks) == {"setup", "work", "teardown", "wait", "numbers", "double"}
    for serialized_task in serialized.tasks.values():
        assert set(vars(serialized_task)) == FIELDS
        assert SerializedTask(**vars(serialized_task)) == serialized_task
    assert serialized.tasks["setup"].is_setup
    assert serialized.tasks["double"].mapping is not None
    assert serialized.tasks["numbers"].feeds_mapping
    assert serialized.tasks["wait"].sensor_mode == "reschedule"


def test_the_json_form_round_trips_and_leaves_out_only_optional_defaults() -> None:
    serialized = serialize_dag(_varied_dag())
    written = {t["task_id"]: t for t in serialized.to_dict()["dag"]["tasks"]}
    assert set(written["work"]) == FIELDS - {
        "is_setup", "is_teardown", "on_failure_fail_dagrun", "mapping", "feeds_mapping",
        "max_active_tis_per_dagrun",
    }  # fmt: skip
    assert written["work"]["upstream_task_ids"] == ["setup"]
    assert SerializedDag.from_json(serialized.to_json()) == serialized
