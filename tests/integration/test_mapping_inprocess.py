"""Dynamic task mapping end to end: the real scheduler loop, a real supervisor and task
children, SQLite and MariaDB; the fake clock only moves when nothing can run."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from cluster import actions
from cluster.metastore.models import TaskInstance, TaskMap, XCom
from tests.integration.scheduler_harness import InProcessScheduler

MAPPED_DAG = """
from datetime import datetime
from cluster.sdk import DAG, BaseOperator, task, task_group


class AddOne(BaseOperator):
    template_fields = ("value",)

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context):
        return self.value + 1


with DAG("mapped", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def nothing():
        return []

    @task(map_index_template="{{ task.op_kwargs['x'] }}")
    def double(x, factor=2):
        return x * factor

    @task
    def total(values):
        return sum(values)

    @task
    def unreachable(x):
        return x

    @task
    def fails_on_two(x):
        if x == 2:
            raise ValueError("two")
        return x

    @task(trigger_rule="all_done")
    def after_failures(values):
        return list(values)

    @task
    def plus_one(x):
        return x + 1

    @task_group
    def per_item(x):
        return plus_one(plus_one(x))

    total.override(task_id="total_group")(per_item.expand(x=numbers()))
    doubled = double.partial(factor=10).expand(x=numbers())
    total.override(task_id="total_doubled")(doubled)
    classic = AddOne.partial(task_id="classic", map_index_template="v{{ task.value }}").expand(
        value=[5, 6]
    )
    total.override(task_id="total_classic")(classic.output)
    total.override(task_id="total_product")(double.expand(x=[1, 2], factor=[1, 100]))
    unreachable.expand(x=nothing())
    after_failures(fails_on_two.expand(x=[1, 2, 3]))
"""


def _rows(harness: InProcessScheduler, run_id: str) -> dict[tuple[str, int], TaskInstance]:
    with harness.sessions() as session:
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == "mapped", TaskInstance.run_id == run_id
            )
        ).all()
    return {(r.task_id, r.map_index): r for r in rows}


def _value(harness: InProcessScheduler, run_id: str, task_id: str) -> object:
    with harness.sessions() as session:
        text = session.scalar(
            select(XCom.value).where(
                XCom.dag_id == "mapped",
                XCom.run_id == run_id,
                XCom.task_id == task_id,
                XCom.key == "return_value",
            )
        )
    return None if text is None else json.loads(text)


def test_a_mapped_dag_expands_runs_and_reduces(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    (dags_folder / "mapped.py").write_text(MAPPED_DAG)
    inprocess.process_dags()
    inprocess.trigger("mapped", run_id)
    states = inprocess.run_until_finished([("mapped", run_id)])
    # fails_on_two[1] failed, but the leaf after it ran (all_done): the run succeeds, as in Airflow
    assert states == {("mapped", run_id): "success"}
    rows = _rows(inprocess, run_id)
    by_task: dict[str, dict[int, str]] = {}
    for (task_id, map_index), row in rows.items():
        by_task.setdefault(task_id, {})[map_index] = row.state
    assert by_task["double"] == {0: "success", 1: "success", 2: "success"}
    assert by_task["classic"] == {0: "success", 1: "success"}
    assert by_task["double__1"] == {i: "success" for i in range(4)}
    assert by_task["unreachable"] == {-1: "skipped"}
    assert by_task["fails_on_two"] == {0: "success", 1: "failed", 2: "success"}
    assert by_task["after_failures"] == {-1: "success"}
    assert _value(inprocess, run_id, "total_doubled") == 60
    assert _value(inprocess, run_id, "total_classic") == 13
    assert _value(inprocess, run_id, "total_product") == 1 + 100 + 2 + 200
    assert _value(inprocess, run_id, "after_failures") == [1, 3]
    assert by_task["per_item.plus_one__1"] == {0: "success", 1: "success", 2: "success"}
    assert _value(inprocess, run_id, "total_group") == 3 + 4 + 5
    assert [rows[("double", i)].rendered_map_index for i in range(3)] == ["1", "2", "3"]
    assert [rows[("classic", i)].rendered_map_index for i in range(2)] == ["v5", "v6"]
    with inprocess.sessions() as session:
        lengths = dict(session.execute(select(TaskMap.task_id, TaskMap.length)).all())
    assert lengths == {"numbers": 3, "numbers__1": 3, "nothing": 0}


RESIZED_DAG = """
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, task

LENGTH = Path(__file__).with_name("length.txt")

with DAG("resized", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def numbers():
        return list(range(int(LENGTH.read_text())))

    @task
    def double(x):
        return x * 2

    @task(trigger_rule="all_done")
    def total(values):
        return sum(values)

    total(double.expand(x=numbers()))
"""


def test_a_cleared_producer_with_a_new_length_revises_the_mapped_task(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    """Airflow's re-expansion after a clear: fewer values mark the surplus map indexes
    ``removed`` (and the reduce reads only the live ones), more values add instances."""
    (dags_folder / "resized.py").write_text(RESIZED_DAG)
    (dags_folder / "length.txt").write_text("4")
    inprocess.process_dags()
    inprocess.trigger("resized", run_id)
    assert inprocess.run_until_finished([("resized", run_id)]) == {("resized", run_id): "success"}
    for length, expected in [
        (2, {0: "success", 1: "success", 2: "removed", 3: "removed"}),
        (5, {i: "success" for i in range(5)}),
    ]:
        (dags_folder / "length.txt").write_text(str(length))
        with inprocess.sessions.begin() as session:
            actions.clear(
                session, "resized", [run_id], {"numbers", "double", "total"},
                actor=actions.Actor("test"),
            )  # fmt: skip
        states = inprocess.run_until_finished([("resized", run_id)])
        assert states == {("resized", run_id): "success"}
        with inprocess.sessions() as session:
            rows = session.execute(
                select(TaskInstance.map_index, TaskInstance.state).where(
                    TaskInstance.dag_id == "resized", TaskInstance.task_id == "double"
                )
            ).all()
        assert dict(rows) == expected
        assert _resized_total(inprocess, run_id) == sum(2 * i for i in range(length))


def _resized_total(harness: InProcessScheduler, run_id: str) -> object:
    with harness.sessions() as session:
        text = session.scalar(
            select(XCom.value).where(
                XCom.dag_id == "resized", XCom.run_id == run_id, XCom.task_id == "total"
            )
        )
    return None if text is None else json.loads(text)
