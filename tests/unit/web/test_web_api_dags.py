"""The DAG, run, task-instance and XCom endpoints, each checked against the metastore."""

from __future__ import annotations

from sqlalchemy import select
from web_harness import T0, Api

from cluster.dagfiles.storage import NEVER
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import AuditLog, Dag, DagRun, TaskInstance
from cluster.web.api.schemas import Dag as DagSchema
from cluster.web.api.schemas import DagCollection

RUN = "/api/v1/dags/etl/dagRuns/run1"


def states(factory: SessionFactory, run_id: str = "run1") -> dict[str, str]:
    with factory() as session:
        rows = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run_id))
        return {r.task_id: r.state for r in rows}


def events(factory: SessionFactory) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(AuditLog.event).order_by(AuditLog.id)))


def test_list_dags_with_filters_and_pages(admin: Api) -> None:
    body = admin.get("/api/v1/dags").get_json()
    assert [d["dag_id"] for d in body["dags"]] == ["etl", "other"]
    assert body["total_entries"] == 2
    assert body["dags"][0]["tags"] == [{"name": "finance"}]
    assert admin.get("/api/v1/dags?tags=finance").get_json()["total_entries"] == 1
    assert admin.get("/api/v1/dags?tags=misc&tags=finance").get_json()["total_entries"] == 2
    paused = admin.get("/api/v1/dags?paused=true").get_json()
    assert [d["dag_id"] for d in paused["dags"]] == ["etl"]
    page = admin.get("/api/v1/dags?limit=1&offset=1").get_json()
    assert [d["dag_id"] for d in page["dags"]] == ["other"] and page["total_entries"] == 2
    assert admin.get("/api/v1/dags?dag_id_pattern=oth").get_json()["total_entries"] == 1


def test_the_dag_list_matches_its_schema_and_the_single_dag(
    admin: Api, factory: SessionFactory
) -> None:
    """The list is written without building models (it is polled hard): it must still
    be exactly what the declared schema and ``GET /dags/<id>`` say."""
    with factory.begin() as session:
        row = session.get(Dag, "etl")
        assert row is not None
        row.next_dagrun = T0
        row.max_active_runs = 3
        row.description = 'quotes " and <tags>'
    body = admin.get("/api/v1/dags").get_json()
    strict = DagCollection.model_validate(body)
    assert strict.model_dump(mode="json") == body
    assert body["dags"][0] == admin.get("/api/v1/dags/etl").get_json()
    assert body["dags"][0]["next_dagrun"] == "2024-01-01T00:00:00Z"
    assert body["dags"][0]["owners"] == ["ops"] and body["dags"][1]["owners"] == []
    assert DagSchema.model_validate(body["dags"][1]).dag_id == "other"


def test_a_dag_that_is_never_due_shows_no_next_creation_time(
    admin: Api, factory: SessionFactory
) -> None:
    """The scheduler stores "never" for a DAG without a schedule (or one that waits for
    max_active_runs); Airflow says null there, and so does the API."""
    with factory.begin() as session:
        for dag_id, create_after in (("etl", NEVER), ("other", T0)):
            row = session.get(Dag, dag_id)
            assert row is not None
            row.next_dagrun_create_after = create_after
    assert admin.get("/api/v1/dags/etl").get_json()["next_dagrun_create_after"] is None
    listed = admin.get("/api/v1/dags").get_json()["dags"]
    assert [d["next_dagrun_create_after"] for d in listed] == [None, "2024-01-01T00:00:00Z"]


def test_patch_is_paused_flips_the_dag(admin: Api, factory: SessionFactory) -> None:
    response = admin.patch("/api/v1/dags/etl", json={"is_paused": False})
    assert response.status_code == 200 and response.get_json()["is_paused"] is False
    with factory() as session:
        row = session.get(Dag, "etl")
        assert row is not None and row.is_paused is False
    assert "api.dags.unpause" in events(factory)


def test_trigger_creates_a_queued_run_with_validated_params(
    admin: Api, factory: SessionFactory
) -> None:
    response = admin.post(
        "/api/v1/dags/etl/dagRuns", json={"dag_run_id": "manual_1", "conf": {"rows": 5}}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "queued"
    with factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "manual_1"))
        assert run is not None and run.state == "queued" and run.conf == {"rows": 5}
    assert (
        admin.post("/api/v1/dags/etl/dagRuns", json={"dag_run_id": "manual_1"}).status_code == 409
    )
    bad = admin.post("/api/v1/dags/etl/dagRuns", json={"conf": {"rows": -1}})
    assert bad.status_code == 400 and "rows" in bad.get_json()["detail"]
    assert admin.post("/api/v1/dags/nope/dagRuns", json={}).status_code == 404


def test_list_and_get_runs(admin: Api) -> None:
    body = admin.get("/api/v1/dags/etl/dagRuns").get_json()
    assert body["total_entries"] == 1 and body["dag_runs"][0]["dag_run_id"] == "run1"
    assert admin.get("/api/v1/dags/etl/dagRuns?state=success").get_json()["total_entries"] == 0
    assert admin.get("/api/v1/dags/~/dagRuns").get_json()["total_entries"] == 1
    run = admin.get(RUN).get_json()
    assert run["state"] == "failed" and run["logical_date"].startswith("2024-01-01T00:00:00")
    assert admin.get("/api/v1/dags/etl/dagRuns/nope").status_code == 404


def test_mark_a_run_success_marks_its_unfinished_instances(
    admin: Api, factory: SessionFactory
) -> None:
    admin.post(RUN + "/clear", json={"dry_run": False})  # transform and load: none
    response = admin.patch(RUN, json={"state": "success"})
    assert response.status_code == 200 and response.get_json()["state"] == "success"
    assert states(factory) == {"extract": "success", "transform": "success", "load": "success"}
    with factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "run1"))
        assert run is not None and run.state == "success"


def test_delete_a_run(admin: Api, factory: SessionFactory) -> None:
    assert admin.delete(RUN).status_code == 204
    assert admin.get(RUN).status_code == 404
    assert states(factory) == {}


def test_clear_a_run(admin: Api, factory: SessionFactory) -> None:
    dry = admin.post(RUN + "/clear", json={"dry_run": True}).get_json()
    assert {t["task_id"] for t in dry["task_instances"]} == {"extract", "transform", "load"}
    assert states(factory)["transform"] == "failed"
    admin.post(RUN + "/clear", json={"dry_run": False, "only_failed": True})
    assert states(factory) == {"extract": "success", "transform": "none", "load": "none"}
    assert admin.get(RUN).get_json()["state"] == "queued"


def test_clear_task_instances_with_relatives(admin: Api, factory: SessionFactory) -> None:
    url = "/api/v1/dags/etl/clearTaskInstances"
    body = {"dry_run": False, "task_ids": ["extract"], "only_failed": False}
    only = admin.post(url, json=body).get_json()
    assert [t["task_id"] for t in only["task_instances"]] == ["extract"]
    assert states(factory)["extract"] == "none"
    admin.post(url, json={**body, "include_downstream": True, "dag_run_id": "run1"})
    assert set(states(factory).values()) == {"none"}
    assert admin.post(url, json={"task_ids": ["nope"]}).status_code == 404


def test_task_instances_list_get_and_mark(admin: Api, factory: SessionFactory) -> None:
    body = admin.get(RUN + "/taskInstances").get_json()
    assert body["total_entries"] == 3
    failed = admin.get(RUN + "/taskInstances?state=failed").get_json()
    assert [t["task_id"] for t in failed["task_instances"]] == ["transform"]
    assert admin.get(RUN + "/taskInstances/transform").get_json()["try_number"] == 1
    dry = admin.patch(RUN + "/taskInstances/transform", json={"new_state": "success"})
    assert dry.status_code == 200 and dry.get_json()["state"] == "failed"  # Airflow: dry_run
    body = {"new_state": "success", "dry_run": False}
    response = admin.patch(RUN + "/taskInstances/transform", json=body)
    assert response.status_code == 200 and response.get_json()["state"] == "success"
    assert states(factory)["transform"] == "success"
    assert states(factory)["load"] == "none", "a failed downstream is cleared to resume"
    assert "api.tasks.mark_success" in events(factory)
    assert admin.get(RUN + "/taskInstances/nope").status_code == 404


def test_xcom_entries(admin: Api) -> None:
    base = RUN + "/taskInstances/extract/xcomEntries"
    listed = admin.get(base).get_json()
    assert [x["key"] for x in listed["xcom_entries"]] == ["return_value"]
    assert "value" not in listed["xcom_entries"][0]
    assert admin.get(base + "/return_value").get_json()["value"] == "[1, 2]"
    assert admin.get(base + "/missing").status_code == 404


def test_import_errors(admin: Api) -> None:
    listed = admin.get("/api/v1/importErrors").get_json()
    assert listed["total_entries"] == 1
    error_id = listed["import_errors"][0]["import_error_id"]
    assert admin.get(f"/api/v1/importErrors/{error_id}").get_json()["filename"] == "/dags/bad.py"
    assert admin.get("/api/v1/importErrors/999").status_code == 404
