"""``cluster.dagfiles.compat``: what an Airflow DAG file uses, read from its syntax tree."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from cluster.dagfiles.compat import Finding, check_paths, check_source
from cluster.sdk import BaseOperator
from cluster.sdk.unsupported import NOT_YET

EXAMPLES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow" / "example_dags"


def findings(source: str) -> dict[str, Finding]:
    return {f.airflow: f for f in check_source(textwrap.dedent(source), "dag.py")}


def test_modules_and_names_resolve_as_the_import_hook_does() -> None:
    found = findings(
        """\
        from airflow import DAG
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.utils.trigger_rule import TriggerRule
        import airflow.models.dag
        """
    )
    assert found["airflow.DAG"].supported and found["airflow.DAG"].tradewind == "cluster.sdk.DAG"
    bash = found["airflow.providers.standard.operators.bash.BashOperator"]
    assert bash.supported and bash.tradewind == "cluster.operators.bash.BashOperator"
    assert found["airflow.utils.trigger_rule.TriggerRule"].supported
    assert found["airflow.models.dag"] == Finding(
        "dag.py", 4, "module", "airflow.models.dag", True, "cluster.sdk"
    )


def test_deferral_is_supported_under_airflows_names() -> None:
    found = findings(
        """\
        from airflow.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger
        from airflow.providers.standard.triggers.file import FileTrigger
        from airflow.triggers.base import BaseTrigger, TriggerEvent
        from airflow.exceptions import TaskDeferred
        from airflow.sensors.time_sensor import TimeSensorAsync
        t = TimeSensorAsync(task_id="t", target_time=None).defer(trigger=None, method_name="x")
        """
    )
    temporal = found["airflow.triggers.temporal.DateTimeTrigger"]
    assert temporal.tradewind == "cluster.triggers.temporal.DateTimeTrigger"
    assert found["airflow.providers.standard.triggers.file.FileTrigger"].supported
    assert found["airflow.triggers.base.TriggerEvent"].supported
    assert {f.supported for f in found.values()} == {True}


def test_what_tradewind_lacks_is_unsupported_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(NOT_YET, "SlaMissing", "a missing feature")  # none is missing today
    found = findings(
        """\
        from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
        from airflow.operators.subdag import SubDagOperator
        from airflow.configuration import conf
        from airflow.exceptions import TaskDeferred
        from airflow.models import SlaMissing
        """
    )
    provider = found["airflow.providers.amazon.aws.operators.s3"]
    assert (provider.line, provider.supported) == (1, False)
    assert "amazon provider" in provider.tradewind
    # a module that does not resolve lists no names of it
    assert "airflow.providers.amazon.aws.operators.s3.S3CreateBucketOperator" not in found
    assert found["airflow.operators.subdag"].tradewind == (
        "Tradewind has no module cluster.operators.subdag"
    )
    assert not found["airflow.configuration.conf"].supported
    assert found["airflow.exceptions.TaskDeferred"].supported
    lacking = found["airflow.models.SlaMissing"]
    assert not lacking.supported and "a missing feature" in lacking.tradewind


def test_features_in_calls_follow_what_the_sdk_has() -> None:
    found = findings(
        """\
        from airflow.sensors.time_delta import TimeDeltaSensor
        t = TimeDeltaSensor(task_id="wait", delta=1, deferrable=True)
        u = TimeDeltaSensor(task_id="no", delta=1, deferrable=False)
        add.partial(x=1).expand(y=[1, 2])
        """
    )
    deferrable = found["deferrable operators (deferrable=)"]
    assert (deferrable.line, deferrable.supported) == (2, True)
    mapping = found["dynamic task mapping (.expand())"]
    assert mapping.line == 4
    assert mapping.supported == callable(getattr(BaseOperator, "partial", None))


def test_type_checking_imports_and_other_packages_are_not_reported() -> None:
    found = findings(
        """\
        from typing import TYPE_CHECKING
        import pendulum
        if TYPE_CHECKING:
            from airflow.utils.context import Context
        """
    )
    assert found == {}


def test_a_file_that_does_not_parse_is_one_unsupported_finding() -> None:
    (finding,) = check_source("def broken(:\n", "bad.py")
    assert (finding.kind, finding.line, finding.supported) == ("syntax", 1, False)


def test_airflows_examples() -> None:
    result = check_paths(sorted(EXAMPLES.glob("*.py")), root=EXAMPLES)
    unsupported = {(f.file, f.airflow) for f in result if not f.supported}
    assert ("example_subdag_operator.py", "airflow.operators.subdag") in unsupported
    assert ("tutorial_objectstorage.py", "airflow.io.path.ObjectStoragePath") in unsupported
    # the tutorial and both deferral examples use nothing Tradewind lacks
    for name in ("tutorial.py", "example_sensors.py", "example_time_delta_sensor_async.py"):
        assert {f.supported for f in result if f.file == name} == {True}, name
    assert any(f.file == "tutorial.py" and f.airflow == "airflow.models.dag.DAG" for f in result)
