"""The scheduler's view of a DAG: a task that names no queue runs on the cluster's default."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialize import serialize_dag
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.operators.empty import EmptyOperator
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.dagruns import step_active_runs
from cluster.sdk import DAG

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_instances_of_tasks_without_a_queue_go_to_the_configured_default_queue(
    session_factory: sessionmaker[Session],
) -> None:
    with DAG("routed", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        plain = EmptyOperator(task_id="plain")
        EmptyOperator(task_id="heavy", queue="heavy")
        EmptyOperator(task_id="named", queue="default")  # chosen: stays on "default"
    assert plain.queue == "default"  # what Airflow users' DAG tests read
    serialized = serialize_dag(dag)
    assert serialized.tasks["plain"].queue is None  # the stored form leaves it unset
    with session_factory.begin() as session:
        fingerprint = serialized.fingerprint()
        session.add(Dag(dag_id="routed", fileloc="/dev/null", fingerprint=fingerprint))
        session.add(
            SerializedDagRow(
                dag_id="routed", fileloc="/dev/null", data=serialized.to_json(),
                fingerprint=fingerprint,
            )
        )  # fmt: skip
        session.execute(
            insert(DagRun).values(
                dag_id="routed", run_id="r", run_type="manual", state="queued", conf={},
                logical_date=NOW,
            )
        )  # fmt: skip
    dags = DagCache(default_queue="main")
    with session_factory.begin() as session:
        step_active_runs(session, dags, now=NOW)
    with session_factory() as session:
        queues = dict(session.execute(select(TaskInstance.task_id, TaskInstance.queue)).all())
    assert queues == {"plain": "main", "heavy": "heavy", "named": "default"}
    assert dags.fingerprint("routed") == fingerprint  # the version workers check is unchanged
