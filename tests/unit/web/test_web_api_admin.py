"""Variables, connections, pools, users, the audit log and the version."""

from __future__ import annotations

from web_harness import Api

from cluster.config import Settings
from cluster.metastore import connections, pools, variables
from cluster.metastore.engine import SessionFactory
from cluster.metastore.secrets import make_fernet


def test_variables_crud(admin: Api, factory: SessionFactory, web_settings: Settings) -> None:
    fernet = make_fernet(web_settings.core.fernet_key)
    listed = admin.get("/api/v1/variables").get_json()
    assert listed["variables"][0]["key"] == "greeting" and "value" not in listed["variables"][0]
    assert admin.get("/api/v1/variables/greeting").get_json()["value"] == "hello"
    created = admin.post("/api/v1/variables", json={"key": "size", "value": "3"})
    assert created.status_code == 200
    assert admin.post("/api/v1/variables", json={"key": "size", "value": "4"}).status_code == 409
    assert admin.patch("/api/v1/variables/size", json={"value": "5"}).status_code == 200
    with factory() as session:
        assert variables.get_variable("size", session=session, fernet=fernet) == "5"
    assert admin.delete("/api/v1/variables/size").status_code == 204
    assert admin.get("/api/v1/variables/size").status_code == 404


def test_connection_passwords_are_never_returned(
    admin: Api, factory: SessionFactory, web_settings: Settings
) -> None:
    fernet = make_fernet(web_settings.core.fernet_key)
    body = {
        "connection_id": "api",
        "conn_type": "http",
        "host": "x",
        "password": "pw",
        "schema": "s",
    }
    created = admin.post("/api/v1/connections", json=body)
    assert created.status_code == 200, created.get_json()
    assert "password" not in created.get_json() and created.get_json()["schema"] == "s"
    assert admin.post("/api/v1/connections", json=body).status_code == 409
    for url in ("/api/v1/connections", "/api/v1/connections/db", "/api/v1/connections/api"):
        assert "s3cret" not in admin.get(url).get_data(as_text=True)
        assert '"password"' not in admin.get(url).get_data(as_text=True)
    assert admin.patch("/api/v1/connections/api", json={"host": "y"}).get_json()["host"] == "y"
    with factory() as session:
        record = connections.get_connection("api", session=session, fernet=fernet)
        assert record.password == "pw" and record.host == "y" and record.schema == "s"
    assert admin.delete("/api/v1/connections/api").status_code == 204
    assert admin.get("/api/v1/connections/api").status_code == 404


def test_pools_crud(admin: Api, factory: SessionFactory) -> None:
    listed = admin.get("/api/v1/pools").get_json()
    assert {p["name"] for p in listed["pools"]} == {"default_pool", "etl_pool"}
    assert admin.post("/api/v1/pools", json={"name": "gpu", "slots": 2}).status_code == 200
    assert admin.post("/api/v1/pools", json={"name": "gpu", "slots": 2}).status_code == 409
    patched = admin.patch("/api/v1/pools/gpu", json={"slots": 8}).get_json()
    assert patched["slots"] == 8 and patched["open_slots"] == 8
    with factory() as session:
        assert pools.get_pool("gpu", session=session).slots == 8
    assert admin.delete("/api/v1/pools/gpu").status_code == 204
    assert admin.delete("/api/v1/pools/default_pool").status_code == 400


def test_users_event_logs_and_version(admin: Api) -> None:
    listed = admin.get("/api/v1/users").get_json()
    assert listed["total_entries"] == 5
    assert admin.get("/api/v1/users/op").get_json()["roles"] == [{"name": "Op"}]
    admin.patch("/api/v1/dags/etl", json={"is_paused": False})
    logs = admin.get("/api/v1/eventLogs?dag_id=etl").get_json()
    assert logs["event_logs"][0]["event"] == "api.dags.unpause"
    assert logs["event_logs"][0]["owner"] == "admin"
    assert admin.get("/api/v1/version").get_json()["version"]
