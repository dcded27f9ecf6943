"""``tradewind rotate-fernet-key``: re-encrypt with the new key so the old can go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from cryptography.fernet import Fernet

from cluster.metastore.audit import list_events
from cluster.metastore.engine import SessionFactory

Invoke = Callable[..., Result]
Main = Callable[..., Any]


def test_rotation_lets_the_old_key_be_dropped(
    ok: Invoke, migrated: None, cli_env: dict[str, str], metastore: SessionFactory
) -> None:
    ok("variables", "set", "k", "v")
    ok("connections", "add", "db", "--conn-uri", "mysql://me:pw@db/app?ssl=1")
    old_key, new_key = cli_env["TRADEWIND__CORE__FERNET_KEY"], Fernet.generate_key().decode()
    both = {**cli_env, "TRADEWIND__CORE__FERNET_KEY": f"{new_key},{old_key}"}
    only_new = {**cli_env, "TRADEWIND__CORE__FERNET_KEY": new_key}

    result = ok("rotate-fernet-key", env=both)

    assert "Re-encrypted 3 values" in result.output
    assert ok("variables", "get", "k", env=only_new).output == "v\n"
    assert "***" in ok("connections", "get", "db", env=only_new).output
    with metastore() as session:
        (event,) = list_events(session=session, event="cli.rotate_fernet_key")
    assert event.extra == {"values": 3}


def test_a_missing_key_fails_with_one_line(
    main: Main, migrated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEWIND__CORE__FERNET_KEY", "")
    result = main("rotate-fernet-key")
    assert result.is_one_line_error and "fernet_key" in result.err


def test_a_wrong_key_fails_with_one_line(
    ok: Invoke, main: Main, migrated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("variables", "set", "k", "v")
    monkeypatch.setenv("TRADEWIND__CORE__FERNET_KEY", Fernet.generate_key().decode())
    result = main("rotate-fernet-key")
    assert result.is_one_line_error and "rotate" in result.err
