"""Dynamic task mapping in DAG files: ``partial``/``expand``/``expand_kwargs``, XComArg
``map``/``zip``/``concat``, Airflow's definition errors, the serialized mapping, and one
instance's arguments (``unmap``) as the runner builds them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.errors import DagDefinitionError, FeatureNotSupported, UnmappableXCom
from cluster.execution import inprocess
from cluster.operators.bash import BashOperator
from cluster.sdk import DAG, BaseOperator, MappedOperator, XComArg, task, task_group
from cluster.sdk.mappedoperator import mapped_length
from cluster.sdk.testing import InMemoryTaskInstance, InMemoryXComStore, make_context

START = datetime(2024, 1, 1, tzinfo=UTC)


class AddOne(BaseOperator):
    template_fields = ("value",)

    def __init__(self, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context: dict[str, Any]) -> Any:
        return self.value + 1


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def numbers() -> list[int]:
    return [1, 2, 3]


def test_classic_partial_expand_builds_one_mapped_task_with_its_knobs() -> None:
    with DAG("d", default_args={"retries": 3}) as dag:
        mapped = AddOne.partial(task_id="add_one", pool="p").expand(value=[1, 2, 3])
    assert isinstance(mapped, MappedOperator) and dag.task_dict == {"add_one": mapped}
    assert (mapped.retries, mapped.pool, mapped.task_type) == (3, "p", "AddOne")
    assert isinstance(mapped.output, XComArg)


def test_taskflow_expand_links_the_producer_and_keeps_partial_arguments() -> None:
    with DAG("d") as dag:
        produced = numbers()
        mapped = add.partial(y=10).expand(x=produced)
    operator = mapped.operator
    assert isinstance(operator, MappedOperator)
    assert operator.upstream_task_ids == {"numbers"}
    assert operator.partial_kwargs["op_kwargs"] == {"y": 10}
    assert dag.task_ids == ["numbers", "add"]


@pytest.mark.parametrize(
    ("build", "kind", "message"),
    [
        (lambda: AddOne.partial(task_id="t").expand(retries=[1]), TypeError,
         "unmappable or already specified argument: retries"),
        (lambda: AddOne.partial(task_id="t", value=1).expand(value=[1]), TypeError,
         "unmappable or already specified argument: value"),
        (lambda: AddOne.partial(task_id="t").expand(value=3), ValueError,
         "AddOne.expand() got an unexpected type 'int' for keyword argument value"),
        (lambda: AddOne.partial(task_id="t").expand(valeu=[1]), TypeError,
         "AddOne.expand() got an unexpected keyword argument 'valeu'"),
        (lambda: AddOne.partial(task_id="t", nope=1), TypeError,
         "AddOne.partial() got an unexpected keyword argument 'nope'"),
        (lambda: AddOne.partial(task_id="t").expand(), TypeError, "no arguments to expand against"),
        (lambda: AddOne.partial(task_id="t").expand_kwargs(3), TypeError,
         "expected XComArg or list[dict], not int"),
        (lambda: add.expand(x="abc"), ValueError,
         "expand() got an unexpected type 'str' for keyword argument 'x'"),
        (lambda: add.expand(z=[1]), TypeError, "expand() got an unexpected keyword argument 'z'"),
        (lambda: add.partial(x=1).expand(x=[1]), TypeError, "mapping already partial argument: x"),
        (lambda: add.expand(ds=[1]), ValueError, "cannot call expand() on task context variable"),
        (lambda: add.expand(x=numbers()["k"]), ValueError, "cannot map over XCom with custom key"),
        (lambda: AddOne.partial(task_id="t", sla=5).expand(value=[1]), ValueError,
         "SLAs are unsupported with mapped tasks"),
    ],
)  # fmt: skip
def test_definition_errors_are_airflows_and_name_the_line(
    build: Any, kind: type[Exception], message: str
) -> None:
    with DAG("d"), pytest.raises(kind) as caught:
        build()
    assert isinstance(caught.value, DagDefinitionError)
    assert message in str(caught.value) and "test_mapping.py:" in str(caught.value)


def test_serialized_mapping_names_literals_and_xcom_chains() -> None:
    with DAG("d") as dag:
        first, second = numbers(), numbers()
        add.expand(x=first.zip(second, fillvalue=0).map(lambda p: p[0]), y=[1, 2])
        add.expand(x=first.concat(second))
        add.expand_kwargs([{"x": 1}, {"x": 2, "y": 3}])
        add(1)
    tasks = serialize_dag(dag).tasks
    assert tasks["add"].mapping == {
        "kind": "dict-of-lists",
        "args": {
            "x": {
                "type": "map",
                "arg": {
                    "type": "zip",
                    "args": [
                        {"type": "xcom", "task_id": "numbers", "key": "return_value"},
                        {"type": "xcom", "task_id": "numbers__1", "key": "return_value"},
                    ],
                    "fillvalue": 0,
                },
                "callables": ["<lambda>"],
            },
            "y": {"type": "literal", "length": 2, "value": [1, 2]},
        },
    }
    assert tasks["add__1"].mapping is not None
    assert tasks["add__1"].mapping["args"]["x"]["type"] == "concat"
    assert tasks["add__2"].mapping == {
        "kind": "list-of-dicts",
        "arg": {"type": "literal", "length": 2, "value": [{"x": 1}, {"x": 2, "y": 3}]},
    }
    assert tasks["add__3"].mapping is None
    assert tasks["numbers"].feeds_mapping and not tasks["add__3"].feeds_mapping


def test_a_dag_without_mapping_keeps_its_serialized_form() -> None:
    with DAG("d") as dag:
        add(numbers())
    data = serialize_dag(dag).to_dict()
    assert all("mapping" not in t and "feeds_mapping" not in t for t in data["dag"]["tasks"])


def _unmap(operator: MappedOperator, index: int, store: InMemoryXComStore) -> Any:
    ti = InMemoryTaskInstance(operator.dag_id, operator.task_id, map_index=index, store=store)
    context = make_context(operator, store=store, ti=ti)
    unmapped, count = operator.unmap(context, index)
    return unmapped, count


def test_unmap_picks_the_cross_product_last_argument_fastest() -> None:
    with DAG("d"):
        mapped = AddOne.partial(task_id="t").expand(value=[1, 2])
        product = add.expand(x=[1, 2], y=[10, 20, 30])
    store = InMemoryXComStore()
    assert [_unmap(mapped, i, store)[0].value for i in range(2)] == [1, 2]
    kwargs = [_unmap(product.operator, i, store)[0].op_kwargs for i in range(6)]
    assert kwargs[:4] == [
        {"x": 1, "y": 10},
        {"x": 1, "y": 20},
        {"x": 1, "y": 30},
        {"x": 2, "y": 10},
    ]
    assert _unmap(product.operator, 0, store)[1] == 6


def test_unmapped_operator_is_built_like_the_file_would_but_joins_nothing() -> None:
    with DAG("d", default_args={"retries": 2}) as dag:
        mapped = BashOperator.partial(task_id="echo").expand(bash_command=["echo 1", "echo 2"])
    unmapped, _ = _unmap(mapped, 1, InMemoryXComStore())
    assert isinstance(unmapped, BashOperator) and unmapped.bash_command == "echo 2"
    assert (unmapped.task_id, unmapped.retries, unmapped.dag) == ("echo", 2, dag)
    assert dag.task_dict["echo"] is mapped


def test_mapped_length_is_checked_like_airflow() -> None:
    assert mapped_length([1, 2], 10) == (2, None)
    assert mapped_length({"a": 1}, 10) == (1, ["a"])
    with pytest.raises(UnmappableXCom, match="did not push XCom for task mapping"):
        mapped_length(None, 10)
    with pytest.raises(UnmappableXCom, match="unmappable return type 'int'"):
        mapped_length(5, 10)
    with pytest.raises(UnmappableXCom, match=r"length: 11 > 10 \(core.max_map_length\)"):
        mapped_length(list(range(11)), 10)


def _results(dag: DAG) -> tuple[str, dict[Any, Any]]:
    outcome, results = inprocess.test_dag(dag, logical_date=START)
    return str(outcome), {k: str(r.state) for k, r in results.items()}


def test_dags_test_expands_zips_concats_and_skips_empty() -> None:
    pulled: dict[str, Any] = {}

    @task
    def keep(name: str, values: Any) -> None:
        pulled[name] = list(values)

    @task
    def empty() -> list[int]:
        return []

    with DAG("d", start_date=START) as dag:
        first, second = numbers(), numbers()
        keep("zip", add.expand(x=first.zip(second).map(lambda p: p[0] * p[1])))
        keep("concat", add.expand(x=first.concat(second)))
        keep("kwargs", add.expand_kwargs([{"x": 1, "y": 2}, {"x": 5}]))
        add.expand(x=empty())
    outcome, states = _results(dag)
    assert outcome == "success"
    assert pulled["zip"] == [1, 4, 9] and pulled["concat"] == [1, 2, 3, 1, 2, 3]
    assert pulled["kwargs"] == [3, 5]
    assert states["add__3"] == "skipped"


def test_mapped_task_groups_run_index_by_index_and_nest() -> None:
    pulled: dict[str, Any] = {}

    @task
    def keep(name: str, values: Any) -> None:
        pulled[name] = list(values)

    @task
    def label(x: int, tag: str) -> str:
        return f"{tag}{x}"

    @task_group
    def pipeline(x: int, factor: int) -> Any:
        return label(add(x, factor), "v")

    @task_group
    def outer(a: int) -> Any:
        @task_group
        def inner(b: str) -> Any:
            return label(add(a, 1), b)

        return inner.expand(b=["p", "q"])

    with DAG("d", start_date=START) as dag:
        keep("flat", pipeline.partial(factor=100).expand(x=numbers()))
        keep("nested", outer.expand(a=[10, 20]))
    serialized = serialize_dag(dag)
    assert serialized.mapped_groups["outer.inner.label"] == ("outer.inner", "outer")
    assert serialized.tasks["pipeline.add"].upstream_task_ids == ("numbers",)
    outcome, states = _results(dag)
    assert outcome == "success"
    assert pulled == {"flat": ["v101", "v102", "v103"], "nested": ["p11", "q11", "p21", "q21"]}
    assert states[("outer.inner.add", 3)] == "success"


def test_mapped_group_definition_errors() -> None:
    @task_group
    def group(x: int) -> None:
        add(x)

    with DAG("d"):
        with pytest.raises(TypeError, match="unexpected keyword arguments 'y'"):
            group.expand(y=[1])
        with pytest.raises(ValueError, match="unexpected type 'int'"):
            group.expand(x=1)

    @task_group
    def holds_mapped(x: int) -> None:
        add.expand(x=[x])

    with DAG("e"), pytest.raises(FeatureNotSupported) as refused:
        holds_mapped.expand(x=[1])
    # Airflow 2.10 refuses it too, with NotImplementedError; the message names the line
    assert isinstance(refused.value, NotImplementedError)
    source = Path(__file__).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if text.endswith("add.expand(x=[x])"))
    assert str(refused.value).startswith(f"{__file__}:{line}: operator expansion in an expanded")
