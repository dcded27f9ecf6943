"""Airflow's own example DAG files, with only their imports changed, give the same
task ids, edges, trigger rules, labels, groups and schedule as Airflow 2.10.5 did
(``tests/fixtures/airflow/expected.json``, written by ``generate.py``)."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.sdk.dagcontext import capture_dags
from tests.airflow_compat import describe, rewrite_imports

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def load_rewritten(path: pathlib.Path, tmp_path: pathlib.Path) -> list[SerializedDag]:
    target = tmp_path / path.name
    target.write_text(rewrite_imports(path.read_text()))
    spec = importlib.util.spec_from_file_location(f"parity_{path.stem}", target)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return [serialize_dag(d) for d in dags]


def test_rewrite_touches_only_import_lines() -> None:
    source = (
        "from airflow.models.dag import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.providers.standard.sensors.python import PythonSensor\n"
        "from airflow import DAG\n"
        "from airflow.models import Variable\n"
        "from airflow.providers.standard.triggers.temporal import DateTimeTrigger\n"
        "from airflow.example_dags.plugins.workday import AfterWorkdayTimetable\n"
        "    from airflow.datasets.metadata import Metadata\n"
        "x = 'from airflow.decorators import task'\n"
    )
    assert rewrite_imports(source) == (
        "from cluster.sdk import DAG\n"
        "from cluster.operators.bash import BashOperator\n"
        "from cluster.sensors.python import PythonSensor\n"
        "from cluster.sdk import DAG\n"
        "from cluster.sdk import Variable\n"
        "from cluster.triggers.temporal import DateTimeTrigger\n"
        "from plugins.workday import AfterWorkdayTimetable\n"
        "    from cluster.sdk import Metadata\n"
        "x = 'from airflow.decorators import task'\n"
    )


@pytest.mark.parametrize("path", sorted((FIXTURES / "dags").glob("*.py")), ids=lambda p: p.stem)
def test_same_structure_as_airflow(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    dags = load_rewritten(path, tmp_path)
    assert dags, f"{path.name} defined no DAG"
    for dag in dags:
        assert describe(dag) == EXPECTED[dag.dag_id], dag.dag_id


def test_every_expected_dag_is_produced(tmp_path: pathlib.Path) -> None:
    produced = {
        dag.dag_id
        for path in (FIXTURES / "dags").glob("*.py")
        for dag in load_rewritten(path, tmp_path)
    }
    assert produced == set(EXPECTED)
