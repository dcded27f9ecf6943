"""Every admin change made through the UI or the API lands in the audit log.

Variables, connections, pools (UI and API) and users (UI; the API only reads users):
each create, edit and delete leaves one row naming the event, who did it and what it
touched, committed with the change itself.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from web_harness import Api, Browser

from cluster.metastore import audit
from cluster.metastore.engine import SessionFactory


def events(factory: SessionFactory) -> list[tuple[str, str | None, Any]]:
    """``(event, username, extra)`` of every audit row, oldest first."""
    with factory() as session:
        rows = audit.list_events(session=session, limit=1000)
    return [(e.event, e.username, e.extra) for e in reversed(rows)]


def new_events(factory: SessionFactory, before: int) -> list[tuple[str, str | None, Any]]:
    return events(factory)[before:]


def test_admin_changes_in_the_ui_are_audited(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    op, admin = Browser(client, tokens["Op"]), Browser(client, tokens["Admin"])
    before = len(events(factory))
    steps = [
        (op, "/variables/new", {"key": "k1", "value": "v"}),
        (op, "/variables/k1/edit", {"value": "v2"}),
        (op, "/variables/k1/delete", {}),
        (op, "/connections/new", {"conn_id": "c1", "conn_type": "http"}),
        (op, "/connections/c1/edit", {"conn_type": "http", "host": "h"}),
        (op, "/connections/c1/delete", {}),
        (op, "/pools/new", {"pool": "p1", "slots": "3"}),
        (op, "/pools/p1/edit", {"slots": "5"}),
        (op, "/pools/p1/delete", {}),
        (admin, "/users/new", {"username": "u1", "password": "long enough pw 1", "role": "User"}),
        (admin, "/users/u1/role", {"role": "Op"}),
        (admin, "/users/u1/delete", {}),
    ]
    for who, path, form in steps:
        response = who.post(path, form)
        assert response.status_code == 302, (path, response.status_code, response.data[:300])
    assert new_events(factory, before) == [
        ("web.variables.set", "op", {"key": "k1"}),
        ("web.variables.set", "op", {"key": "k1"}),
        ("web.variables.delete", "op", {"key": "k1"}),
        ("web.connections.add", "op", {"conn_id": "c1", "conn_type": "http"}),
        ("web.connections.update", "op", {"conn_id": "c1", "conn_type": "http"}),
        ("web.connections.delete", "op", {"conn_id": "c1"}),
        ("web.pools.set", "op", {"pool": "p1", "slots": 3}),
        ("web.pools.set", "op", {"pool": "p1", "slots": 5}),
        ("web.pools.delete", "op", {"pool": "p1"}),
        ("web.users.create", "admin", {"user": "u1", "role": "User"}),
        ("web.users.set_role", "admin", {"user": "u1", "role": "Op"}),
        ("web.users.delete", "admin", {"user": "u1"}),
    ]


def test_a_refused_change_leaves_no_audit_row(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    before = len(events(factory))
    op = Browser(client, tokens["Op"])
    assert op.post("/pools/new", {"pool": "p2", "slots": "many"}).status_code == 400
    assert op.post("/pools/default_pool/delete", {}).status_code == 302  # refused, flashed
    assert Browser(client, tokens["User"]).post("/variables/new", {"key": "x"}).status_code == 403
    assert new_events(factory, before) == []


def test_admin_changes_through_the_api_are_audited(admin: Api, factory: SessionFactory) -> None:
    before = len(events(factory))
    calls = [
        admin.post("/api/v1/variables", {"key": "k1", "value": "v"}),
        admin.patch("/api/v1/variables/k1", {"key": "k1", "value": "v2"}),
        admin.delete("/api/v1/variables/k1"),
        admin.post("/api/v1/connections", {"connection_id": "c1", "conn_type": "http"}),
        admin.patch("/api/v1/connections/c1", {"connection_id": "c1", "conn_type": "ftp"}),
        admin.delete("/api/v1/connections/c1"),
        admin.post("/api/v1/pools", {"name": "p1", "slots": 3}),
        admin.patch("/api/v1/pools/p1", {"name": "p1", "slots": 5}),
        admin.delete("/api/v1/pools/p1"),
    ]
    assert [c.status_code for c in calls] == [200, 200, 204] * 3, [c.data[:200] for c in calls]
    audited = [(event, user) for event, user, _ in new_events(factory, before)]
    assert audited == [
        ("api.variables.set", "admin"),
        ("api.variables.set", "admin"),
        ("api.variables.delete", "admin"),
        ("api.connections.add", "admin"),
        ("api.connections.update", "admin"),
        ("api.connections.delete", "admin"),
        ("api.pools.set", "admin"),
        ("api.pools.set", "admin"),
        ("api.pools.delete", "admin"),
    ]
