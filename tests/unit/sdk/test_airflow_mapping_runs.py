"""Airflow 2.10.5's example DAGs that use dynamic task mapping, imports swapped, run
under ``dags test`` to the states a real Airflow recorded (``runs.json``'s ``dags_test``):
the same run state and the same state for every ``(task_id, map_index)``."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from cluster.execution import inprocess
from cluster.sdk.dagcontext import capture_dags
from cluster.sdk.runtime import set_runtime
from cluster.sdk.testing import InMemoryRuntime
from tests.airflow_compat import rewrite_tree

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow"
RUNS = json.loads((FIXTURES / "runs.json").read_text())
#: the example files whose DAGs map a task, with the DAG each defines
MAPPING_EXAMPLES = {
    "example_dynamic_task_mapping.py": "example_dynamic_task_mapping",
    "example_dynamic_task_mapping_with_no_taskflow_operators.py": (
        "example_dynamic_task_mapping_with_no_taskflow_operators"
    ),
    "example_params_trigger_ui.py": "example_params_trigger_ui",
}


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    target = tmp_path_factory.mktemp("mapping_examples")
    rewrite_tree(FIXTURES / "example_dags", target)
    sys.path.insert(0, str(target))
    set_runtime(InMemoryRuntime())
    yield target
    set_runtime(None)
    sys.path.remove(str(target))


@pytest.mark.parametrize("name", sorted(MAPPING_EXAMPLES))
def test_mapping_example_runs_as_on_airflow(name: str, rewritten: pathlib.Path) -> None:
    dag_id = MAPPING_EXAMPLES[name]
    expected = RUNS["dags_test"][dag_id]
    spec = importlib.util.spec_from_file_location(f"ex_{uuid.uuid4().hex}", rewritten / name)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    (dag,) = [d for d in dags if d.dag_id == dag_id]
    when = datetime.fromisoformat(RUNS["logical_date"])
    outcome, results = inprocess.test_dag(dag, logical_date=when, sleep=lambda _: None)
    assert str(outcome) == expected["state"]
    ours = sorted([r.task_id, r.map_index, str(r.state)] for r in results.values())
    assert ours == sorted(expected["task_instances"])
