"""Every example DAG loads, serializes stably and ends as ``tests/example_expectations.py``
says."""

from __future__ import annotations

import importlib.util
import pathlib
import tempfile
import uuid
from collections.abc import Callable

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import DagSummary, SerializedDag, summary_from_json
from cluster.sdk.dag import DAG

REPO = pathlib.Path(__file__).parents[3]
EXAMPLES = REPO / "examples" / "dags"
Loader = Callable[[pathlib.Path], list[DAG]]


def _expected() -> dict[str, dict[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "example_expectations", REPO / "tests" / "example_expectations.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EXPECTED


EXPECTED = _expected()
FILES = sorted(EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_round_trip_is_byte_identical(path: pathlib.Path, load_dags: Loader) -> None:
    for dag in load_dags(path):
        text = serialize_dag(dag).to_json()
        assert SerializedDag.from_json(text).to_json() == text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_listing_summary_is_what_the_whole_form_says(
    path: pathlib.Path, load_dags: Loader
) -> None:
    """``tradewind dags list`` reads a summary without building the tasks: same values."""
    for dag in load_dags(path):
        text = serialize_dag(dag).to_json()
        whole = SerializedDag.from_json(text)
        assert summary_from_json(text) == DagSummary(
            schedule=whole.schedule, task_count=len(whole.tasks), tags=whole.tags
        )
        assert summary_from_json(text).task_count == len(dag.task_ids) > 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_fingerprint_is_stable_across_imports(path: pathlib.Path, load_dags: Loader) -> None:
    first = [serialize_dag(d).fingerprint() for d in load_dags(path)]
    second = [serialize_dag(d).fingerprint() for d in load_dags(path)]
    assert first == second and first


def test_expectations_cover_exactly_the_example_tasks(load_dags: Loader) -> None:
    found = {d.dag_id: set(d.task_ids) for path in FILES for d in load_dags(path)}
    assert found == {dag_id: set(tasks) for dag_id, tasks in EXPECTED.items()}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_example_run_ends_as_expected(
    dag_id: str, load_dags: Loader, run_dag: Callable[[DAG, str], dict[str, str]]
) -> None:
    dags = {d.dag_id: d for path in FILES for d in load_dags(path)}
    run_id = f"manual__{uuid.uuid4().hex}"
    try:
        assert run_dag(dags[dag_id], run_id) == EXPECTED[dag_id]
    finally:  # marker files the example tasks leave under the temp folder
        for leftover in pathlib.Path(tempfile.gettempdir()).glob(f"tradewind_example_*{run_id}*"):
            leftover.unlink()
