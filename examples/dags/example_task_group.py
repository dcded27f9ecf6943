"""Task groups: nested groups, a decorated group, and edges between whole groups."""

from __future__ import annotations

import pendulum

from cluster.operators.bash import BashOperator
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, TaskGroup, task, task_group

with DAG(
    dag_id="example_task_group",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule=None,
    tags=["example"],
) as dag:
    start = EmptyOperator(task_id="start")

    with TaskGroup("section_1", tooltip="Tasks for section_1") as section_1:
        task_1 = EmptyOperator(task_id="task_1")
        task_2 = BashOperator(task_id="task_2", bash_command="echo 1")
        task_3 = EmptyOperator(task_id="task_3")
        task_1 >> [task_2, task_3]

    with TaskGroup("section_2", tooltip="Tasks for section_2") as section_2:
        task_1 = EmptyOperator(task_id="task_1")
        with TaskGroup("inner_section_2", tooltip="Tasks for inner_section2") as inner_section_2:
            task_2 = BashOperator(task_id="task_2", bash_command="echo 1")
            task_3 = EmptyOperator(task_id="task_3")
            task_4 = EmptyOperator(task_id="task_4")
            [task_2, task_3] >> task_4

    @task
    def add_one(value: int) -> int:
        return value + 1

    @task_group
    def increments(value: int):
        """Two increments in a row."""
        return add_one(add_one(value))

    @task
    def check(value: int) -> None:
        if value != 3:
            raise ValueError(f"expected 3, got {value}")

    end = EmptyOperator(task_id="end")
    start >> section_1 >> section_2 >> end
    section_2 >> check(increments(1)) >> end
