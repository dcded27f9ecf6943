"""Clearing an ExternalTaskMarker from the task page with "Recursive" ticked clears the
task it marks in the other DAG, with its downstream (Airflow's Recursive option)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import T0, Browser

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance

MARKER = {
    "dag_id": "etl",
    "task_id": "transform",
    "execution_date": "{{ logical_date.isoformat() }}",
    "recursion_depth": 10,
}


@pytest.fixture
def marked(seeded: None, factory: SessionFactory) -> None:
    task = SerializedTask(
        task_id="to_etl", operator="ExternalTaskMarker", extra={"external_marker": MARKER}
    )
    dag = SerializedDag(
        dag_id="marked",
        fileloc="/dags/marked.py",
        timetable={"type": "null"},
        schedule=None,
        tasks={"to_etl": task},
    )
    with factory.begin() as session:
        session.add(Dag(dag_id="marked", fileloc=dag.fileloc, is_paused=False))
        session.add(
            SerializedDagRow(
                dag_id="marked", fileloc=dag.fileloc, data=dag.to_json(), fingerprint="f"
            )
        )
        session.add(
            DagRun(
                dag_id="marked",
                run_id="m1",
                logical_date=T0,
                run_type="manual",
                state="success",
                conf={},
                queued_at=T0,
            )
        )
        session.flush()
        session.add(TaskInstance(dag_id="marked", run_id="m1", task_id="to_etl", state="success"))


def test_recursive_clear_reaches_the_marked_dag(
    client: FlaskClient, tokens: dict[str, str], marked: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    page = "/dags/marked/runs/m1/tasks/to_etl"
    assert 'name="recursive"' in user.page(page)
    alone = user.page(f"{page}/clear")
    assert "<li>to_etl</li>" in alone and "etl.transform" not in alone
    confirm = user.page(f"{page}/clear?recursive=1")
    assert "<li>etl.transform</li>" in confirm and "<li>etl.load</li>" in confirm
    assert user.post(f"{page}/clear", {"recursive": "1"}).status_code == 302
    with factory() as session:
        rows = session.execute(
            select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.state)
        )
        states = {(d, t): s for d, t, s in rows}
    assert states[("marked", "to_etl")] == "none"
    assert states[("etl", "transform")] == "none" and states[("etl", "load")] == "none"
    assert states[("etl", "extract")] == "success"
