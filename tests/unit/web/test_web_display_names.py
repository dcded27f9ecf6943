"""``dag_display_name`` and ``task_display_name`` are kept in the serialized DAG and shown
where the DAG and task ids are: the DAG page's heading, the grid's rows, the task page."""

from __future__ import annotations

import dataclasses

from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import Browser

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import SerializedDagRow
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, task


def test_display_names_are_serialized_and_plain_dags_keep_their_fingerprint() -> None:
    with DAG("named", dag_display_name="Sample DAG with Display Name") as dag:
        EmptyOperator(task_id="sample_task_1", task_display_name="Sample Task 1")

        @task(task_display_name="Sample Task 2")
        def sample_task_2() -> None:
            pass

        sample_task_2()
    serialized = SerializedDag.from_json(serialize_dag(dag).to_json())
    assert serialized.display_name == "Sample DAG with Display Name"
    assert serialized.task_display_name("sample_task_1") == "Sample Task 1"
    assert serialized.task_display_name("sample_task_2") == "Sample Task 2"
    assert dag.get_task("sample_task_1").task_display_name == "Sample Task 1"
    with DAG("plain") as plain:
        op = EmptyOperator(task_id="t")
    assert op.task_display_name == "t"
    assert "display_name" not in serialize_dag(plain).to_dict()["dag"]


def test_the_dag_and_task_pages_show_display_names(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        row = session.scalars(
            select(SerializedDagRow).where(SerializedDagRow.dag_id == "etl")
        ).one()
        dag = SerializedDag.from_json(row.data)
        tasks = dict(dag.tasks)
        tasks["transform"] = dataclasses.replace(
            tasks["transform"], extra={**tasks["transform"].extra, "display_name": "Transform rows"}
        )
        row.data = dataclasses.replace(dag, tasks=tasks, display_name="Nightly ETL").to_json()
    browser = Browser(client, tokens["Viewer"])
    grid = browser.page("/dags/etl")
    assert "<h1>Nightly ETL " in grid
    assert '<th class="task depth-0" scope="row" title="transform">Transform rows</th>' in grid
    assert '<th class="task depth-0" scope="row">extract</th>' in grid
    page = browser.page("/dags/etl/runs/run1/tasks/transform")
    assert "<h1>Transform rows <small>transform</small>" in page
