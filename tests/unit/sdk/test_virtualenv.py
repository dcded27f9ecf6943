"""PythonVirtualenvOperator, ExternalPythonOperator and their TaskFlow flavours, with real
virtualenvs: one requirements set is built once per node (under a lock) and reused.

The tests share two virtualenvs (one without requirements, one with a tiny wheel made
here, so pip installs it without the network) in a module-wide venvs folder.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import multiprocessing
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import TaskSkipped, TradewindError
from cluster.operators.empty import EmptyOperator
from cluster.operators.python import (
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonVirtualenvOperator,
    is_venv_installed,
)
from cluster.operators.venvs import VenvSpec, ensure_venv
from cluster.sdk import DAG, task
from cluster.sdk.node import NodeOptions, node_options, set_node_options
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import make_context


def make_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel ``twtiny`` whose module says ``VALUE = 42``."""
    files = {
        "twtiny.py": "VALUE = 42\n",
        "twtiny-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: twtiny\nVersion: 1.0\n",
        "twtiny-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append("twtiny-1.0.dist-info/RECORD,,")
    files["twtiny-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = folder / "twtiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("venvs")
    before = node_options()
    set_node_options(NodeOptions(venvs_folder=folder))
    yield folder
    set_node_options(before)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_wheel(tmp_path_factory.mktemp("wheel"))


def run(op: Any) -> tuple[Any, dict[str, Any]]:
    context = make_context(op)
    return execute_task(op, context), context


def uses_the_requirement(offset, ds=None):  # type: ignore[no-untyped-def]
    import sys

    import twtiny  # only inside the virtualenv

    return {"value": twtiny.VALUE + offset, "ds": ds, "prefix": sys.prefix}


def echo_args(*args, **kwargs):  # type: ignore[no-untyped-def]
    return {"args": list(args), "kwargs": kwargs, "strings": virtualenv_string_args}  # type: ignore[name-defined]  # noqa: F821


def test_venv_is_always_available() -> None:
    assert is_venv_installed()


def test_requirements_are_installed_in_a_cached_virtualenv(
    venvs: Path, wheel: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tradewind.task")
    with DAG("d"):
        op = PythonVirtualenvOperator(
            task_id="v",
            python_callable=uses_the_requirement,
            requirements=[str(wheel)],
            op_args=[1],
        )
    result, context = run(op)
    spec = op.venv_spec()
    assert result["value"] == 43 and result["ds"] == context["ds"]
    assert result["prefix"] == str(venvs / spec.digest())
    assert (venvs / spec.digest() / "install_complete_marker.json").read_text() == spec.describe()
    caplog.clear()
    assert run(op)[0]["value"] == 43
    assert any("Re-using cached Python virtual environment" in m for m in caplog.messages)
    with pytest.raises(ModuleNotFoundError):
        __import__("twtiny")


def test_args_kwargs_templates_and_string_args_cross_to_the_virtualenv(venvs: Path) -> None:
    with DAG("d"):
        op = PythonVirtualenvOperator(
            task_id="v",
            python_callable=echo_args,
            op_args=["{{ ds_nodash }}", 2],
            op_kwargs={"when": "{{ ds }}"},
            string_args=["one", "two"],
            serializer="json",
        )
    result, context = run(op)
    assert result["args"] == [context["ds_nodash"], 2]
    assert result["strings"] == ["one", "two"]
    # **kwargs takes the context that can cross (with json: no datetimes), as in Airflow
    kwargs = result["kwargs"]
    assert kwargs["when"] == context["ds"] and kwargs["run_id"] == context["run_id"]
    assert "logical_date" not in kwargs and "ti" not in kwargs


def fails():  # type: ignore[no-untyped-def]
    raise ValueError("nope from the venv")


def exits_3():  # type: ignore[no-untyped-def]
    import sys

    sys.exit(3)


def test_errors_and_skip_exit_codes(venvs: Path) -> None:
    with DAG("d"):
        bad = PythonVirtualenvOperator(task_id="bad", python_callable=fails)
        skip = PythonVirtualenvOperator(
            task_id="skip", python_callable=exits_3, skip_on_exit_code=3
        )
    with pytest.raises(TradewindError, match="nope from the venv"):
        run(bad)
    with pytest.raises(TaskSkipped):
        run(skip)


def test_only_plain_functions_and_existing_interpreters(venvs: Path) -> None:
    with DAG("d"), pytest.raises(ValueError, match="only supports functions"):
        PythonVirtualenvOperator(task_id="l", python_callable=lambda: 1)
    with DAG("e"):
        missing = PythonVirtualenvOperator(task_id="m", python_callable=fails, python_version="2.1")
        external = ExternalPythonOperator(
            task_id="x", python="/no/such/python", python_callable=fails
        )
    with pytest.raises(TradewindError, match=r"no interpreter python2\.1"):
        run(missing)
    with pytest.raises(TradewindError, match="must exists"):
        run(external)


def choose():  # type: ignore[no-untyped-def]
    return "b"


def test_branch_in_a_virtualenv(venvs: Path) -> None:
    with DAG("d"):
        branch = BranchPythonVirtualenvOperator(task_id="br", python_callable=choose)
        branch >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
    result, context = run(branch)
    assert result == "b" and context["ti"].skipped == ["a"]


def test_taskflow_virtualenv_and_external_python(venvs: Path) -> None:
    with DAG("d"):

        @task.virtualenv(multiple_outputs=True)
        def in_venv(x: int) -> dict[str, int]:
            return {"double": x * 2}

        @task.external_python(python=sys.executable)
        def outside(x: int) -> int:
            return x + 1

        first = in_venv(21)
        second = outside(1)
    venv_op, external_op = first.operator, second.operator
    assert venv_op.operator_name == "@task.virtualenv"
    result, context = run(venv_op)
    assert result == {"double": 42} and context["ti"].xcom_pull(key="double") == 42
    assert run(external_op)[0] == 2


def _build(folder: str, results: Any) -> None:
    handler = logging.Handler()
    messages: list[str] = []
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tradewind.task").addHandler(handler)
    logging.getLogger("tradewind.task").setLevel(logging.INFO)
    ensure_venv(VenvSpec(requirements=(), python_version=None), Path(folder))
    results.put(any("New Python virtual environment created" in m for m in messages))


def test_two_processes_build_one_virtualenv_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_build, args=(str(tmp_path), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    built = sorted(results.get(timeout=5) for _ in workers)
    assert built == [False, True]
