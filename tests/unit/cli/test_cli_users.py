"""``tradewind users``: roles, hidden password prompts, and tokens shown once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import Result

from cluster.metastore.audit import list_events
from cluster.metastore.coltypes import utcnow
from cluster.metastore.engine import SessionFactory
from cluster.metastore.users import authenticate, list_api_tokens, verify_api_token

Invoke = Callable[..., Result]
Main = Callable[..., Any]


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def test_create_normalizes_the_role_and_hashes_the_password(
    ok: Invoke, metastore: SessionFactory
) -> None:
    result = ok("users", "create", "-u", "ann", "-r", "admin", "-e", "a@x.io", "-p", "pw1")
    assert "role Admin" in result.output
    with metastore.begin() as session:
        user = authenticate("ann", "pw1", session=session, now=utcnow())
        assert user is not None and (user.role, user.email) == ("Admin", "a@x.io")
        (event,) = list_events(session=session, event="cli.users.create")
    assert "pw1" not in json.dumps(event.extra)


def test_create_prompts_twice_for_a_hidden_password(ok: Invoke, metastore: SessionFactory) -> None:
    result = ok("users", "create", "-u", "bob", "-r", "VIEWER", input="pw2\npw2\n")
    assert "pw2" not in result.output
    with metastore.begin() as session:
        user = authenticate("bob", "pw2", session=session, now=utcnow())
        assert user is not None and user.role == "Viewer"


def test_list_shows_users_without_password_hashes(ok: Invoke) -> None:
    ok("users", "create", "-u", "ann", "-r", "Op", "-p", "pw")
    listing = json.loads(ok("users", "list", "-o", "json").output)
    assert [(u["username"], u["role"], u["active"]) for u in listing] == [("ann", "Op", True)]
    assert "password_hash" not in listing[0]


def test_delete_removes_the_user(ok: Invoke, main: Main) -> None:
    ok("users", "create", "-u", "ann", "-r", "User", "-p", "pw")
    ok("users", "delete", "-u", "ann")
    assert json.loads(ok("users", "list", "-o", "json").output) == []
    again = main("users", "delete", "--username", "ann")
    assert again.is_one_line_error and again.code == 3


def test_token_is_printed_once_and_works(ok: Invoke, metastore: SessionFactory) -> None:
    ok("users", "create", "-u", "ann", "-r", "Admin", "-p", "pw")
    created = ok("users", "token", "create", "-u", "ann", "--name", "ci", "--expires-days", "7")
    token = created.stdout.strip()
    assert "not shown again" in created.stderr
    with metastore.begin() as session:
        user = verify_api_token(token, session=session, now=utcnow())
        assert user is not None and user.username == "ann"
        (info,) = list_api_tokens("ann", session=session)
    assert info.expires_at is not None
    assert timedelta(days=6) < info.expires_at - utcnow() <= timedelta(days=7)
    listing = ok("users", "token", "list", "-u", "ann", "-o", "json").output
    assert token not in listing
    assert [t["name"] for t in json.loads(listing)] == ["ci"]


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "-u", "ann", "-r", "Superuser", "-p", "pw"],
        ["users", "create", "-u", "ann", "-r", "Admin", "-p", ""],
        ["users", "token", "create", "-u", "nobody"],
        ["users", "token", "create", "-u", "ann", "--expires-days", "0"],
    ],
)
def test_bad_user_commands_fail_with_one_line(main: Main, args: list[str]) -> None:
    assert main(*args).is_one_line_error


def test_creating_a_taken_username_fails(ok: Invoke, main: Main) -> None:
    ok("users", "create", "-u", "ann", "-r", "Admin", "-p", "pw")
    again = main("users", "create", "-u", "ann", "-r", "Admin", "-p", "pw")
    assert again.is_one_line_error and again.code == 4
