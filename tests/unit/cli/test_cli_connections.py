"""``tradewind connections``: URIs parsed like Airflow, secrets never printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from cluster.cli.connections_cmd import parse_conn_uri
from cluster.errors import UsageError
from cluster.metastore.audit import list_events
from cluster.metastore.connections import ConnectionRecord
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Connection

Invoke = Callable[..., Result]
Main = Callable[..., Any]


def test_uri_fields_are_parsed_like_airflow() -> None:
    record = parse_conn_uri(
        "db", "postgresql://us%40er:p%2Fss@DB.example.com:5433/sales?sslmode=require&x="
    )
    assert record == ConnectionRecord(
        conn_id="db",
        conn_type="postgres",
        host="db.example.com",
        schema="sales",
        login="us@er",
        password="p/ss",
        port=5433,
        extra='{"sslmode": "require", "x": ""}',
    )


def test_uri_extra_key_holds_the_whole_extra_json() -> None:
    record = parse_conn_uri("h", 'google-cloud-platform://?__extra__={"project": "p"}')
    assert record.conn_type == "google_cloud_platform"
    assert record.host is None and json.loads(record.extra or "") == {"project": "p"}


def test_uri_with_a_host_protocol_keeps_it() -> None:
    record = parse_conn_uri("h", "http://https://example.com:443/api")
    assert (record.conn_type, record.host, record.port, record.schema) == (
        "http",
        "https://example.com",
        443,
        "api",
    )


@pytest.mark.parametrize("uri", ["no-scheme", "a://b://c://d", "mysql://h:notaport/db"])
def test_malformed_uris_are_refused(uri: str) -> None:
    with pytest.raises(UsageError):
        parse_conn_uri("c", uri)


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every CLI test here starts from a migrated metastore."""


def test_add_from_uri_encrypts_the_password_and_get_masks_it(
    ok: Invoke, metastore: SessionFactory
) -> None:
    ok("connections", "add", "db", "--conn-uri", "mysql://me:hunter2@db:3306/app")
    with metastore() as session:
        row = session.get(Connection, "db")
        assert row is not None and row.password is not None and "hunter2" not in row.password
        assert list_events(session=session, event="cli.connections.add")
    shown = json.loads(ok("connections", "get", "db", "-o", "json").output)
    assert shown["password"] == "***"
    assert (shown["conn_type"], shown["host"], shown["port"], shown["login"]) == (
        "mysql",
        "db",
        3306,
        "me",
    )
    assert "hunter2" not in ok("connections", "get", "db").output


def test_add_from_fields_masks_secret_keys_of_extra(ok: Invoke) -> None:
    ok(
        "connections",
        "add",
        "api",
        "--conn-type",
        "http",
        "--conn-host",
        "api.example.com",
        "--conn-password",
        "pw",
        "--conn-extra",
        '{"timeout": 5, "api_token": "tok"}',
        "--conn-description",
        "the API",
    )
    shown = json.loads(ok("connections", "get", "api", "-o", "json").output)
    assert shown["extra"] == {"timeout": 5, "api_token": "***"}
    assert shown["description"] == "the API"


def test_list_shows_no_secrets(ok: Invoke) -> None:
    ok("connections", "add", "db", "--conn-uri", "mysql://me:hunter2@db:3306/app")
    listing = json.loads(ok("connections", "list", "-o", "json").output)
    assert [c["conn_id"] for c in listing] == ["db"]
    assert "password" not in listing[0] and "extra" not in listing[0]
    assert "hunter2" not in ok("connections", "list", "-o", "yaml").output


def test_delete_removes_the_connection(ok: Invoke, main: Main) -> None:
    ok("connections", "add", "db", "--conn-type", "mysql")
    ok("connections", "delete", "db")
    missing = main("connections", "get", "db")
    assert missing.is_one_line_error and missing.code == 3


@pytest.mark.parametrize(
    "args",
    [
        ["db"],
        ["db", "--conn-uri", "mysql://h/db", "--conn-host", "other"],
        ["db", "--conn-type", "http", "--conn-extra", "not json"],
        ["db", "--conn-uri", "mysql://h:port/db"],
    ],
)
def test_add_with_bad_options_fails_with_one_line(main: Main, args: list[str]) -> None:
    result = main("connections", "add", *args)
    assert result.is_one_line_error


def test_adding_an_existing_id_fails(ok: Invoke, main: Main) -> None:
    ok("connections", "add", "db", "--conn-type", "mysql")
    again = main("connections", "add", "db", "--conn-type", "mysql")
    assert again.is_one_line_error and again.code == 4
