"""Mapped task instances in the REST API (Airflow 2.10's ``listMapped`` and
``{task_id}/{map_index}``) and the UI (one grid cell with the count; the task page
lists the instances with their rendered names)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import T0, Api, Browser

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance

TASK = "/api/v1/dags/mapped/dagRuns/r1/taskInstances"
STATES = ["success", "failed", "success"]


def mapped_dag() -> SerializedDag:
    literal = {"type": "literal", "length": 3, "value": [1, 2, 3]}
    tasks = {
        "m": SerializedTask(
            task_id="m",
            operator="PythonOperator",
            downstream_task_ids=("after",),
            mapping={"kind": "dict-of-lists", "args": {"x": literal}},
        ),
        "after": SerializedTask(
            task_id="after", operator="PythonOperator", upstream_task_ids=("m",)
        ),
    }
    return SerializedDag(
        dag_id="mapped",
        fileloc="/dags/mapped.py",
        timetable={"type": "null"},
        schedule=None,
        tasks=tasks,
    )


@pytest.fixture
def mapped(factory: SessionFactory, seeded: None) -> Iterator[None]:
    dag = mapped_dag()
    with factory.begin() as session:
        session.add(Dag(dag_id="mapped", fileloc=dag.fileloc, is_paused=False))
        session.add(
            SerializedDagRow(
                dag_id="mapped",
                fileloc=dag.fileloc,
                data=dag.to_json(),
                fingerprint=dag.fingerprint(),
            )
        )
        session.add(
            DagRun(dag_id="mapped", run_id="r1", logical_date=T0, run_type="manual",
                   state="failed", conf={}, queued_at=T0)
        )  # fmt: skip
        session.flush()
        for i, state in enumerate(STATES):
            session.add(
                TaskInstance(dag_id="mapped", run_id="r1", task_id="m", map_index=i, state=state,
                             try_number=1, rendered_map_index=f"item {i + 1}")
            )  # fmt: skip
        session.add(
            TaskInstance(dag_id="mapped", run_id="r1", task_id="after", state="upstream_failed")
        )
    yield


def test_list_mapped_gives_the_instances_in_order_with_filters(admin: Api, mapped: None) -> None:
    response = admin.get(f"{TASK}/m/listMapped")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["total_entries"] == 3
    assert [(t["map_index"], t["state"]) for t in body["task_instances"]] == list(enumerate(STATES))
    assert [t["rendered_map_index"] for t in body["task_instances"]] == [
        "item 1",
        "item 2",
        "item 3",
    ]
    failed = admin.get(f"{TASK}/m/listMapped?state=failed").get_json()
    assert [t["map_index"] for t in failed["task_instances"]] == [1]
    page = admin.get(f"{TASK}/m/listMapped?limit=1&offset=2").get_json()
    assert [t["map_index"] for t in page["task_instances"]] == [2] and page["total_entries"] == 3


def test_one_mapped_instance_and_404s(admin: Api, mapped: None) -> None:
    one = admin.get(f"{TASK}/m/1").get_json()
    assert (one["map_index"], one["state"], one["rendered_map_index"]) == (1, "failed", "item 2")
    assert admin.get(f"{TASK}/m/7").status_code == 404
    assert admin.get(f"{TASK}/after/listMapped").status_code == 404
    assert admin.get(f"{TASK}/nope/listMapped").status_code == 404
    plain = admin.get(f"{TASK}/after").get_json()
    assert plain["map_index"] == -1 and plain["rendered_map_index"] is None


def test_grid_shows_one_cell_with_the_count_and_the_task_page_lists_instances(
    client: FlaskClient, tokens: dict[str, str], mapped: None
) -> None:
    browser = Browser(client, tokens["Admin"])
    grid = browser.page("/dags/mapped")
    assert "3 mapped: 1 failed, 2 success" in grid
    assert '<span class="count">3</span>' in grid
    listing = browser.page("/dags/mapped/runs/r1/tasks/m")
    assert "3 mapped instances" in listing
    assert all(f"item {i}" in listing for i in (1, 2, 3))
    one = browser.page("/dags/mapped/runs/r1/tasks/m?map_index=1")
    assert "[1]" in one and "item 2" in one


def test_marking_one_mapped_instance_resumes_the_run(
    admin: Api, mapped: None, factory: SessionFactory
) -> None:
    url = f"{TASK}/m/1"
    dry = admin.patch(url, json={"new_state": "success"})
    assert dry.status_code == 200 and dry.get_json()["state"] == "failed"
    done = admin.patch(url, json={"new_state": "success", "dry_run": False}).get_json()
    assert (done["map_index"], done["state"]) == (1, "success")
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "mapped"))
        found = {(r.task_id, r.map_index): r.state for r in rows}
        run_state = session.scalar(select(DagRun.state).where(DagRun.dag_id == "mapped"))
    assert found == {("m", 0): "success", ("m", 1): "success", ("m", 2): "success",
                     ("after", -1): "none"}  # fmt: skip
    assert run_state == "queued"
    assert admin.patch(f"{TASK}/m/7", json={"new_state": "success"}).status_code == 404
    assert admin.patch(url, json={"new_state": "running"}).status_code == 400
    assert admin.patch(url, json={}).status_code == 400


def test_a_viewer_may_not_mark_a_mapped_instance(
    client: FlaskClient, tokens: dict[str, str], mapped: None
) -> None:
    viewer = Api(client, tokens["Viewer"])
    assert viewer.patch(f"{TASK}/m/1", json={"new_state": "success"}).status_code == 403
    user = Api(client, tokens["User"])
    assert user.patch(f"{TASK}/m/1", json={"new_state": "success"}).status_code == 200
