"""Short-circuiting: a false condition skips everything downstream, or (with
``ignore_downstream_trigger_rules=False``) only the direct downstream tasks."""

from __future__ import annotations

import pendulum

from cluster.operators.empty import EmptyOperator
from cluster.operators.python import ShortCircuitOperator
from cluster.sdk import DAG, TriggerRule, chain, task

with DAG(
    dag_id="example_short_circuit",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule=None,
    tags=["example"],
) as dag:

    @task.short_circuit()
    def check_condition(condition: bool) -> bool:
        return condition

    ds_true = [EmptyOperator(task_id=f"true_{i}") for i in [1, 2]]
    ds_false = [EmptyOperator(task_id=f"false_{i}") for i in [1, 2]]
    condition_is_true = check_condition.override(task_id="condition_is_true")(condition=True)
    condition_is_false = check_condition.override(task_id="condition_is_false")(condition=False)
    chain(condition_is_true, *ds_true)
    chain(condition_is_false, *ds_false)

    task_1, task_2, task_3, task_4, task_5, task_6 = [
        EmptyOperator(task_id=f"task_{i}") for i in range(1, 7)
    ]
    task_7 = EmptyOperator(task_id="task_7", trigger_rule=TriggerRule.ALL_DONE)
    short_circuit = ShortCircuitOperator(
        task_id="short_circuit",
        ignore_downstream_trigger_rules=False,
        python_callable=lambda: False,
    )
    chain(task_1, [task_2, short_circuit], [task_3, task_4], [task_5, task_6], task_7)
