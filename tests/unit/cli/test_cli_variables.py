"""``tradewind variables``: values are stored encrypted and never listed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.fernet import MultiFernet

from cluster.metastore.audit import list_events
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Variable
from cluster.metastore.variables import get_variable

Invoke = Callable[..., Result]
Main = Callable[..., Any]


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def stored(metastore: SessionFactory, fernet: MultiFernet, key: str) -> tuple[str | None, str]:
    """The raw column and the decrypted value of ``key``."""
    with metastore() as session:
        row = session.get(Variable, key)
        assert row is not None
        return row.val, get_variable(key, session=session, fernet=fernet)


def test_set_stores_the_value_encrypted_and_get_prints_it(
    ok: Invoke, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    ok("variables", "set", "api_key", "s3cret", "--description", "the API key")
    raw, value = stored(metastore, fernet, "api_key")
    assert value == "s3cret" and raw is not None and "s3cret" not in raw
    assert ok("variables", "get", "api_key").output == "s3cret\n"
    with metastore() as session:
        (event,) = list_events(session=session, event="cli.variables.set")
    assert event.extra == {"key": "api_key"}


def test_json_values_are_checked_and_printed_as_json(ok: Invoke, main: Main) -> None:
    ok("variables", "set", "cfg", '{"a": [1, 2]}', "--json")
    assert json.loads(ok("variables", "get", "cfg", "--json").output) == {"a": [1, 2]}
    refused = main("variables", "set", "cfg", "{not json", "--json")
    assert refused.is_one_line_error and "not valid JSON" in refused.err


def test_get_of_a_missing_key_fails_unless_a_default_is_given(ok: Invoke, main: Main) -> None:
    missing = main("variables", "get", "nope")
    assert missing.is_one_line_error and missing.code == 3
    assert ok("variables", "get", "nope", "--default", "fallback").output == "fallback\n"


def test_list_shows_keys_never_values(ok: Invoke) -> None:
    ok("variables", "set", "b", "value-of-b")
    ok("variables", "set", "a", "value-of-a")
    listing = json.loads(ok("variables", "list", "-o", "json").output)
    assert listing == [{"key": "a"}, {"key": "b"}]
    table = ok("variables", "list").output
    assert "a" in table and "value-of" not in table


def test_delete_removes_the_variable(ok: Invoke, main: Main, metastore: SessionFactory) -> None:
    ok("variables", "set", "k", "v")
    assert "deleted" in ok("variables", "delete", "k").output
    with metastore() as session:
        assert session.get(Variable, "k") is None
    again = main("variables", "delete", "k")
    assert again.is_one_line_error and again.code == 3


def test_import_stores_strings_as_they_are_and_other_values_as_json(
    ok: Invoke, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    source = tmp_path / "vars.json"
    source.write_text(json.dumps({"name": "alice", "limits": {"cpu": 2}, "count": 3}))
    assert "3 of 3" in ok("variables", "import", str(source)).output
    assert stored(metastore, fernet, "name")[1] == "alice"
    assert json.loads(stored(metastore, fernet, "limits")[1]) == {"cpu": 2}
    assert stored(metastore, fernet, "count")[1] == "3"


def test_import_can_skip_or_refuse_existing_keys(
    ok: Invoke, main: Main, tmp_path: Path, metastore: SessionFactory, fernet: MultiFernet
) -> None:
    ok("variables", "set", "name", "bob")
    source = tmp_path / "vars.json"
    source.write_text(json.dumps({"name": "alice", "other": "x"}))
    assert "1 of 2" in ok("variables", "import", str(source), "-a", "skip").output
    assert stored(metastore, fernet, "name")[1] == "bob"
    refused = main("variables", "import", str(source), "-a", "fail")
    assert refused.is_one_line_error and "name" in refused.err


def test_import_of_a_file_that_is_not_a_json_object_fails(main: Main, tmp_path: Path) -> None:
    source = tmp_path / "vars.json"
    source.write_text("[1, 2]")
    result = main("variables", "import", str(source))
    assert result.is_one_line_error and "JSON object" in result.err
    missing = main("variables", "import", str(tmp_path / "absent.json"))
    assert missing.is_one_line_error


def test_export_round_trips_through_import(ok: Invoke, tmp_path: Path) -> None:
    ok("variables", "set", "name", "alice")
    ok("variables", "set", "limits", '{"cpu": 2}', "--json")
    target = tmp_path / "out.json"
    assert "2 variables" in ok("variables", "export", str(target)).output
    assert json.loads(target.read_text()) == {"limits": {"cpu": 2}, "name": "alice"}
    ok("variables", "delete", "name")
    ok("variables", "import", str(target))
    assert ok("variables", "get", "name").output == "alice\n"
