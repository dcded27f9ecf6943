"""XComs: return values, explicit keys, multiple outputs, bash output and templates.

Every consumer checks what it received, so a wrong XCom fails the task.
"""

from __future__ import annotations

import pendulum

from cluster.operators.bash import BashOperator
from cluster.sdk import DAG, task

VALUE_1 = [1, 2, 3]
VALUE_2 = {"a": "b"}

with DAG(
    "example_xcom",
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
) as dag:

    @task
    def push(ti=None):
        """Push an XCom under an explicit key."""
        ti.xcom_push(key="value from pusher 1", value=VALUE_1)

    @task
    def push_by_returning():
        return VALUE_2

    @task
    def puller(pulled_value_2, ti=None):
        pulled_value_1 = ti.xcom_pull(task_ids="push", key="value from pusher 1")
        if pulled_value_1 != VALUE_1 or pulled_value_2 != VALUE_2:
            raise ValueError(f"got {pulled_value_1!r} and {pulled_value_2!r}")

    @task(multiple_outputs=True)
    def split() -> dict[str, int]:
        return {"left": 1, "right": 2}

    @task
    def add(left: int, right: int) -> int:
        return left + right

    bash_push = BashOperator(
        task_id="bash_push",
        bash_command='echo "bash_push demo" && echo "manually_pushed_value"',
    )
    bash_pull = BashOperator(
        task_id="bash_pull",
        bash_command='test "{{ ti.xcom_pull(task_ids="bash_push") }}" = "manually_pushed_value"'
        ' && test "{{ ti.xcom_pull(task_ids="add") }}" = "3"',
    )

    parts = split()
    total = add(parts["left"], parts["right"])
    push() >> puller(push_by_returning())
    [bash_push, total] >> bash_pull
