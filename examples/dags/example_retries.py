"""Retries: the first try fails, the retry (a few seconds later) succeeds.

A marker file under the temp folder, keyed by run id, remembers the first try.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import timedelta

import pendulum

from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, task

with DAG(
    "example_retries",
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
    tags=["example"],
) as dag:

    @task
    def flaky(run_id=None, ti=None) -> int:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
        marker = os.path.join(tempfile.gettempdir(), f"tradewind_example_retries_{safe}")
        if not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write(f"failed try {ti.try_number}\n")
            raise RuntimeError("first try fails on purpose; the retry will succeed")
        return ti.try_number

    flaky() >> EmptyOperator(task_id="after_retry")
