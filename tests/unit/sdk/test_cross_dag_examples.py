"""Airflow 2.10.5's ExternalTaskMarker example (tests/fixtures/airflow/example_dags/), with
only its imports rewritten, carries what the scheduler and a recursive clear need
(test_airflow_examples.py compares its structure, schedule included, with a real Airflow's)."""

from __future__ import annotations

import importlib.util
import pathlib

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.sdk.dagcontext import capture_dags
from tests.airflow_compat import rewrite_imports

EXAMPLES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow" / "example_dags"


def load_rewritten(path: pathlib.Path, tmp_path: pathlib.Path) -> list[SerializedDag]:
    target = tmp_path / path.name
    target.write_text(rewrite_imports(path.read_text()))
    spec = importlib.util.spec_from_file_location(f"rewritten_{path.stem}", target)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return [serialize_dag(d) for d in dags]


def test_the_marker_and_sensors_carry_their_targets(tmp_path: pathlib.Path) -> None:
    parent, child = load_rewritten(EXAMPLES / "example_external_task_marker_dag.py", tmp_path)
    marker = parent.tasks["parent_task"].extra["external_marker"]
    assert (marker["dag_id"], marker["task_id"], marker["recursion_depth"]) == (
        "example_external_task_marker_child",
        "child_task1",
        10,
    )
    assert child.tasks["child_task1"].sensor_mode == "reschedule"
