"""Importing DAG files in a child: whatever a file does, the caller gets a result."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.dagfiles.importer import FileResult, import_file, import_files
from cluster.dagfiles.serialized import SerializedDag
from cluster.sdk.unsupported import NOT_YET
from tests.unit.dagfiles.conftest import GOOD_DAG


def test_good_file_gives_serialized_dags(dags_folder: Path) -> None:
    path = dags_folder / "good.py"
    path.write_text(GOOD_DAG.format(dag_id="good"))
    result = import_file(path, timeout=10)
    assert result.error is None
    dag = SerializedDag.from_json(result.dags["good"])
    assert set(dag.tasks) == {"a", "b"}
    assert dag.tasks["a"].downstream_task_ids == ("b",)


BROKEN = {
    "syntax": ("def broken(:\n    pass  # dag\n", "SyntaxError"),
    "raises": ("# dag\nraise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    "loops": ("# dag\nwhile True:\n    pass\n", "did not finish within"),
    "exits": ("# dag\nimport sys\nsys.exit(3)\n", "sys.exit(3)"),
    "crashes": (
        "# dag\nimport os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
        "signal SIGSEGV",
    ),
    "cycle": (
        "from datetime import datetime\nfrom cluster.sdk import DAG\nfrom cluster.operators.empty import EmptyOperator\n"
        "with DAG('cyc', schedule=None, start_date=datetime(2024, 1, 1)):\n"
        "    a = EmptyOperator(task_id='a')\n    b = EmptyOperator(task_id='b')\n    a >> b >> a\n",
        "cycle",
    ),
    "duplicate": (
        "from datetime import datetime\nfrom cluster.sdk import DAG\nfrom cluster.operators.empty import EmptyOperator\n"
        "with DAG('dup', schedule=None, start_date=datetime(2024, 1, 1)):\n"
        "    EmptyOperator(task_id='a')\n    EmptyOperator(task_id='a')\n",
        "a",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_become_errors(dags_folder: Path, name: str) -> None:
    source, expected = BROKEN[name]
    path = dags_folder / f"{name}.py"
    path.write_text(source)
    result = import_file(path, timeout=1.5)
    assert result.dags == {}
    assert result.error is not None
    assert expected in result.error


def test_error_names_the_line_of_a_definition_error(dags_folder: Path) -> None:
    source, _ = BROKEN["duplicate"]
    path = dags_folder / "dup.py"
    path.write_text(source)
    result = import_file(path, timeout=5)
    assert result.error is not None
    assert "dup.py" in result.error
    assert "6" in result.error


def test_a_missing_module_names_the_file_and_the_import_line(dags_folder: Path) -> None:
    path = dags_folder / "needs_a_provider.py"
    path.write_text("# dag\nimport os\nfrom tradewind_no_such_provider import Hook\n")

    result = import_file(path, timeout=5)

    assert result.error == (
        "ModuleNotFoundError: No module named 'tradewind_no_such_provider' "
        "(needs_a_provider.py, line 3)"
    )


def test_an_error_inside_a_helper_module_names_the_dag_file_line_that_called_it(
    dags_folder: Path,
) -> None:
    (dags_folder / "dag_helpers.py").write_text("def build():\n    raise KeyError('missing')\n")
    path = dags_folder / "uses_helpers.py"
    path.write_text("# dag\nfrom dag_helpers import build\n\nbuild()\n")

    result = import_file(path, search_path=dags_folder, timeout=5)

    assert result.error == "KeyError: 'missing' (uses_helpers.py, line 4)"


def test_an_airflow_feature_tradewind_lacks_is_one_error_naming_it(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(NOT_YET, "SlaMissing", "a missing feature")  # none is missing today
    path = dags_folder / "producer.py"
    path.write_text("# dag\nfrom cluster.sdk import DAG, SlaMissing\n")

    result = import_file(path, timeout=5)

    assert result.error == (
        "FeatureNotSupported: SlaMissing belongs to a missing feature, "
        "an Airflow feature Tradewind does not support yet (producer.py, line 2)"
    )


PID_DAG = """
import os
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), description=str(os.getpid())):
    EmptyOperator(task_id="a")
"""


def _child_pid(result: FileResult) -> str | None:
    return SerializedDag.from_json(result.dags[Path(result.path).stem]).description


def test_one_child_imports_a_batch_and_a_failing_file_fails_alone(dags_folder: Path) -> None:
    names = ["first", "second", "loops", "third", "crashes", "fourth", "raises", "fifth"]
    for name in names:
        source = BROKEN[name][0] if name in BROKEN else PID_DAG.format(dag_id=name)
        (dags_folder / f"{name}.py").write_text(source)
    results = list(import_files([(dags_folder / f"{n}.py", None) for n in names], timeout=1.5))
    assert [r.path.stem for r in results] == names
    errors = {r.path.stem: r.error for r in results if r.error}
    assert set(errors) == {"loops", "crashes", "raises"}
    assert "did not finish within" in errors["loops"]  # type: ignore[operator]
    assert "signal SIGSEGV" in errors["crashes"]  # type: ignore[operator]
    pids = {r.path.stem: _child_pid(r) for r in results if not r.error}
    # files share a child until one stalls or kills it; a raising file does not
    assert pids["first"] == pids["second"] != pids["third"]
    assert pids["third"] != pids["fourth"] == pids["fifth"]
