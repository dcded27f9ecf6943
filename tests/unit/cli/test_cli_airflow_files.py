"""Airflow's import/export files: an operator's files and scripts work unchanged.

The connections file below is what Airflow 2.10's ``airflow connections export
--file-format json`` writes (``json.dumps({conn_id: _connection_to_dict(conn)},
indent=2)``: extra is the JSON text, port an integer or null).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from cryptography.fernet import MultiFernet

from cluster.metastore.connections import get_connection
from cluster.metastore.engine import SessionFactory
from cluster.metastore.pools import get_pool
from cluster.metastore.variables import get_variable

Invoke = Callable[..., Result]
Main = Callable[..., Any]

AIRFLOW_CONNECTIONS_EXPORT = """{
  "my_postgres": {
    "conn_type": "postgres",
    "description": "the warehouse",
    "login": "etl",
    "password": "p@ss:w/rd",
    "host": "db.example.com",
    "port": 5432,
    "schema": "warehouse",
    "extra": "{\\"sslmode\\": \\"require\\", \\"connect_timeout\\": 10}"
  },
  "my_http": {
    "conn_type": "http",
    "description": null,
    "login": null,
    "password": null,
    "host": "https://api.example.com",
    "port": null,
    "schema": null,
    "extra": null
  }
}"""


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def test_connections_import_reads_airflows_export_and_export_writes_it_back(
    ok: Invoke, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    source = tmp_path / "connections.json"
    source.write_text(AIRFLOW_CONNECTIONS_EXPORT)
    out = ok("connections", "import", str(source)).output
    assert "Imported connection my_postgres" in out and "Imported connection my_http" in out
    with metastore() as session:
        pg = get_connection("my_postgres", session=session, fernet=fernet)
    assert (pg.password, pg.port, pg.schema) == ("p@ss:w/rd", 5432, "warehouse")
    assert json.loads(pg.extra or "") == {"sslmode": "require", "connect_timeout": 10}
    exported = tmp_path / "again.json"
    ok("connections", "export", str(exported), "--file-format", "json")
    assert json.loads(exported.read_text()) == json.loads(AIRFLOW_CONNECTIONS_EXPORT)
    to_stdout = ok("connections", "export", "-").stdout  # argparse's FileType("w") allows "-"
    assert json.loads(to_stdout) == json.loads(AIRFLOW_CONNECTIONS_EXPORT)


def test_connections_import_skips_existing_unless_overwrite(
    ok: Invoke, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    ok("connections", "add", "my_http", "--conn-type", "http", "--conn-host", "old.example.com")
    source = tmp_path / "connections.json"
    source.write_text(AIRFLOW_CONNECTIONS_EXPORT)
    skipped = ok("connections", "import", str(source)).output
    assert "Could not import connection my_http: connection already exists." in skipped
    with metastore() as session:
        assert get_connection("my_http", session=session, fernet=fernet).host == "old.example.com"
    ok("connections", "import", str(source), "--overwrite", "-v")
    with metastore() as session:
        http = get_connection("my_http", session=session, fernet=fernet)
    assert http.host == "https://api.example.com"


@pytest.mark.parametrize("kind", ["yaml", "env"])
def test_connections_round_trip_through_yaml_and_env(
    ok: Invoke, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet, kind: str
) -> None:
    source = tmp_path / "connections.json"
    source.write_text(AIRFLOW_CONNECTIONS_EXPORT)
    ok("connections", "import", str(source))
    exported = tmp_path / f"out.{kind}"
    ok("connections", "export", str(exported))
    if kind == "yaml":
        assert yaml.safe_load(exported.read_text())["my_postgres"]["password"] == "p@ss:w/rd"
    else:
        assert exported.read_text().startswith("my_http=http://https://api.example.com")
    ok("connections", "delete", "my_postgres")
    ok("connections", "import", str(exported))
    with metastore() as session:
        pg = get_connection("my_postgres", session=session, fernet=fernet)
    assert (pg.login, pg.password, pg.host, pg.port) == ("etl", "p@ss:w/rd", "db.example.com", 5432)
    assert json.loads(pg.extra or "") == {"sslmode": "require", "connect_timeout": 10}


def test_connections_env_export_in_json_serialization(ok: Invoke, tmp_path: Path) -> None:
    source = tmp_path / "connections.json"
    source.write_text(AIRFLOW_CONNECTIONS_EXPORT)
    ok("connections", "import", str(source))
    exported = tmp_path / "out.txt"
    ok(
        "connections",
        "export",
        str(exported),
        "--file-format",
        "env",
        "--serialization-format",
        "json",
    )
    lines = dict(line.split("=", 1) for line in exported.read_text().splitlines())
    assert json.loads(lines["my_postgres"])["password"] == "p@ss:w/rd"


def test_connections_files_refused_in_one_line(main: Main, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"c": {"conn_type": "http", "colour": "red"}}')
    refused = main("connections", "import", str(bad))
    assert refused.is_one_line_error and "unknown keys: colour" in refused.err
    wrong = main("connections", "export", str(tmp_path / "out.csv"))
    assert wrong.is_one_line_error and "unsupported file format" in wrong.err
    mixed = main("connections", "export", str(tmp_path / "o.json"), "--serialization-format", "uri")
    assert mixed.is_one_line_error


def test_variables_round_trip_with_json_values_and_existing_key_actions(
    ok: Invoke, main: Main, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    source = tmp_path / "variables.json"
    values = {"plain": "text", "cfg": {"a": [1, 2], "b": None}, "n": 3, "flag": True}
    source.write_text(json.dumps(values))
    ok("variables", "set", "plain", "before")
    failed = main("variables", "import", str(source), "--action-on-existing-key", "fail")
    assert failed.is_one_line_error and "plain" in failed.err
    ok("variables", "import", str(source), "-a", "skip")
    with metastore() as session:
        assert get_variable("plain", session=session, fernet=fernet) == "before"
        assert json.loads(get_variable("cfg", session=session, fernet=fernet)) == values["cfg"]
    ok("variables", "import", str(source), "--action-on-existing-key", "overwrite", "-v")
    exported = tmp_path / "out.json"
    ok("variables", "export", str(exported), "-v")
    assert json.loads(exported.read_text()) == values
    assert json.loads(ok("variables", "export", "-").stdout) == values


def test_pools_import_and_export_in_airflows_format(
    ok: Invoke, main: Main, tmp_path: Path, metastore: SessionFactory
) -> None:
    source = tmp_path / "pools.json"
    source.write_text(
        json.dumps(
            {
                "etl": {"slots": 5, "description": "ETL", "include_deferred": True},
                "api": {"slots": 2, "description": ""},
            }
        )
    )
    assert "Uploaded 2 pool(s)" in ok("pools", "import", str(source)).output
    with metastore() as session:
        assert get_pool("etl", session=session).slots == 5
    exported = tmp_path / "out.json"
    ok("pools", "export", str(exported))
    data = json.loads(exported.read_text())
    assert data["etl"] == {"slots": 5, "description": "ETL", "include_deferred": False}
    assert data["api"]["slots"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": {"slots": 1}}))
    refused = main("pools", "import", str(bad))
    assert refused.is_one_line_error and "Failed to update pool(s): x" in refused.err
