"""Airflow 2.10.5's cross-DAG example files (tests/fixtures/airflow/example_dags/), with
only their imports rewritten, give the structure Airflow gives them, schedules included
(test_airflow_examples.py compares tasks, edges and trigger rules with a real Airflow's),
and carry what the scheduler and a recursive clear need."""

from __future__ import annotations

import pathlib

import pytest

from tests.unit.sdk.test_airflow_parity import FIXTURES, describe, load_rewritten

FILES = FIXTURES / "example_dags"
NAMES = (
    "example_trigger_controller_dag.py",
    "example_trigger_target_dag.py",
    "example_external_task_marker_dag.py",
)


def _shape(task_ids: list[str], edges: list[list[str]], schedule: str) -> dict[str, object]:
    return {
        "task_ids": task_ids,
        "edges": edges,
        "trigger_rules": dict.fromkeys(task_ids, "all_success"),
        "edge_labels": {},
        "task_groups": [],
        "schedule": schedule,
    }


EXPECTED = {
    "example_trigger_controller_dag": _shape(["test_trigger_dagrun"], [], "@once"),
    "example_trigger_target_dag": _shape(["bash_task", "run_this"], [], "None"),
    "example_external_task_marker_parent": _shape(["parent_task"], [], "None"),
    "example_external_task_marker_child": _shape(
        ["child_task1", "child_task2", "child_task3"],
        [["child_task1", "child_task2"], ["child_task2", "child_task3"]],
        "None",
    ),
}


@pytest.mark.parametrize("path", [FILES / n for n in NAMES], ids=lambda p: p.stem)
def test_same_structure_as_airflow(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    dags = load_rewritten(path, tmp_path)
    assert dags
    for dag in dags:
        assert describe(dag) == EXPECTED[dag.dag_id], dag.dag_id


def test_the_marker_and_sensors_carry_their_targets(tmp_path: pathlib.Path) -> None:
    parent, child = load_rewritten(FILES / "example_external_task_marker_dag.py", tmp_path)
    marker = parent.tasks["parent_task"].extra["external_marker"]
    assert (marker["dag_id"], marker["task_id"], marker["recursion_depth"]) == (
        "example_external_task_marker_child",
        "child_task1",
        10,
    )
    assert child.tasks["child_task1"].sensor_mode == "reschedule"
