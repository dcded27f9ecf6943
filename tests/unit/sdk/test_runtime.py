"""Variables and connections reach the runtime the runner installs."""

from __future__ import annotations

import pytest

from cluster.errors import NotFoundError
from cluster.sdk import BaseHook, Connection, Variable
from cluster.sdk.runtime import RuntimeNotConnected, current_runtime
from cluster.sdk.testing import InMemoryRuntime


def test_without_runtime_the_error_says_what_is_missing() -> None:
    with pytest.raises(RuntimeNotConnected, match="no metastore is connected"):
        current_runtime()
    with pytest.raises(RuntimeNotConnected):
        Variable.get("x")


def test_variables(runtime: InMemoryRuntime) -> None:
    Variable.set("k", "v")
    Variable.set("j", {"a": 1}, serialize_json=True)
    assert Variable.get("k") == "v" and Variable.get("j", deserialize_json=True) == {"a": 1}
    assert Variable.get("missing", default_var=None) is None
    with pytest.raises(KeyError):
        Variable.get("missing")
    Variable.delete("k")
    assert "k" not in runtime.variables


def test_connections(runtime: InMemoryRuntime) -> None:
    conn = Connection(
        "pg", "postgres", host="db", schema="app", login="u", password="p@ss", port=5432,
        extra={"sslmode": "require"},
    )  # fmt: skip
    runtime.connections["pg"] = conn
    assert Connection.get("pg") is conn and BaseHook.get_connection("pg") is conn
    assert conn.get_uri() == "postgres://u:p%40ss@db:5432/app?sslmode=require"
    assert conn.extra_dejson == {"sslmode": "require"}
    with pytest.raises(NotFoundError):
        Connection.get("nope")
