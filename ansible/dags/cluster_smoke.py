"""A DAG that proves a deployed cluster works end to end.

Triggered through HAProxy, its tasks travel through RabbitMQ to a worker, which
records them in the metastore: a successful run means every node type did its job.
"""

from __future__ import annotations

import socket

from cluster.operators.bash import BashOperator
from cluster.sdk import DAG, task

with DAG(dag_id="cluster_smoke", schedule=None, catchup=False, tags=["smoke"]) as dag:
    hello = BashOperator(task_id="hello", bash_command="echo hello from $(hostname)")

    @task
    def where() -> str:
        return socket.gethostname()

    hello >> where()
