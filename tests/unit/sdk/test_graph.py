"""Building DAGs: edges, groups, labels, default_args, and definition errors that
name the DAG file and line."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta

import pendulum
import pytest

from cluster.errors import DagDefinitionError, NotFoundError
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, Label, TaskGroup, TriggerRule, chain, cross_downstream, dag

HERE = __file__


def _line() -> int:
    """The caller's line number, for asserting error locations."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_context_manager_collects_tasks_and_edges() -> None:
    with DAG("d", schedule="@daily", start_date=datetime(2024, 1, 1)) as d:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        c = EmptyOperator(task_id="c")
        a >> [b, c]
    assert d.task_ids == ["a", "b", "c"]
    assert d.get_task("a") is a and d.task_dict["b"] is b
    assert a.downstream_task_ids == {"b", "c"} and c.upstream_task_ids == {"a"}
    assert b.dag is d and d.fileloc == HERE and d.catchup is False
    assert d.schedule == "@daily" and [t.task_id for t in d.roots] == ["a"]
    with pytest.raises(NotFoundError):
        d.get_task("missing")


def test_shift_operators_return_their_right_side() -> None:
    with DAG("d") as d:
        a, b, c = (EmptyOperator(task_id=i) for i in "abc")
        assert (a >> b) is b
        assert (c << b) is b
        assert ([a, b] >> c) is c
    assert d.get_task("c").upstream_task_ids == {"a", "b"}


def test_defaults_match_the_brief() -> None:
    with DAG("d") as d:
        t = EmptyOperator(task_id="t")
    assert (d.max_active_runs, d.max_active_tasks, d.catchup, d.schedule) == (16, 16, False, None)
    assert (t.pool, t.queue, t.retries, t.trigger_rule) == (
        "default_pool",
        "default",
        0,
        "all_success",
    )


def test_default_args_fill_only_missing_arguments() -> None:
    args = {"retries": 3, "retry_delay": timedelta(seconds=7), "pool": "p", "unknown_key": 1}
    with DAG("d", default_args=args):
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", retries=1)
    assert (a.retries, a.retry_delay, a.pool) == (3, timedelta(seconds=7), "p")
    assert b.retries == 1


def test_pendulum_start_date_becomes_stdlib_with_zone() -> None:
    start = pendulum.datetime(2024, 3, 1, tz="Europe/Amsterdam")
    with DAG("d", start_date=start, schedule="0 6 * * *") as d:
        pass
    assert type(d.start_date) is datetime
    assert d.start_date == start and d.timezone_name == "Europe/Amsterdam"


def test_naive_start_date_is_utc() -> None:
    d = DAG("d", start_date=datetime(2024, 1, 1))
    assert d.start_date is not None and d.start_date.utcoffset() == timedelta(0)


def test_schedule_interval_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning):
        d = DAG("d", schedule_interval="@hourly")
    assert d.schedule == "@hourly" and d.timetable.summary is not None


def test_bad_schedule_names_file_and_line() -> None:
    with pytest.raises(DagDefinitionError) as info:
        expected = _line() + 1
        DAG("d", schedule="not a cron")
    assert f"{HERE}:{expected}: DAG 'd': bad schedule" in str(info.value)


def test_cycle_is_detected_when_the_dag_block_ends() -> None:
    with pytest.raises(DagDefinitionError) as info:
        expected = _line() + 1
        with DAG("cyclic"):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b >> a
    assert f"{HERE}:{expected}: Cycle detected in DAG 'cyclic': a >> b >> a" in str(info.value)


def test_validate_finds_cycles_made_after_the_block() -> None:
    with DAG("d") as d:
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        a >> b
    b >> a
    with pytest.raises(DagDefinitionError, match="Cycle detected"):
        d.validate()


def test_duplicate_task_id_names_the_second_definition() -> None:
    with pytest.raises(DagDefinitionError) as info, DAG("d"):
        EmptyOperator(task_id="a")
        expected = _line() + 1
        EmptyOperator(task_id="a")
    assert f"{HERE}:{expected}: Task id 'a' has already been added" in str(info.value)


def test_unknown_trigger_rule() -> None:
    with pytest.raises(DagDefinitionError) as info, DAG("d"):
        expected = _line() + 1
        EmptyOperator(task_id="a", trigger_rule="sometimes")
    assert f"{HERE}:{expected}: The trigger_rule must be one of" in str(info.value)


def test_every_airflow_trigger_rule_is_accepted() -> None:
    rules = ["all_success", "all_failed", "all_done", "all_done_min_one_success", "all_skipped",
             "one_success", "one_failed", "one_done", "none_failed",
             "none_failed_min_one_success", "none_skipped", "always"]  # fmt: skip
    with DAG("d"):
        tasks = [EmptyOperator(task_id=r, trigger_rule=r) for r in rules]
    assert [t.trigger_rule for t in tasks] == rules


def test_relationships_without_any_dag() -> None:
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    with pytest.raises(DagDefinitionError, match="don't have DAGs yet"):
        a >> b


def test_task_without_dag_joins_the_other_tasks_dag() -> None:
    with DAG("d") as d:
        a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b
    assert b.dag is d and d.task_ids == ["a", "b"]


@pytest.mark.parametrize("bad", ["has space", "x" * 251, "sl/ash"])
def test_ids_are_checked_like_airflow(bad: str) -> None:
    with pytest.raises(DagDefinitionError, match="dag_id"):
        DAG(bad)
    with pytest.raises(DagDefinitionError, match="task_id"):
        EmptyOperator(task_id=bad)


def test_unknown_operator_arguments_are_rejected() -> None:
    with pytest.raises(DagDefinitionError, match="Invalid arguments were passed"):
        EmptyOperator(task_id="a", not_an_argument=1)


def test_chain_pairs_equal_lists() -> None:
    with DAG("d") as d:
        t = {i: EmptyOperator(task_id=f"t{i}") for i in range(1, 7)}
        chain(t[1], [t[2], t[3]], [t[4], t[5]], t[6])
    edges = sorted((u.task_id, dn) for u in d.tasks for dn in u.downstream_task_ids)
    assert edges == [
        ("t1", "t2"),
        ("t1", "t3"),
        ("t2", "t4"),
        ("t3", "t5"),
        ("t4", "t6"),
        ("t5", "t6"),
    ]


def test_chain_rejects_unequal_lists() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=i) for i in "abc")
        with pytest.raises(ValueError, match="different length"):
            chain([a, b], [c])


def test_cross_downstream() -> None:
    with DAG("d"):
        a, b, c, e = (EmptyOperator(task_id=i) for i in "abce")
        cross_downstream([a, b], [c, e])
    assert c.upstream_task_ids == {"a", "b"} and e.upstream_task_ids == {"a", "b"}


def test_labels_on_edges_in_both_directions() -> None:
    with DAG("d") as d:
        a, b, c, e = (EmptyOperator(task_id=i) for i in "abce")
        a >> Label("yes") >> [b, c]
        e << Label("back") << b
    assert d.edge_info == {("a", "b"): "yes", ("a", "c"): "yes", ("b", "e"): "back"}
    assert b.upstream_task_ids == {"a"} and e.upstream_task_ids == {"b"}


def test_task_group_prefixes_ids_and_wires_roots_and_leaves() -> None:
    with DAG("d") as d:
        start = EmptyOperator(task_id="start")
        with TaskGroup("g1") as g1:
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            with TaskGroup("inner") as inner:
                c = EmptyOperator(task_id="c")
            a >> [b, c]
        with TaskGroup("g2", prefix_group_id=False) as g2:
            x = EmptyOperator(task_id="x")
            y = EmptyOperator(task_id="y")
        end = EmptyOperator(task_id="end")
        start >> g1 >> g2 >> end
    assert (a.task_id, c.task_id, inner.group_id, x.task_id) == (
        "g1.a",
        "g1.inner.c",
        "g1.inner",
        "x",
    )
    assert start.downstream_task_ids == {"g1.a"}
    assert x.upstream_task_ids == {"g1.b", "g1.inner.c"} == y.upstream_task_ids
    assert end.upstream_task_ids == {"x", "y"}
    assert set(d.task_group_dict) == {"g1", "g1.inner", "g2"} and b.task_group is g1
    assert g2.roots == [x, y]


def test_duplicate_group_id() -> None:
    with pytest.raises(DagDefinitionError, match="group_id 'g' has already been added"), DAG("d"):
        TaskGroup("g")
        TaskGroup("g")


def test_group_default_args_override_dag_default_args() -> None:
    with (
        DAG("d", default_args={"retries": 1, "queue": "q1"}),
        TaskGroup("g", default_args={"retries": 5}),
    ):
        t = EmptyOperator(task_id="t")
    assert (t.retries, t.queue) == (5, "q1")


def test_dag_decorator_builds_params_and_doc() -> None:
    @dag(schedule=None, start_date=datetime(2024, 1, 1), tags=["x"])
    def my_pipeline(limit: int = 10):
        """Docs of my pipeline."""
        EmptyOperator(task_id="only")

    built = my_pipeline()
    again = my_pipeline(limit=3)
    assert built.dag_id == "my_pipeline" and built.task_ids == ["only"]
    assert built.params["limit"] == 10 and again.params["limit"] == 3
    assert built.doc_md == "Docs of my pipeline." and built.tags == ["x"]
    assert built.fileloc == HERE


def test_upstream_list_and_flat_relatives() -> None:
    with DAG("d"):
        a, b, c = (EmptyOperator(task_id=i) for i in "abc")
        a >> b >> c
    assert a.get_flat_relative_ids(upstream=False) == {"b", "c"}
    assert [t.task_id for t in c.upstream_list] == ["b"]
    assert TriggerRule.is_valid("one_done") and not TriggerRule.is_valid("nope")
