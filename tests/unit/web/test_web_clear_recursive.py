"""Cross-DAG in the UI. Clearing an ExternalTaskMarker with "Recursive" ticked clears the
task it marks in the other DAG, with its downstream (Airflow's Recursive option); the run
page lists the run's DAG-level callbacks and their outcome."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import T0, Browser

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import (
    CallbackRequest,
    Dag,
    DagRun,
    SerializedDagRow,
    TaskInstance,
    XCom,
)

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


def test_the_run_page_shows_its_dag_callbacks(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    viewer = Browser(client, tokens["Viewer"])
    assert "DAG callbacks" not in viewer.page("/dags/etl/runs/run1")
    with factory.begin() as session:
        session.add(
            CallbackRequest(
                dag_id="etl",
                run_id="run1",
                kind="on_failure_callback",
                reason="task_failure",
                state="failed",
                created_at=T0,
                claimed_by="master1:42",
                message="RuntimeError: the pager is down",
            )
        )
    page = viewer.page("/dags/etl/runs/run1")
    assert "DAG callbacks" in page and "on_failure_callback" in page
    assert "task_failure" in page and "RuntimeError: the pager is down" in page


def test_a_trigger_try_links_to_the_run_it_triggered(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        row = session.scalar(
            select(TaskInstance).where(TaskInstance.dag_id == "etl", TaskInstance.task_id == "load")
        )
        assert row is not None
        row.rendered_fields = {"trigger_dag_id": "other"}
        session.add(
            XCom(dag_id="etl", run_id="run1", task_id="load", key="trigger_run_id", value='"t1"')
        )
    page = Browser(client, tokens["Viewer"]).page("/dags/etl/runs/run1/tasks/load")
    assert 'class="triggered-run" href="/dags/other/runs/t1"' in page
