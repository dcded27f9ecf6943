"""TaskFlow: ``@task`` calls build tasks and edges; values travel as XComs."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import TaskSkipped
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, XComArg, get_current_context, task, task_group
from cluster.sdk.context import NoTaskContext
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryTaskInstance, InMemoryXComStore, make_context
from cluster.sensors.base import PokeReturnValue


def run(op: Any, store: InMemoryXComStore) -> Any:
    return execute_task(op, make_context(op, store=store))


def test_calls_build_edges_and_unique_ids() -> None:
    @task
    def f(x: int) -> int:
        return x + 1

    with DAG("d") as d:
        first = f(1)
        second = f(first)
        third = f.override(task_id="custom", retries=4)(second)
    assert isinstance(first, XComArg)
    assert d.task_ids == ["f", "f__1", "custom"]
    assert d.get_task("f__1").upstream_task_ids == {"f"}
    assert third.operator.retries == 4 and third.operator.upstream_task_ids == {"f__1"}


def test_return_values_flow_through_xcom() -> None:
    @task
    def produce() -> int:
        return 20

    @task
    def consume(value: int, extra: int) -> int:
        return value + extra

    with DAG("d"):
        out = consume(produce(), extra=1)
    store = InMemoryXComStore()
    run(out.operator.dag.get_task("produce"), store)
    assert run(out.operator, store) == 21
    assert store.get("d", "manual__test", "consume", -1, "return_value") == 21


def test_multiple_outputs_pushes_each_key_and_subscript_selects() -> None:
    @task
    def split() -> dict[str, int]:
        return {"a": 1, "b": 2}

    @task
    def pick(value: int) -> int:
        return value

    with DAG("d"):
        parts = split()
        picked = pick(parts["b"])
    assert parts.operator.multiple_outputs is True
    store = InMemoryXComStore()
    run(parts.operator, store)
    assert store.get("d", "manual__test", "split", -1, "a") == 1
    assert run(picked.operator, store) == 2


def test_multiple_outputs_requires_a_dict() -> None:
    @task(multiple_outputs=True)
    def bad() -> Any:
        return [1]

    with DAG("d"):
        out = bad()
    with pytest.raises(TypeError, match="expected dictionary"):
        run(out.operator, InMemoryXComStore())


def test_context_is_injected_by_name_and_current_context_works() -> None:
    seen: dict[str, Any] = {}

    @task
    def look(ti=None, ds=None) -> None:
        seen["ti"], seen["ds"] = ti, ds
        seen["current"] = get_current_context()["task"].task_id

    with DAG("d"):
        out = look()
    context = make_context(out.operator)
    execute_task(out.operator, context)
    assert seen == {"ti": context["ti"], "ds": context["ds"], "current": "look"}
    with pytest.raises(NoTaskContext):
        get_current_context()


def test_missing_argument_fails_at_definition() -> None:
    @task
    def needs(x: int) -> int:
        return x

    with DAG("d"), pytest.raises(TypeError):
        needs()


def test_bash_decorator_runs_the_returned_command() -> None:
    @task.bash
    def hello(name: str) -> str:
        return "echo hello " + name + " {{ ds }}"

    with DAG("d"):
        out = hello("world")
    context = make_context(out.operator)
    assert execute_task(out.operator, context) == f"hello world {context['ds']}"


def test_branch_decorator_skips_other_paths() -> None:
    @task.branch
    def choose() -> str:
        return "left"

    with DAG("d"):
        chosen = choose()
        left, right = EmptyOperator(task_id="left"), EmptyOperator(task_id="right")
        chosen >> [left, right]
    context = make_context(chosen.operator)
    execute_task(chosen.operator, context)
    assert context["ti"].skipped == ["right"]


def test_short_circuit_decorator_skips_descendants() -> None:
    @task.short_circuit
    def gate() -> bool:
        return False

    with DAG("d"):
        g = gate()
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        g >> a >> b
    context = make_context(g.operator)
    execute_task(g.operator, context)
    assert context["ti"].skipped == ["a", "b"]


def test_sensor_decorator_returns_poke_value() -> None:
    calls: list[int] = []

    @task.sensor(poke_interval=5, timeout=100)
    def ready() -> PokeReturnValue:
        calls.append(1)
        return PokeReturnValue(len(calls) >= 2, xcom_value="v")

    with DAG("d"):
        out = ready()
    sleeps: list[float] = []
    out.operator._sleep = sleeps.append
    assert out.operator.custom_operator_name == "@task.sensor"
    assert execute_task(out.operator, make_context(out.operator)) == "v"
    assert sleeps == [5.0]


def test_task_group_decorator_prefixes_and_suffixes() -> None:
    @task
    def step(x: int) -> int:
        return x

    @task_group
    def section(x: int):
        return step(step(x))

    with DAG("d") as d:
        one = section(1)
        two = section(2)
        one >> two
    assert d.task_ids == [
        "section.step",
        "section.step__1",
        "section__1.step",
        "section__1.step__1",
    ]
    # like Airflow, a group function's return value stands for the group in ``>>``
    assert d.get_task("section__1.step__1").upstream_task_ids == {
        "section.step__1",
        "section__1.step",
    }
    assert set(d.task_group_dict) == {"section", "section__1"}


def test_skip_exception_propagates() -> None:
    @task
    def skipper() -> None:
        raise TaskSkipped("nothing to do")

    with DAG("d"):
        out = skipper()
    with pytest.raises(TaskSkipped):
        run(out.operator, InMemoryXComStore())


def test_xcom_pull_semantics() -> None:
    store = InMemoryXComStore()
    ti = InMemoryTaskInstance("d", "t", store=store)
    InMemoryTaskInstance("d", "a", store=store).xcom_push("return_value", 1)
    InMemoryTaskInstance("d", "b", store=store).xcom_push("return_value", 2)
    ti.xcom_push("k", "mine")
    assert ti.xcom_pull(task_ids="a") == 1
    assert ti.xcom_pull(task_ids=["a", "b", "missing"]) == [1, 2]
    assert ti.xcom_pull(key="k") == "mine"
    assert ti.xcom_pull(task_ids="missing", default="d") == "d"
