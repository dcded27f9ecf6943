"""Airflow's stable REST API v1 where Tradewind lacked it: DAG details, tasks, sources,
stats, batch lists, ``order_by`` with Airflow's names, Airflow's payload types, and the
five roles with the permissions ``/roles`` reports."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import T0, Api, bearer

from cluster.metastore import audit
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagCode, DagRun, TaskInstance
from cluster.web.permissions import Role
from cluster.web.role_permissions import role_permissions

#: Airflow 2.10.5's default permissions (FAB provider 1.5.3, ``ROLE_CONFIGS``) on the
#: resources Tradewind has; each role also has those of the roles below it
AIRFLOW_DEFAULTS = {
    "Viewer": {
        ("can_read", r)
        for r in (
            "DAGs", "DAG Code", "DAG Runs", "Datasets", "Cluster Activity", "Pools",
            "ImportError", "Task Instances", "Task Logs", "XComs", "Website", "SLA Misses",
            "DAG Warnings",
        )
    },
    "User": {
        ("can_edit", "DAGs"), ("can_delete", "DAGs"), ("can_create", "Task Instances"),
        ("can_edit", "Task Instances"), ("can_delete", "Task Instances"),
        ("can_create", "DAG Runs"), ("can_edit", "DAG Runs"), ("can_delete", "DAG Runs"),
        ("can_create", "Datasets"),
    },
    "Op": {
        ("can_read", "Configurations"), ("can_read", "Plugins"), ("can_read", "Providers"),
        ("can_delete", "XComs"), ("can_delete", "Datasets"), ("can_create", "Datasets"),
        *((a, r) for a in ("can_create", "can_read", "can_edit", "can_delete")
          for r in ("Connections", "Variables")),
        ("can_create", "Pools"), ("can_edit", "Pools"), ("can_delete", "Pools"),
    },
    "Admin": {
        ("can_read", "Audit Logs"), ("can_read", "Roles"), ("can_edit", "Roles"),
        ("can_read", "Permissions"),
        *((a, "Users") for a in ("can_create", "can_read", "can_edit", "can_delete")),
    },
}  # fmt: skip
LADDER = ("Viewer", "User", "Op", "Admin")


def airflow_default(role: str) -> set[tuple[str, str]]:
    if role == "Public":
        return set()
    ranks = LADDER[: LADDER.index(role) + 1]
    return set().union(*(AIRFLOW_DEFAULTS[r] for r in ranks))


@pytest.mark.parametrize("role", [r.label for r in Role])
def test_each_role_has_airflows_default_permissions_where_tradewind_has_the_feature(
    role: str,
) -> None:
    granted = set(role_permissions(Role.parse(role) or Role.PUBLIC))
    everything = set(role_permissions(Role.ADMIN))
    assert granted <= airflow_default(role), granted - airflow_default(role)
    assert airflow_default(role) & everything <= granted


def test_roles_and_permissions_endpoints_report_the_enforced_table(admin: Api) -> None:
    roles = admin.get("/api/v1/roles").get_json()
    assert [r["name"] for r in roles["roles"]] == ["Admin", "Op", "Public", "User", "Viewer"]
    viewer = admin.get("/api/v1/roles/Viewer").get_json()
    pairs = {(a["action"]["name"], a["resource"]["name"]) for a in viewer["actions"]}
    assert ("can_read", "Pools") in pairs and ("can_edit", "DAGs") not in pairs
    assert admin.get("/api/v1/roles/Public").get_json()["actions"] == []
    assert admin.get("/api/v1/roles/Nobody").status_code == 404
    assert admin.get("/api/v1/roles?order_by=-name").get_json()["roles"][0]["name"] == "Viewer"
    actions = {a["name"] for a in admin.get("/api/v1/permissions").get_json()["actions"]}
    assert actions == {"can_read", "can_create", "can_edit", "can_delete"}


def test_a_public_user_signs_in_and_may_do_nothing(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    public = Api(client, tokens["Public"])
    assert public.get("/api/v1/dags").status_code == 403
    assert Api(client, tokens["Viewer"]).get("/api/v1/pools").status_code == 200
    assert Api(client, tokens["Op"]).get("/api/v1/eventLogs").status_code == 403
    assert Api(client, tokens["Op"]).get("/api/v1/plugins").get_json()["plugins"] == []


def test_dag_details_tasks_and_source(admin: Api, factory: SessionFactory) -> None:
    dag = admin.get("/api/v1/dags/etl").get_json()
    assert dag["dag_display_name"] == "etl" and dag["is_subdag"] is False
    with factory.begin() as session:
        session.add(
            DagCode(fileloc_hash=dag["file_token"], fileloc="/dags/etl.py", fingerprint="f",
                    source_code="print('etl')\n")
        )  # fmt: skip
    details = admin.get("/api/v1/dags/etl/details").get_json()
    assert details["params"]["rows"]["value"] == 10 and details["timezone"] == "UTC"
    assert details["has_import_errors"] is False and details["catchup"] is False
    only = admin.get("/api/v1/dags/etl/details?fields=dag_id&fields=params").get_json()
    assert set(only) == {"dag_id", "params"}
    assert admin.get("/api/v1/dags/etl/details?fields=bogus").status_code == 400
    tasks = admin.get("/api/v1/dags/etl/tasks?order_by=-task_id").get_json()
    assert [t["task_id"] for t in tasks["tasks"]] == ["transform", "load", "extract"]
    assert admin.get("/api/v1/dags/etl/tasks?order_by=nope").status_code == 400
    extract = admin.get("/api/v1/dags/etl/tasks/extract").get_json()
    assert extract["downstream_task_ids"] == ["transform"] and extract["retries"] == 1
    assert extract["retry_delay"] == {
        "__type": "TimeDelta", "days": 0, "seconds": 300, "microseconds": 0
    }  # fmt: skip
    assert admin.get("/api/v1/dags/etl/tasks/missing").status_code == 404
    source = admin.get(f"/api/v1/dagSources/{dag['file_token']}")
    assert source.mimetype == "text/plain" and source.get_data(as_text=True) == "print('etl')\n"
    as_json = admin.client.get(
        f"/api/v1/dagSources/{dag['file_token']}",
        headers={**bearer(admin.token), "Accept": "application/json"},
    )
    assert as_json.get_json() == {"content": "print('etl')\n"}
    assert admin.get("/api/v1/dagSources/nothing").status_code == 404


def test_dag_stats_count_every_state(admin: Api) -> None:
    stats = admin.get("/api/v1/dagStats?dag_ids=etl,other").get_json()
    by_dag = {d["dag_id"]: {s["state"]: s["count"] for s in d["stats"]} for d in stats["dags"]}
    assert by_dag["etl"] == {"queued": 0, "running": 0, "success": 0, "failed": 1}
    assert by_dag["other"]["failed"] == 0 and stats["total_entries"] == 2
    assert admin.get("/api/v1/dagStats").status_code == 400


def add_runs(factory: SessionFactory) -> None:
    with factory.begin() as session:
        for day in (2, 3):
            session.add(
                DagRun(dag_id="other", run_id=f"r{day}", logical_date=T0.replace(day=day),
                       run_type="scheduled", state="success", conf={})
            )  # fmt: skip


def test_run_lists_sort_and_filter_with_airflows_names(admin: Api, factory: SessionFactory) -> None:
    add_runs(factory)
    newest = admin.get("/api/v1/dags/~/dagRuns?order_by=-execution_date").get_json()
    assert [r["dag_run_id"] for r in newest["dag_runs"]] == ["r3", "r2", "run1"]
    ranged = admin.get(
        "/api/v1/dags/~/dagRuns", query_string={"execution_date_gte": "2024-01-02T00:00:00Z"}
    ).get_json()
    assert {r["dag_run_id"] for r in ranged["dag_runs"]} == {"r2", "r3"}
    bad = admin.get("/api/v1/dags/etl/dagRuns?order_by=nope")
    assert bad.status_code == 400 and "execution_date" in bad.get_json()["detail"]
    batch = admin.post(
        "/api/v1/dags/~/dagRuns/list",
        json={"dag_ids": ["other"], "order_by": "-execution_date", "page_limit": 1},
    ).get_json()
    assert [r["dag_run_id"] for r in batch["dag_runs"]] == ["r3"] and batch["total_entries"] == 2
    assert admin.post("/api/v1/dags/~/dagRuns/list", json={"nope": 1}).status_code == 400
    assert admin.get("/api/v1/dags?order_by=-dag_id").get_json()["dags"][0]["dag_id"] == "other"
    assert admin.get("/api/v1/dags?limit=500").status_code == 200


def test_task_instances_carry_airflows_fields_and_batch_filters(admin: Api) -> None:
    item = admin.get("/api/v1/dags/etl/dagRuns/run1/taskInstances/extract").get_json()
    assert item["execution_date"] == "2024-01-01T00:00:00Z" and item["hostname"] == ""
    assert item["task_display_name"] == "extract" and item["rendered_fields"] == {}
    assert item["sla_miss"] is None and item["executor_config"] == "{}"
    batch = admin.post(
        "/api/v1/dags/~/dagRuns/~/taskInstances/list",
        json={"dag_ids": ["etl"], "state": ["failed", "upstream_failed"]},
    ).get_json()
    assert {t["task_id"] for t in batch["task_instances"]} == {"transform", "load"}
    by_task = admin.post(
        "/api/v1/dags/~/dagRuns/~/taskInstances/list", json={"task_ids": ["load"]}
    ).get_json()
    assert [t["task_id"] for t in by_task["task_instances"]] == ["load"]
    xcom = admin.get("/api/v1/dags/etl/dagRuns/run1/taskInstances/extract/xcomEntries")
    assert xcom.get_json()["xcom_entries"][0]["execution_date"] == "2024-01-01T00:00:00Z"


def test_clearing_a_run_answers_as_airflow(admin: Api) -> None:
    url = "/api/v1/dags/etl/dagRuns/run1/clear"
    dry = admin.post(url, json={"dry_run": True}).get_json()
    assert {t["task_id"] for t in dry["task_instances"]} == {"extract", "transform", "load"}
    assert "state" in dry["task_instances"][0]
    refused = admin.post(
        "/api/v1/dags/etl/clearTaskInstances", json={"dry_run": True, "only_running": True}
    )
    assert refused.status_code == 400
    listed = admin.post(
        "/api/v1/dags/etl/clearTaskInstances",
        json={"dry_run": True, "dag_run_id": "run1", "include_past": True, "only_failed": False},
    ).get_json()
    assert listed["task_instances"][0]["execution_date"] == "2024-01-01T00:00:00Z"
    done = admin.post(url, json={"dry_run": False}).get_json()
    assert done["dag_run_id"] == "run1" and done["state"] == "queued"


def test_users_and_event_logs_have_airflows_types(admin: Api, factory: SessionFactory) -> None:
    with factory.begin() as session:
        audit.record_event("trigger", session=session, username="admin", dag_id="etl",
                           extra={"conf": {}})  # fmt: skip
    logs = admin.get("/api/v1/eventLogs?owner=admin&included_events=trigger").get_json()
    entry: dict[str, Any] = logs["event_logs"][0]
    assert json.loads(entry["extra"]) == {"conf": {}} and entry["map_index"] is None
    assert admin.get(f"/api/v1/eventLogs/{entry['event_log_id']}").get_json() == entry
    assert admin.get("/api/v1/eventLogs?excluded_events=trigger").get_json()["total_entries"] == 0
    assert admin.get("/api/v1/eventLogs/999999").status_code == 404
    user = admin.get("/api/v1/users/admin").get_json()
    assert "email" not in user and user["first_name"] == "" and user["login_count"] is None
    assert admin.get("/api/v1/users?order_by=-username").get_json()["users"][0]["username"] == (
        "viewer"
    )


def test_health_and_pools_in_airflows_shape(admin: Api) -> None:
    health = admin.get("/api/v1/health").get_json()
    assert health["metadatabase"] == {"status": "healthy"}
    assert health["scheduler"]["status"] is None and health["triggerer"]["status"] is None
    pool = admin.get("/api/v1/pools/etl_pool").get_json()
    assert pool["scheduled_slots"] == 0 and pool["include_deferred"] is False
    assert admin.get("/api/v1/pools?order_by=-name").get_json()["pools"][0]["name"] == "etl_pool"
    body = {"name": "gpu", "slots": 1, "include_deferred": True}
    assert admin.post("/api/v1/pools", json=body).status_code == 400


def test_a_dag_sent_back_whole_pauses_it(admin: Api) -> None:
    dag = admin.get("/api/v1/dags/other").get_json()
    patched = admin.patch(
        "/api/v1/dags/other?update_mask=is_paused", json=dag | {"is_paused": True}
    )
    assert patched.status_code == 200 and patched.get_json()["is_paused"] is True


def test_errors_carry_airflows_type(admin: Api) -> None:
    problem = admin.get("/api/v1/dags/missing").get_json()
    assert problem["type"].endswith("#section/Errors/NotFound") and problem["status"] == 404


def test_notes_on_runs_and_task_instances(
    admin: Api, client: FlaskClient, tokens: dict[str, str]
) -> None:
    run = "/api/v1/dags/etl/dagRuns/run1"
    noted = admin.patch(run + "/setNote", json={"note": "rerun after the fix"})
    assert noted.status_code == 200 and noted.get_json()["note"] == "rerun after the fix"
    assert admin.get(run).get_json()["note"] == "rerun after the fix"
    ti = run + "/taskInstances/transform"
    assert admin.patch(ti + "/setNote", json={"note": "flaky"}).get_json()["note"] == "flaky"
    assert admin.get(ti).get_json()["note"] == "flaky"
    assert admin.patch(ti + "/setNote", json={"note": ""}).get_json()["note"] is None
    assert admin.patch(ti + "/0/setNote", json={"note": "x"}).status_code == 404
    assert admin.patch(ti + "/setNote", json={"note": "x" * 1001}).status_code == 400
    viewer = Api(client, tokens["Viewer"])
    assert viewer.patch(run + "/setNote", json={"note": "no"}).status_code == 403
    triggered = admin.post("/api/v1/dags/etl/dagRuns", json={"note": "by the API"})
    assert triggered.get_json()["note"] == "by the API"


def test_pausing_by_pattern_deleting_a_dag_and_warnings(
    admin: Api, factory: SessionFactory
) -> None:
    paused = admin.patch("/api/v1/dags?dag_id_pattern=~", json={"is_paused": True}).get_json()
    assert [d["dag_id"] for d in paused["dags"]] == ["etl", "other"]
    assert all(d["is_paused"] for d in paused["dags"])
    resumed = admin.patch("/api/v1/dags?dag_id_pattern=oth", json={"is_paused": False})
    assert [d["is_paused"] for d in resumed.get_json()["dags"]] == [False]
    assert admin.patch("/api/v1/dags", json={"is_paused": True}).status_code == 400
    assert admin.get("/api/v1/dagWarnings").get_json() == {"dag_warnings": [], "total_entries": 0}
    with factory.begin() as session:
        session.add(
            TaskInstance(dag_id="other", run_id="r9", task_id="t", state="running", try_number=1)
        )
        session.add(
            DagRun(dag_id="other", run_id="r9", run_type="manual", state="running", conf={})
        )
    assert admin.delete("/api/v1/dags/other").status_code == 409
    assert admin.delete("/api/v1/dags/etl").status_code == 204
    assert admin.get("/api/v1/dags/etl").status_code == 404
    assert admin.delete("/api/v1/dags/etl").status_code == 404


def test_admins_create_and_delete_users(admin: Api) -> None:
    body = {
        "username": "dana",
        "password": "pw-dana-1",
        "email": "dana@example.com",
        "first_name": "Dana",
        "last_name": "D",
        "roles": [{"name": "Op"}],
    }
    created = admin.post("/api/v1/users", json=body)
    assert created.status_code == 200 and created.get_json()["roles"] == [{"name": "Op"}]
    assert admin.post("/api/v1/users", json=body).status_code == 409
    plain = admin.post("/api/v1/users", json={"username": "eve", "password": "pw"}).get_json()
    assert plain["roles"] == [{"name": "Public"}]
    two = body | {"username": "x", "roles": [{"name": "Op"}, {"name": "User"}]}
    assert admin.post("/api/v1/users", json=two).status_code == 400
    bad = body | {"username": "y", "roles": [{"name": "Superuser"}]}
    assert admin.post("/api/v1/users", json=bad).status_code == 400
    assert admin.delete("/api/v1/users/dana").status_code == 204
    assert admin.get("/api/v1/users/dana").status_code == 404
    assert admin.delete("/api/v1/users/admin").status_code == 400


def test_tries_of_a_task_instance(admin: Api) -> None:
    ti = "/api/v1/dags/etl/dagRuns/run1/taskInstances/transform"
    tries = admin.get(ti + "/tries").get_json()
    numbers = [t["try_number"] for t in tries["task_instances_history"]]
    assert numbers == sorted(numbers) and tries["total_entries"] == len(numbers) >= 1
    last = admin.get(f"{ti}/tries/{numbers[-1]}").get_json()
    assert last["state"] == "failed" and last["task_id"] == "transform"
    newest = admin.get(ti + "/tries?order_by=-try_number").get_json()
    assert newest["task_instances_history"][0]["try_number"] == numbers[-1]
    assert admin.get(ti + "/tries/99").status_code == 404
    assert admin.get(ti + "/tries?order_by=state").status_code == 400
    assert admin.get(ti + "/0/tries").status_code == 404


def test_setting_task_instances_state_in_bulk(admin: Api, factory: SessionFactory) -> None:
    url = "/api/v1/dags/etl/updateTaskInstancesState"
    with factory.begin() as session:
        later = T0.replace(day=2)
        session.add(DagRun(dag_id="etl", run_id="run2", logical_date=later, run_type="manual",
                           state="success", conf={}, queued_at=later))  # fmt: skip
        for task_id in ("extract", "transform", "load"):
            session.add(TaskInstance(dag_id="etl", run_id="run2", task_id=task_id,
                                     state="success", try_number=1))  # fmt: skip
    body: dict[str, Any] = {"task_id": "transform", "dag_run_id": "run1", "new_state": "success"}
    dry = admin.post(url, json=body | {"include_downstream": True}).get_json()
    assert [(t["task_id"], t["dag_run_id"]) for t in dry["task_instances"]] == [
        ("load", "run1"), ("transform", "run1")
    ]  # fmt: skip
    assert dry["task_instances"][0]["execution_date"] == "2024-01-01T00:00:00Z"
    assert state_of(factory, "run1", "transform") == "failed", "dry_run is Airflow's default"
    future = body | {"include_future": True, "include_upstream": True, "new_state": "failed"}
    listed = admin.post(url, json=future).get_json()["task_instances"]
    assert {(t["task_id"], t["dag_run_id"]) for t in listed} == {
        ("extract", "run1"), ("extract", "run2"), ("transform", "run2")
    }  # fmt: skip
    by_date = body | {"dag_run_id": None, "execution_date": "2024-01-02T00:00:00+00:00"}
    assert admin.post(url, json=by_date | {"new_state": "skipped"}).status_code == 200
    done = admin.post(url, json=body | {"dry_run": False}).get_json()
    assert [t["task_id"] for t in done["task_instances"]] == ["transform"]
    assert state_of(factory, "run1", "transform") == "success"
    assert state_of(factory, "run1", "load") == "none", "the failed downstream resumes"
    assert state_of(factory, "run2", "transform") == "success"
    both = body | {"execution_date": "2024-01-01T00:00:00+00:00"}
    assert admin.post(url, json=both).status_code == 400
    assert admin.post(url, json=body | {"dag_run_id": None}).status_code == 400
    assert admin.post(url, json=body | {"task_id": "nope"}).status_code == 404
    assert (
        admin.post(url, json=by_date | {"execution_date": "2030-01-01T00:00:00Z"}).status_code
        == 404
    )
    assert admin.post("/api/v1/dags/nope/updateTaskInstancesState", json=body).status_code == 404


def state_of(factory: SessionFactory, run_id: str, task_id: str) -> str:
    with factory() as session:
        state = session.scalar(
            select(TaskInstance.state).where(
                TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        )
    return str(state)


def test_update_mask_changes_only_the_fields_it_names(admin: Api) -> None:
    url = "/api/v1/variables/greeting"
    body = {"key": "greeting", "value": "ignored", "description": "said first"}
    changed = admin.patch(url + "?update_mask=description", json=body).get_json()
    assert (changed["value"], changed["description"]) == ("hello", "said first")
    for mask in ("nope", "key"):
        assert admin.patch(f"{url}?update_mask={mask}", json=body).status_code == 400
    pool = "/api/v1/pools/etl_pool"
    resized = admin.patch(pool + "?update_mask=slots", json={"name": "etl_pool", "slots": 9,
                                                             "description": "x"})  # fmt: skip
    assert (resized.get_json()["slots"], resized.get_json()["description"]) == (9, "ETL slots")
    missing = admin.patch(pool + "?update_mask=description", json={"name": "etl_pool", "slots": 1})
    assert missing.status_code == 400, "a masked field must be in the body, as in Airflow"
    conn = "/api/v1/connections/db"
    sent = {"connection_id": "db", "conn_type": "postgres", "host": "h2", "port": 5}
    moved = admin.patch(conn + "?update_mask=host&update_mask=port", json=sent).get_json()
    assert (moved["conn_type"], moved["host"], moved["port"]) == ("mysql", "h2", 5)
    both = admin.patch(conn + "?update_mask=host,schema", json={"host": "h3", "schema": "s"})
    assert (both.get_json()["host"], both.get_json()["schema"]) == ("h3", "s")
    assert admin.patch(conn + "?update_mask=connection_id", json=sent).status_code == 400


def test_lists_filter_by_update_time_and_runs_by_fields(admin: Api) -> None:
    runs = "/api/v1/dags/etl/dagRuns"
    assert admin.get(runs + "?updated_at_gte=2100-01-01T00:00:00Z").get_json()["total_entries"] == 0
    assert admin.get(runs + "?updated_at_lte=2100-01-01T00:00:00Z").get_json()["total_entries"] == 1
    tis = runs + "/run1/taskInstances"
    assert admin.get(tis + "?updated_at_gte=2100-01-01T00:00:00Z").get_json()["total_entries"] == 0
    assert admin.get(tis + "?updated_at_lte=2100-01-01T00:00:00Z").get_json()["total_entries"] == 3
    cut = admin.get(runs + "?fields=dag_run_id&fields=state").get_json()
    assert cut == {"dag_runs": [{"dag_run_id": "run1", "state": "failed"}], "total_entries": 1}
    assert admin.get(runs + "/run1?fields=state").get_json() == {"state": "failed"}
    assert admin.get(runs + "/run1?fields=nope").status_code == 400
    admin.patch("/api/v1/dags/etl", json={"is_paused": True})  # one audit-log entry
    logs = admin.get("/api/v1/eventLogs").get_json()["total_entries"]
    assert logs > 0 and admin.get("/api/v1/eventLogs?try_number=1").get_json()["total_entries"] == 0


def test_admins_change_users_as_airflow(admin: Api, client: FlaskClient) -> None:
    body = {"username": "fay", "password": "pw-fay-1", "roles": [{"name": "Viewer"}]}
    assert admin.post("/api/v1/users", json=body).status_code == 200
    url = "/api/v1/users/fay"
    sent = {"username": "fay", "email": "fay@example.com", "roles": [{"name": "Op"}]}
    only_role = admin.patch(url + "?update_mask=roles", json=sent).get_json()
    assert only_role["roles"] == [{"name": "Op"}] and "email" not in only_role
    assert admin.patch(url + "?update_mask=password", json=sent).status_code == 400
    assert admin.patch(url, json=sent | {"roles": [{"name": "Root"}]}).status_code == 400
    renewed = admin.patch(url, json={"username": "fay", "password": "pw-fay-2"})
    assert renewed.status_code == 200
    basic = {"Authorization": "Basic " + base64.b64encode(b"fay:pw-fay-2").decode()}
    assert client.get("/api/v1/pools", headers=basic).status_code == 200
    assert admin.patch(url, json={"username": "admin"}).status_code == 409
    renamed = admin.patch(url, json={"username": "gus", "roles": []}).get_json()
    assert renamed["username"] == "gus" and renamed["roles"] == [{"name": "Public"}]
    assert admin.get(url).status_code == 404
    assert admin.patch("/api/v1/users/nobody", json={"username": "x"}).status_code == 404


def test_only_admins_change_users(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    op = Api(client, tokens["Op"])
    assert op.patch("/api/v1/users/op", json={"username": "op"}).status_code == 403


def test_a_triggered_run_takes_the_data_interval_given(admin: Api) -> None:
    url = "/api/v1/dags/etl/dagRuns"
    start, end = "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"
    body = {"dag_run_id": "windowed", "data_interval_start": start, "data_interval_end": end}
    run = admin.post(url, json=body).get_json()
    assert (run["data_interval_start"], run["data_interval_end"]) == (start, end)
    half = admin.post(url, json={"dag_run_id": "half", "data_interval_start": start}).get_json()
    assert half["data_interval_start"] != start, "one bound alone is ignored, as in Airflow"
    backwards = {"dag_run_id": "back", "data_interval_start": end, "data_interval_end": start}
    assert admin.post(url, json=backwards).status_code == 400
