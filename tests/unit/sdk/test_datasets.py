"""Datasets as a DAG file writes them: URIs, ``&`` / ``|`` conditions, outlets and the
dataset timetables, and Airflow's five dataset example files (imports swapped)."""

from __future__ import annotations

import importlib.util
import pathlib
from datetime import timedelta

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagDefinitionError
from cluster.sdk import (
    DAG,
    Asset,
    CronTriggerTimetable,
    Dataset,
    DatasetAlias,
    DatasetAll,
    DatasetAny,
    DatasetOrTimeSchedule,
    Metadata,
    task,
)
from cluster.sdk.dagcontext import capture_dags
from cluster.sdk.datasets import condition_from_dict, condition_to_dict, evaluate_condition
from cluster.sdk.timetables import timetable_from_dict, timetable_to_dict
from tests.airflow_compat import rewrite_imports

EXAMPLES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow" / "example_dags"
#: Airflow 2.10.5's dataset example files (unmodified, in the parity fixtures)
DATASET_EXAMPLES = (
    "example_dataset_alias.py",
    "example_dataset_alias_with_no_taskflow.py",
    "example_datasets.py",
    "example_inlet_event_extra.py",
    "example_outlet_event_extra.py",
)


def test_uri_is_sanitized_as_airflow_does() -> None:
    assert Dataset("S3://bucket/key/").uri == "s3://bucket/key"
    assert Dataset("s3://b/k?z=1&a=2#frag").uri == "s3://b/k?a=2&z=1"
    assert Dataset("plain name").uri == "plain name"
    assert Dataset("s3://bucket").uri == "s3://bucket/"
    assert Dataset("s3://b/k") == Asset("s3://b/k/")
    with pytest.raises(ValueError, match="reserved"):
        Dataset("airflow://x")
    with pytest.raises(ValueError, match="empty"):
        Dataset("")


def test_and_or_build_conditions_and_flatten_like_airflow() -> None:
    a, b, c = Dataset("s3://a/k"), Dataset("s3://b/k"), Dataset("s3://c/k")
    cond = a | (b & c)
    assert condition_to_dict(cond) == {
        "any": [{"uri": "s3://a/k"}, {"all": [{"uri": "s3://b/k"}, {"uri": "s3://c/k"}]}]
    }
    assert condition_to_dict(a & b & c) == {
        "all": [{"uri": u} for u in ("s3://a/k", "s3://b/k", "s3://c/k")]
    }
    assert isinstance(a | b | c, DatasetAny) and isinstance(a & b, DatasetAll)
    assert condition_to_dict(condition_from_dict(condition_to_dict(cond))) == condition_to_dict(
        cond
    )


@pytest.mark.parametrize(
    ("ready", "expected"),
    [({"s3://a/k"}, True), ({"s3://b/k"}, False), ({"s3://b/k", "s3://c/k"}, True), (set(), False)],
)
def test_condition_evaluates_on_ready_datasets(ready: set[str], expected: bool) -> None:
    cond = Dataset("s3://a/k") | (Dataset("s3://b/k") & Dataset("s3://c/k"))
    assert cond.evaluate({u: True for u in ready}) is expected


def test_alias_holds_through_the_datasets_it_resolved_to() -> None:
    data = condition_to_dict(DatasetAll(DatasetAlias("al"), Dataset("s3://x/k")))
    ready = {"s3://x/k": True, "s3://y/k": True}
    assert not evaluate_condition(data, ready, {})
    assert evaluate_condition(data, ready, {"al": ["s3://y/k"]})


def test_schedule_list_means_all_and_survives_serialization() -> None:
    with DAG("consumer", schedule=[Dataset("s3://a/k"), Dataset("s3://b/k")]) as dag:
        pass
    tt = dag.timetable
    assert tt.summary == "Dataset" and not tt.can_be_scheduled
    data = timetable_to_dict(tt)
    assert data == {
        "type": "datasets",
        "condition": {"all": [{"uri": "s3://a/k"}, {"uri": "s3://b/k"}]},
    }
    assert timetable_to_dict(timetable_from_dict(data)) == data


def test_dataset_or_time_schedule_keeps_its_clock() -> None:
    tt = DatasetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 1 * * 3", timezone="UTC"),
        datasets=Dataset("s3://a/k") | Dataset("s3://b/k"),
    )
    with DAG("both", schedule=tt) as dag:
        pass
    assert dag.timetable.summary == "Dataset or 0 1 * * 3"
    restored = timetable_from_dict(timetable_to_dict(tt))
    assert timetable_to_dict(restored) == timetable_to_dict(tt)
    assert restored.periodic


def test_schedule_of_non_datasets_is_refused() -> None:
    with pytest.raises(DagDefinitionError, match="datasets"):
        DAG("bad", schedule=[Dataset("s3://a/k"), "s3://b/k"])
    with pytest.raises(DagDefinitionError):
        DAG("nested", schedule=DatasetOrTimeSchedule(
            timetable=DatasetOrTimeSchedule(timetable=CronTriggerTimetable("@daily", timezone="UTC"),
                                            datasets=[Dataset("s3://a/k")]),
            datasets=[Dataset("s3://b/k")]))  # fmt: skip


def test_outlets_of_operators_and_taskflow_are_serialized() -> None:
    with DAG("producer", schedule=timedelta(days=1)) as dag:

        @task(outlets=[Dataset("s3://o/out", extra={"k": 1}), DatasetAlias("al"), "not a dataset"])
        def produce() -> None:
            yield Metadata(Dataset("s3://o/out"), {"rows": 3})

        produce()
    serialized = serialize_dag(dag).tasks["produce"]
    assert serialized.extra["outlets"] == [
        {"uri": "s3://o/out", "extra": {"k": 1}},
        {"alias": "al"},
    ]


def _load(path: pathlib.Path, tmp_path: pathlib.Path) -> list[SerializedDag]:
    target = tmp_path / path.name
    target.write_text(rewrite_imports(path.read_text()))
    spec = importlib.util.spec_from_file_location(f"ds_{path.stem}", target)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return [serialize_dag(d) for d in dags]


def test_airflow_dataset_examples_parse_with_their_conditions(tmp_path: pathlib.Path) -> None:
    dags = {d.dag_id: d for name in DATASET_EXAMPLES for d in _load(EXAMPLES / name, tmp_path)}
    assert len(dags) == 23
    either = dags["consume_1_or_both_2_and_3_with_dataset_expressions"].timetable["condition"]
    assert either == {"any": [{"uri": "s3://dag1/output_1.txt"},
                              {"all": [{"uri": "s3://dag2/output_1.txt"}, {"uri": "s3://dag3/output_3.txt"}]}]}  # fmt: skip
    assert dags["conditional_dataset_and_time_based_timetable"].schedule == "Dataset or 0 1 * * 3"
    assert dags["dataset_alias_example_alias_consumer"].schedule == "Unresolved DatasetAlias"
    assert dags["dataset_produces_1"].tasks["producing_task_1"].extra["outlets"] == [
        {"uri": "s3://dag1/output_1.txt", "extra": {"hi": "bye"}}
    ]
