"""Airflow's own example DAG files, with only their imports changed, give the same
task ids, edges, trigger rules, labels, groups and schedule as Airflow 2.10.5 did
(``tests/fixtures/airflow/expected.json``, written by ``generate.py``)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.sdk.cron import CRON_PRESETS
from cluster.sdk.dagcontext import capture_dags

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())

_SDK_MODULES = (
    r"airflow(?:\.sdk|\.decorators|\.models(?:\.\w+)?|\.utils\.trigger_rule|\.utils\.task_group"
    r"|\.utils\.edgemodifier|\.utils\.weekday|\.exceptions)?"
)
_IMPORT_RULES = [
    (re.compile(r"^(\s*)from airflow\.(?:providers\.standard\.)?operators\.(\w+) import", re.M),
     r"\1from cluster.operators.\2 import"),
    (re.compile(r"^(\s*)from airflow\.(?:providers\.standard\.)?sensors\.(\w+) import", re.M),
     r"\1from cluster.sensors.\2 import"),
    (re.compile(rf"^(\s*)from {_SDK_MODULES} import", re.M), r"\1from cluster.sdk import"),
]  # fmt: skip


def rewrite_imports(source: str) -> str:
    """Apply ARCHITECTURE.md's import table to an Airflow DAG file, nothing else."""
    for pattern, replacement in _IMPORT_RULES:
        source = pattern.sub(replacement, source)
    return source


def load_rewritten(path: pathlib.Path, tmp_path: pathlib.Path) -> list[SerializedDag]:
    target = tmp_path / path.name
    target.write_text(rewrite_imports(path.read_text()))
    spec = importlib.util.spec_from_file_location(f"parity_{path.stem}", target)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return [serialize_dag(d) for d in dags]


def describe(dag: SerializedDag) -> dict[str, object]:
    tasks = dag.tasks.values()
    summary = dag.schedule
    return {
        "task_ids": sorted(dag.tasks),
        "edges": sorted([t.task_id, d] for t in tasks for d in t.downstream_task_ids),
        "trigger_rules": {t.task_id: t.trigger_rule for t in tasks},
        "edge_labels": dict(sorted(dag.edge_labels.items())),
        "task_groups": sorted(dag.task_groups),
        # Airflow prints presets expanded and no schedule as the string "None"
        "schedule": "None" if summary is None else CRON_PRESETS.get(summary, summary),
    }


def test_rewrite_touches_only_import_lines() -> None:
    source = (
        "from airflow.models.dag import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.providers.standard.sensors.python import PythonSensor\n"
        "from airflow import DAG\n"
        "from airflow.models import Variable\n"
        "x = 'from airflow.decorators import task'\n"
    )
    assert rewrite_imports(source) == (
        "from cluster.sdk import DAG\n"
        "from cluster.operators.bash import BashOperator\n"
        "from cluster.sensors.python import PythonSensor\n"
        "from cluster.sdk import DAG\n"
        "from cluster.sdk import Variable\n"
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
