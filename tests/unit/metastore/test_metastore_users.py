"""Users: scrypt password hashes, lockout, roles and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore.models import ApiToken
from cluster.metastore.users import (
    MAX_FAILED_LOGINS,
    authenticate,
    check_password,
    create_api_token,
    create_user,
    delete_user,
    hash_password,
    list_api_tokens,
    list_users,
    revoke_api_token,
    set_password,
    verify_api_token,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_hash_is_salted_and_self_describing() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert check_password("pw", first) and check_password("pw", second)
    assert not check_password("PW", first)
    assert not check_password("pw", "garbage")


def test_create_and_authenticate(session: Session) -> None:
    user = create_user("ada", "pw", role="Admin", email="ada@example.org", session=session)
    assert (user.username, user.role, user.active) == ("ada", "Admin", True)
    found = authenticate("ada", "pw", session=session, now=NOW)
    assert found is not None and found.last_login == NOW
    assert authenticate("ada", "nope", session=session, now=NOW) is None
    assert authenticate("nobody", "pw", session=session, now=NOW) is None


def test_roles_are_validated_and_usernames_unique(session: Session) -> None:
    with pytest.raises(UsageError, match="Viewer"):
        create_user("bob", "pw", role="Superuser", session=session)
    create_user("bob", "pw", role="Viewer", session=session)
    with pytest.raises(AlreadyExistsError):
        create_user("bob", "pw", role="Op", session=session)
    create_user("Bob", "pw", role="Op", session=session)  # names are case-sensitive
    assert [u.username for u in list_users(session=session)] == ["Bob", "bob"]


def test_too_many_failures_lock_the_account(session: Session) -> None:
    create_user("eve", "pw", role="User", session=session)
    for _ in range(MAX_FAILED_LOGINS):
        assert authenticate("eve", "guess", session=session, now=NOW) is None
    assert authenticate("eve", "pw", session=session, now=NOW) is None
    later = NOW + timedelta(minutes=16)
    assert authenticate("eve", "pw", session=session, now=later) is not None


def test_set_password_lifts_the_lock(session: Session) -> None:
    create_user("eve", "pw", role="User", session=session)
    for _ in range(MAX_FAILED_LOGINS):
        authenticate("eve", "guess", session=session, now=NOW)
    set_password("eve", "new", session=session)
    assert authenticate("eve", "new", session=session, now=NOW) is not None


def test_tokens_are_shown_once_and_stored_hashed(session: Session) -> None:
    create_user("ada", "pw", role="Admin", session=session)
    token_id, token = create_api_token("ada", "ci", session=session)
    stored = session.scalars(select(ApiToken.token_hash)).one()
    assert token not in stored and len(stored) == 64
    user = verify_api_token(token, session=session, now=NOW)
    assert user is not None and user.username == "ada"
    assert list_api_tokens("ada", session=session)[0].last_used_at == NOW
    assert verify_api_token(token + "x", session=session, now=NOW) is None
    revoke_api_token(token_id, session=session)
    assert verify_api_token(token, session=session, now=NOW) is None


def test_expired_tokens_are_refused(session: Session) -> None:
    create_user("ada", "pw", role="Admin", session=session)
    _, token = create_api_token("ada", "ci", session=session, expires_at=NOW)
    assert verify_api_token(token, session=session, now=NOW - timedelta(seconds=1)) is not None
    assert verify_api_token(token, session=session, now=NOW) is None


def test_deleting_a_user_deletes_their_tokens(session: Session) -> None:
    create_user("ada", "pw", role="Admin", session=session)
    _, token = create_api_token("ada", "ci", session=session)
    delete_user("ada", session=session)
    assert verify_api_token(token, session=session, now=NOW) is None
    assert session.scalars(select(ApiToken)).all() == []
    with pytest.raises(NotFoundError):
        delete_user("ada", session=session)


def test_token_use_is_written_at_most_once_a_minute(session: Session) -> None:
    create_user("ada", "pw", role="Admin", session=session)
    _, token = create_api_token("ada", "ci", session=session)
    verify_api_token(token, session=session, now=NOW)
    verify_api_token(token, session=session, now=NOW + timedelta(seconds=59))
    assert list_api_tokens("ada", session=session)[0].last_used_at == NOW
    later = NOW + timedelta(seconds=61)
    verify_api_token(token, session=session, now=later)
    assert list_api_tokens("ada", session=session)[0].last_used_at == later
