"""The permission matrix: every endpoint of the app, for every role, and anonymous callers.

The expected answer comes from :data:`cluster.web.permissions.PERMISSIONS`, the one
table the app checks; this test proves the app really enforces it for every route.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_harness import ROLES, bearer

from cluster.metastore.users import ROLES as STORED_ROLES
from cluster.web.permissions import PERMISSIONS, PUBLIC, Role, allows

#: a value for every path parameter, naming objects that ``seeded`` creates
PATH_VALUES = {
    "dag_id": "etl",
    "dag_run_id": "run1",
    "task_id": "extract",
    "xcom_key": "return_value",
    "import_error_id": 1,
    "variable_key": "greeting",
    "connection_id": "db",
    "pool_name": "etl_pool",
    "username": "admin",
    "filename": "tradewind.css",
    "task_try_number": 1,
    "uri": "s3://bucket/table",
    "map_index": 0,
    "event_log_id": 1,
    "file_token": "0" * 64,
    "role_name": "Viewer",
}


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """``(endpoint, method, url)`` for every route of the app."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        values = {name: PATH_VALUES[name] for name in rule.arguments}
        url = adapter.build(rule.endpoint, values)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def test_the_role_names_are_the_stored_ones() -> None:
    assert {role.label for role in Role} == set(STORED_ROLES) == set(ROLES)


def test_every_endpoint_is_in_the_permission_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - PUBLIC - set(PERMISSIONS) == set()
    assert set(PERMISSIONS) - endpoints == set(), "the table names endpoints that do not exist"


def test_each_role_gets_exactly_what_the_table_allows(
    app: Flask, client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    wrong = []
    for endpoint, method, url in routes(app):
        if endpoint in PUBLIC:
            continue
        for role in ROLES:
            status = client.open(
                url, method=method, json={}, headers=bearer(tokens[role])
            ).status_code
            allowed = allows(role, endpoint)
            if (allowed and status in (401, 403)) or (not allowed and status != 403):
                wrong.append((role, method, url, status))
    assert wrong == []


def test_anonymous_callers_must_sign_in(app: Flask, client: FlaskClient, seeded: None) -> None:
    wrong = []
    for endpoint, method, url in routes(app):
        response = client.open(url, method=method, json={})
        if endpoint in PUBLIC:
            if response.status_code in (401, 403):
                wrong.append((method, url, response.status_code))
        elif endpoint.startswith("api."):
            if response.status_code != 401 or response.get_json()["status"] != 401:
                wrong.append((method, url, response.status_code))
        elif response.status_code != 302 or "/login" not in response.headers["Location"]:
            wrong.append((method, url, response.status_code))
    assert wrong == []


@pytest.mark.parametrize(
    ("role", "endpoint", "expected"),
    [
        ("Viewer", "api.get_dags", True),
        ("Viewer", "api.post_dag_run", False),
        ("User", "api.post_dag_run", True),
        ("User", "api.get_variables", False),
        ("Op", "api.post_connection", True),
        ("Op", "api.get_users", False),
        ("Admin", "api.get_users", True),
        ("Admin", "api.no_such_endpoint", False),
        ("Superuser", "api.get_dags", False),
    ],
)
def test_roles_include_the_ones_below(role: str, endpoint: str, expected: bool) -> None:
    assert allows(role, endpoint) is expected
