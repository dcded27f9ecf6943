"""Params with defaults and JSON-schema checks, read in templates and in Python.

Trigger with conf such as ``{"x": 7}`` to override; ``{"x": -1}`` is refused.
"""

from __future__ import annotations

import pendulum

from cluster.operators.bash import BashOperator
from cluster.sdk import DAG, Param, task

with DAG(
    "example_params",
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "x": Param(5, type="integer", minimum=0, description="how many"),
        "name": Param("world", type="string", minLength=1),
        "mode": Param("fast", enum=["fast", "slow"]),
        "flag": Param(False, type="boolean"),
    },
    tags=["example", "params"],
) as dag:
    greet = BashOperator(
        task_id="greet",
        bash_command='echo "hello {{ params.name }} x={{ params.x }} mode={{ params.mode }}"',
    )

    @task
    def check_params(params=None) -> int:
        if not isinstance(params["x"], int) or params["mode"] not in ("fast", "slow"):
            raise ValueError(f"unexpected params {params!r}")
        return params["x"] * 2

    greet >> check_params()
