"""``core.airflow_compat``: unchanged ``import airflow…`` lines resolve to Tradewind's
modules in the processes that import user code, and only there.

Airflow's 52 example files loaded unchanged through the hook are compared with their
import-swapped copies in ``test_airflow_examples.py``.
"""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import cluster.operators.bash
import cluster.sdk
from cluster.config import load_settings
from cluster.dagfiles.environment import prepare_user_code
from cluster.dagfiles.importer import import_file
from cluster.errors import FeatureNotSupported
from cluster.sdk import airflow_compat
from cluster.sdk.unsupported import NOT_YET


@pytest.fixture
def hook() -> Iterator[airflow_compat.AirflowFinder]:
    airflow_compat.uninstall()
    yield airflow_compat.install()
    airflow_compat.uninstall()


def write_dag(folder: pathlib.Path, body: str) -> pathlib.Path:
    path = folder / "dag.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_import_cluster_sdk_installs_no_hook() -> None:
    code = (
        "import sys, cluster.sdk, cluster.sdk.airflow_compat\n"
        "print([type(f).__name__ for f in sys.meta_path])\n"
        "try:\n    import airflow\nexcept ModuleNotFoundError:\n    print('no airflow')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "AirflowFinder" not in out.stdout
    assert "no airflow" in out.stdout


def test_airflow_names_are_tradewinds_objects(hook: airflow_compat.AirflowFinder) -> None:
    models_dag = importlib.import_module("airflow.models.dag")
    decorators = importlib.import_module("airflow.decorators")
    sdk3 = importlib.import_module("airflow.sdk")
    assert models_dag.DAG is sdk3.DAG is cluster.sdk.DAG
    assert decorators.task is cluster.sdk.task
    # importing the submodule ``airflow.models.dag`` did not replace the ``dag`` decorator
    assert cluster.sdk.dag is decorators.dag and callable(cluster.sdk.dag)
    assert not isinstance(cluster.sdk.dag, type(sys))
    assert importlib.import_module("airflow.models").Variable is cluster.sdk.Variable
    assert importlib.import_module("airflow.exceptions").AirflowSkipException is (
        cluster.sdk.AirflowSkipException
    )


def test_operator_modules_are_tradewinds_modules(hook: airflow_compat.AirflowFinder) -> None:
    assert importlib.import_module("airflow.operators.bash") is cluster.operators.bash
    standard = importlib.import_module("airflow.providers.standard.operators.bash")
    assert standard is cluster.operators.bash
    # Tradewind's module keeps its own name and spec
    assert cluster.operators.bash.__spec__ is not None
    assert cluster.operators.bash.__spec__.name == "cluster.operators.bash"
    python = importlib.import_module("airflow.operators.python")
    assert python.get_current_context is cluster.sdk.get_current_context


def test_names_airflow_lacks_fail_as_in_airflow(
    hook: airflow_compat.AirflowFinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(NOT_YET, "SlaMissing", "a missing feature")  # none is missing today
    with pytest.raises(ImportError, match="cannot import name 'conf'"):
        exec("from airflow.configuration import conf", {})
    with pytest.raises(ModuleNotFoundError, match=r"airflow\.no_such_module"):
        importlib.import_module("airflow.no_such_module")
    with pytest.raises(FeatureNotSupported, match="a missing feature"):
        exec("from airflow.models import SlaMissing", {})


def test_unknown_provider_is_one_error_naming_module_and_line(
    hook: airflow_compat.AirflowFinder, tmp_path: pathlib.Path
) -> None:
    path = write_dag(
        tmp_path,
        """\
        from airflow import DAG

        from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
        """,
    )
    result = import_file(path, timeout=30, search_path=tmp_path)
    assert result.error == (
        "ModuleNotFoundError: No module named 'airflow.providers.amazon': Tradewind does not "
        "implement Airflow's amazon provider (dag.py, line 3)"
    )


def test_missing_operator_module_names_tradewinds_module(
    hook: airflow_compat.AirflowFinder, tmp_path: pathlib.Path
) -> None:
    path = write_dag(tmp_path, "from airflow.operators.subdag import SubDagOperator\n")
    result = import_file(path, timeout=30, search_path=tmp_path)
    assert result.error is not None
    assert "'airflow.operators.subdag'" in result.error
    assert "cluster.operators.subdag" in result.error
    assert result.error.endswith("(dag.py, line 1)")


def test_unchanged_file_defines_its_dag(
    hook: airflow_compat.AirflowFinder, tmp_path: pathlib.Path
) -> None:
    path = write_dag(
        tmp_path,
        """\
        import pendulum
        from airflow.decorators import task
        from airflow.models.dag import DAG
        from airflow.operators.bash import BashOperator
        from airflow.utils.trigger_rule import TriggerRule

        with DAG("unchanged", schedule=None, start_date=pendulum.datetime(2021, 1, 1)):
            @task
            def first():
                return 1

            first() >> BashOperator(
                task_id="last", bash_command="true", trigger_rule=TriggerRule.ALL_DONE
            )
        """,
    )
    result = import_file(path, timeout=30, search_path=tmp_path)
    assert result.error is None
    assert '"all_done"' in result.dags["unchanged"]


def test_real_airflow_is_not_shadowed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    airflow_compat.uninstall()
    try:
        finder = airflow_compat.install()
        assert finder.real_airflow is not None and str(tmp_path) in finder.real_airflow
        with pytest.raises(ImportError, match="a real Apache Airflow is installed"):
            importlib.import_module("airflow")
    finally:
        airflow_compat.uninstall()


def test_setting_decides_whether_user_code_processes_get_the_hook(
    tmp_path: pathlib.Path,
) -> None:
    airflow_compat.uninstall()
    try:
        prepare_user_code(
            load_settings({"TRADEWIND__CORE__AIRFLOW_COMPAT": "false"}, home=tmp_path)
        )
        assert airflow_compat.installed() is None
        prepare_user_code(load_settings({}, home=tmp_path))
        assert airflow_compat.installed() is not None
    finally:
        airflow_compat.uninstall()
