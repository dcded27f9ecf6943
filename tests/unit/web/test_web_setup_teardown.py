"""Setup and teardown tasks in the UI: an arrow up or down before their names in the
graph and the grid (Airflow's icons), and the setup-to-teardown edge drawn dashed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import T0, Api, Browser

from cluster.dagfiles.serialize import serialize_dag
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG

SVG = "{http://www.w3.org/2000/svg}"


FINISHED_RUN = {"create": "success", "work": "failed", "delete": "success"}


def store_dag(
    factory: SessionFactory, states: dict[str, str] = FINISHED_RUN, run_state: str = "failed"
) -> None:
    with DAG(dag_id="resources", schedule=None) as dag:
        create = EmptyOperator(task_id="create").as_setup()
        with EmptyOperator(task_id="delete").as_teardown(setups=create):
            EmptyOperator(task_id="work")
    with factory.begin() as session:
        session.add(Dag(dag_id="resources", fileloc="/dags/resources.py"))
        data = serialize_dag(dag).to_json()
        session.add(
            SerializedDagRow(
                dag_id="resources", fileloc="/dags/resources.py", data=data, fingerprint="f"
            )
        )
        run = DagRun(
            dag_id="resources",
            run_id="r1",
            logical_date=T0,
            run_type="manual",
            state=run_state,
            conf={},
            queued_at=T0,
        )
        session.add(run)
        session.flush()
        for task_id, state in states.items():
            session.add(
                TaskInstance(
                    dag_id="resources", run_id="r1", task_id=task_id, state=state, try_number=1
                )
            )


def test_the_graph_marks_setups_and_teardowns_and_dashes_their_edge(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    store_dag(factory)
    html = Browser(client, tokens["Viewer"]).page("/dags/resources/graph?run_id=r1")
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    nodes = {
        g.get("data-task-id"): (g.get("class"), "".join(g.itertext()))
        for g in svg.iter(f"{SVG}g")
        if g.get("data-task-id")
    }
    assert nodes["create"][0] == "node state-success setup" and "↑ create" in nodes["create"][1]
    assert nodes["delete"][0] == "node state-success teardown" and "↓ delete" in nodes["delete"][1]
    assert nodes["work"][0] == "node state-failed" and "↑" not in nodes["work"][1]
    edges = {
        (p.get("data-source"), p.get("data-target")): p.get("class")
        for p in svg.iter(f"{SVG}path")
        if p.get("data-source")
    }
    assert edges == {
        ("create", "delete"): "edge setup-teardown",
        ("create", "work"): "edge",
        ("work", "delete"): "edge",
    }


def test_the_grid_marks_setups_and_teardowns(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    store_dag(factory)
    html = Browser(client, tokens["Viewer"]).page("/dags/resources")
    assert 'title="setup task">↑</span> create' in html
    assert 'title="teardown task">↓</span> delete' in html
    assert "</span> work" not in html


def test_marking_a_run_leaves_its_teardowns_to_run(admin: Api, factory: SessionFactory) -> None:
    store_dag(factory, {"create": "success", "work": "running", "delete": "none"}, "running")

    response = admin.patch("/api/v1/dags/resources/dagRuns/r1", json={"state": "success"})

    assert response.status_code == 200
    with factory() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.run_id == "r1")
        ).all()
        run_state = session.scalar(select(DagRun.state).where(DagRun.run_id == "r1"))
    assert dict(rows) == {"create": "success", "work": "success", "delete": "none"}
    assert run_state == "running"  # the scheduler ends it once the teardown ran
