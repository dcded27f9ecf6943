"""Users: scrypt password hashes, lockout, roles and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore.models import ApiToken, User
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


#: made by werkzeug 2.2.3 (Airflow 2.10.5's) for "alice-pw": Airflow's users' hash form
AIRFLOW_HASH = (
    "pbkdf2:sha256:260000$xpzzFVfulRvMUUpI$"
    "8563f655bf7aec37bc5f514d4a3068cfaf8686642374b77ef4cab9b3d1b9de31"
)
#: werkzeug 3's default method (scrypt:n:r:p), for "pw"
WERKZEUG_SCRYPT = (
    "scrypt:32768:8:1$8KTMYGP4SBIXrAaO$b34f7a47be0c2dd69ef4d73a8fb37e11ee42608bc95c1123f3b6e62d8"
    "a8fd421391d2cd52b26786ef38fce815d4578ce94b85d5ffb2b845547bb4db458123b82"
)


@pytest.mark.parametrize(
    ("stored", "password"), [(AIRFLOW_HASH, "alice-pw"), (WERKZEUG_SCRYPT, "pw")]
)
def test_werkzeug_hashes_of_airflow_users_are_verified(stored: str, password: str) -> None:
    assert check_password(password, stored)
    assert not check_password(password + "x", stored)
    assert not check_password(password, stored[:-1] + "0")


@pytest.mark.parametrize(
    "stored", ["pbkdf2:sha256$salt$00", "pbkdf2:nohash:10$s$00", "scrypt:1:2$s$00", "pbkdf2:"]
)
def test_malformed_werkzeug_hashes_never_match(stored: str) -> None:
    assert not check_password("pw", stored)


def test_an_airflow_hash_is_replaced_by_tradewinds_at_the_first_sign_in(
    session: Session,
) -> None:
    create_user("alice", "placeholder", role="Admin", session=session)
    row = session.scalars(select(User).where(User.username == "alice")).one()
    row.password_hash = AIRFLOW_HASH
    assert authenticate("alice", "wrong", session=session, now=NOW) is None
    assert row.password_hash == AIRFLOW_HASH
    assert authenticate("alice", "alice-pw", session=session, now=NOW) is not None
    assert row.password_hash.startswith("scrypt$")
    assert authenticate("alice", "alice-pw", session=session, now=NOW) is not None


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
