"""Branching: one branch runs, the others are skipped, and joins still run.

``join`` uses ``none_failed_min_one_success`` and ``report`` uses ``one_success``,
the two usual ways to join after a branch.
"""

from __future__ import annotations

import pendulum

from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, Label, TriggerRule, task

with DAG(
    dag_id="example_branch_operator",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule="@daily",
    tags=["example"],
) as dag:
    run_this_first = EmptyOperator(task_id="run_this_first")

    @task.branch(task_id="branching")
    def choose(options: list[str]) -> str:
        return options[0]

    options = ["branch_a", "branch_b", "branch_c"]
    branching = choose(options)
    run_this_first >> branching

    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    report = EmptyOperator(task_id="report", trigger_rule=TriggerRule.ONE_SUCCESS)
    for option in options:
        chosen = EmptyOperator(task_id=option)
        follow = EmptyOperator(task_id=f"follow_{option}")
        branching >> Label(option) >> chosen >> follow >> [join, report]
