"""Setup and teardown tasks as DAG files write them: ``as_setup``, ``as_teardown``,
``@setup``, ``@teardown`` and the ``with`` form, giving the edges and flags Airflow 2.10
gives (the edge lists below are what Airflow reported for the same code)."""

from __future__ import annotations

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagDefinitionError
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, TaskGroup, TriggerRule, setup, task, task_group, teardown


def edges(dag: DAG) -> list[tuple[str, str]]:
    return sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)


def test_as_setup_and_as_teardown_mark_link_and_set_the_trigger_rule() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        work = EmptyOperator(task_id="work")
        delete = EmptyOperator(task_id="delete").as_teardown(setups=create)
        create >> work >> delete
    assert create.is_setup and not create.is_teardown
    assert delete.is_teardown and delete.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert not delete.on_failure_fail_dagrun
    assert not work.is_setup and not work.is_teardown
    assert edges(dag) == [("create", "delete"), ("create", "work"), ("work", "delete")]


def test_as_teardown_marks_its_setups_and_takes_on_failure_fail_dagrun() -> None:
    with DAG("d") as dag:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        down = EmptyOperator(task_id="down").as_teardown(setups=[a, b], on_failure_fail_dagrun=True)
    assert a.is_setup and b.is_setup and down.on_failure_fail_dagrun
    assert edges(dag) == [("a", "down"), ("b", "down")]


def test_a_task_is_never_both_and_only_a_teardown_fails_the_run() -> None:
    with DAG("d"):
        both = EmptyOperator(task_id="both").as_setup()
        with pytest.raises(DagDefinitionError, match="already a setup"):
            both.as_teardown()
        plain = EmptyOperator(task_id="plain")
        with pytest.raises(DagDefinitionError, match="not a teardown task"):
            plain.on_failure_fail_dagrun = True


def test_decorators_mark_taskflow_tasks() -> None:
    @setup
    def create() -> str:
        return "cluster-1"

    @teardown
    def delete(cluster_id: str) -> None: ...

    @teardown(on_failure_fail_dagrun=True)
    def strict_delete(cluster_id: str) -> None: ...

    with DAG("d") as dag:
        made = create()
        gone = delete(made)
        strict = strict_delete.override(task_id="strict")(made)
    assert made.is_setup and made.operator.trigger_rule == TriggerRule.ALL_SUCCESS
    assert gone.is_teardown and not gone.on_failure_fail_dagrun
    assert gone.operator.trigger_rule == TriggerRule.ALL_DONE_SETUP_SUCCESS
    assert strict.is_teardown and strict.on_failure_fail_dagrun
    assert edges(dag) == [("create", "delete"), ("create", "strict")]


def test_a_teardown_trigger_rule_cannot_be_chosen() -> None:
    @teardown
    def delete() -> None: ...

    with DAG("d"), pytest.raises(DagDefinitionError, match="Trigger rule not configurable"):
        delete.override(trigger_rule="all_success")()


def test_setup_over_a_task_flavour_and_not_over_a_task_group() -> None:
    @setup
    @task.bash
    def start() -> str:
        return "echo start"

    with DAG("d"):
        assert start().is_setup

    @task_group
    def group() -> None: ...

    with pytest.raises(DagDefinitionError, match="@setup applies to a function or a @task"):
        setup(group)


def test_xcomarg_as_setup_and_as_teardown() -> None:
    @task
    def step() -> None: ...

    with DAG("d") as dag:
        first, second, third = step(), step(), step()
        first >> second >> third.as_teardown(setups=first)
    assert first.is_setup and third.is_teardown
    assert edges(dag) == [("step", "step__1"), ("step", "step__2"), ("step__1", "step__2")]


def test_the_with_form_puts_the_block_between_setup_and_teardown() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create")
        delete = EmptyOperator(task_id="delete")
        with delete.as_teardown(setups=create):
            first = EmptyOperator(task_id="first")
            first >> EmptyOperator(task_id="second")
            EmptyOperator(task_id="alone")
    assert edges(dag) == [
        ("alone", "delete"),
        ("create", "alone"),
        ("create", "delete"),
        ("create", "first"),
        ("first", "second"),
        ("second", "delete"),
    ]


def test_the_with_form_on_a_setup_finds_its_teardown() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        EmptyOperator(task_id="delete").as_teardown(setups=create)
        with create:
            EmptyOperator(task_id="work")
    assert edges(dag) == [("create", "delete"), ("create", "work"), ("work", "delete")]


def test_nested_with_blocks_chain_setups_and_teardowns() -> None:
    with DAG("d") as dag:
        outer_s = EmptyOperator(task_id="outer_s").as_setup()
        outer_t = EmptyOperator(task_id="outer_t").as_teardown()
        with outer_s >> outer_t:
            inner_s = EmptyOperator(task_id="inner_s").as_setup()
            inner_t = EmptyOperator(task_id="inner_t").as_teardown()
            with inner_s >> inner_t:
                EmptyOperator(task_id="work")
    assert edges(dag) == [
        ("inner_s", "inner_t"),
        ("inner_s", "work"),
        ("inner_t", "outer_t"),
        ("outer_s", "inner_s"),
        ("outer_s", "outer_t"),
        ("work", "inner_t"),
    ]


def test_only_setups_and_teardowns_open_a_with_block() -> None:
    with DAG("d"):
        plain = EmptyOperator(task_id="plain")
        with pytest.raises(DagDefinitionError, match="Only setup/teardown tasks"), plain:
            pass


def test_taskflow_example_has_airflows_edges() -> None:
    """``example_setup_teardown_taskflow.py`` from Airflow 2.10.5, condensed."""

    @task
    def outer_work() -> None: ...

    @setup
    def outer_setup() -> str:
        return "some cluster id"

    @teardown
    def outer_teardown(cluster_id: str) -> None: ...

    @task_group
    def section_1() -> None:
        @setup
        def inner_setup() -> str:
            return "some_cluster_id"

        @task
        def inner_work(cluster_id: str) -> None: ...

        @teardown
        def inner_teardown(cluster_id: str) -> None: ...

        made = inner_setup()
        inner_work(made) >> inner_teardown(made)

    with DAG("d") as dag, outer_teardown(outer_setup()):
        outer_work()
        section_1()
    assert edges(dag) == [
        ("outer_setup", "outer_teardown"),
        ("outer_setup", "outer_work"),
        ("outer_work", "outer_teardown"),
        ("section_1.inner_setup", "section_1.inner_teardown"),
        ("section_1.inner_setup", "section_1.inner_work"),
        ("section_1.inner_work", "section_1.inner_teardown"),
    ]


def test_a_group_is_left_from_its_work_not_its_teardown() -> None:
    with DAG("d") as dag:
        with TaskGroup("g") as group:
            create = EmptyOperator(task_id="create").as_setup()
            work = EmptyOperator(task_id="work")
            delete = EmptyOperator(task_id="delete").as_teardown(setups=create)
            create >> work >> delete
        group >> EmptyOperator(task_id="after")
    assert [t.task_id for t in group.leaves] == ["g.work"]
    assert dag.get_task("after").upstream_task_ids == {"g.work"}


def test_a_setups_work_keeps_all_success() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        create >> EmptyOperator(task_id="work", trigger_rule="all_done")
    with pytest.raises(DagDefinitionError, match="followed with trigger rule ALL_SUCCESS"):
        dag.validate()


def test_flags_survive_serialization_and_plain_tasks_do_not_carry_them() -> None:
    with DAG("d") as dag:
        create = EmptyOperator(task_id="create").as_setup()
        plain = EmptyOperator(task_id="plain")
        (
            create
            >> plain
            >> EmptyOperator(task_id="delete").as_teardown(
                setups=create, on_failure_fail_dagrun=True
            )
        )
    serialized = serialize_dag(dag)
    again = SerializedDag.from_json(serialized.to_json())
    assert again == serialized
    assert again.tasks["create"].is_setup and again.tasks["delete"].is_teardown
    assert again.tasks["delete"].on_failure_fail_dagrun
    plain_json = [t for t in serialized.to_dict()["dag"]["tasks"] if t["task_id"] == "plain"]
    assert not {"is_setup", "is_teardown", "on_failure_fail_dagrun"} & set(plain_json[0])
