"""Trigger rules after a failure: ``upstream_failed`` spreads down ``all_success`` edges,
while ``all_done``, ``one_failed``, ``all_failed``, ``none_failed`` and ``always`` run.

The DAG run itself ends ``failed`` (``fail`` and ``after_fail`` are leaves that failed).
"""

from __future__ import annotations

import pendulum

from cluster.operators.bash import BashOperator
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, TriggerRule

with DAG(
    dag_id="example_trigger_rules",
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    schedule=None,
    default_args={"retries": 0},
    tags=["example"],
) as dag:
    ok = EmptyOperator(task_id="ok")
    fail = BashOperator(task_id="fail", bash_command="echo failing on purpose; exit 1")
    after_fail = EmptyOperator(task_id="after_fail")
    after_after_fail = EmptyOperator(task_id="after_after_fail")
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule=TriggerRule.ALL_DONE)
    alert = EmptyOperator(task_id="alert", trigger_rule=TriggerRule.ONE_FAILED)
    all_failed = EmptyOperator(task_id="all_failed", trigger_rule=TriggerRule.ALL_FAILED)
    none_failed = EmptyOperator(task_id="none_failed", trigger_rule=TriggerRule.NONE_FAILED)
    one_success = EmptyOperator(task_id="one_success", trigger_rule=TriggerRule.ONE_SUCCESS)
    always = EmptyOperator(task_id="always", trigger_rule=TriggerRule.ALWAYS)

    fail >> after_fail >> after_after_fail
    [ok, fail] >> cleanup
    [ok, fail] >> alert
    [ok, fail] >> one_success
    fail >> all_failed
    ok >> none_failed
    after_fail >> always
