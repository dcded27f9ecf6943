"""Users of the web UI and the API, their passwords and their API tokens.

Passwords are hashed with scrypt and a random salt, stored in a self-describing form
(``scrypt$n$r$p$salt$hash``) so the cost can be raised later without breaking old
hashes. API tokens are shown once at creation; only their sha256 is stored, which is
enough because a token has 256 random bits (no dictionary to attack).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore.models import ApiToken, User

#: Airflow's default roles; ``Public`` may sign in and do nothing else
ROLES = ("Admin", "Op", "User", "Viewer", "Public")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
TOKEN_PREFIX = "tw_"
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    email: str | None
    role: str
    active: bool
    created_at: datetime
    last_login: datetime | None
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


# --- passwords ------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    )


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; malformed hashes never match."""
    if stored.startswith(WERKZEUG_METHODS):
        return _check_werkzeug(password, stored)
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


#: the prefixes of werkzeug's hash methods (Airflow's users): ``method$salt$hexdigest``
WERKZEUG_METHODS = ("pbkdf2:", "scrypt:")


def is_native_hash(stored: str) -> bool:
    """Whether ``stored`` is in Tradewind's own form (else it came from Airflow)."""
    return stored.startswith("scrypt$")


def _check_werkzeug(password: str, stored: str) -> bool:
    """werkzeug's ``check_password_hash`` for its pbkdf2 and scrypt methods (the salt is
    used as text, the digest stored as hex), without importing werkzeug."""
    try:
        method, salt, digest = stored.split("$", 2)
        name, *params = method.split(":")
        if name == "pbkdf2":
            hash_name, iterations = params[0], int(params[1])
            actual = hashlib.pbkdf2_hmac(hash_name, password.encode(), salt.encode(), iterations)
        else:
            n, r, p = (int(value) for value in params)
            actual = hashlib.scrypt(
                password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p
            )
    except (ValueError, IndexError):
        return False
    return hmac.compare_digest(actual.hex(), digest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- users ----------------------------------------------------------------------


def check_role(role: str) -> str:
    """:raises UsageError: unless ``role`` is one of :data:`ROLES`."""
    if role not in ROLES:
        raise UsageError(f"unknown role '{role}' (choose one of {', '.join(ROLES)})")
    return role


def create_user(
    username: str, password: str, *, role: str, session: Session, email: str | None = None
) -> UserRecord:
    """:raises AlreadyExistsError: for a taken username; :raises UsageError: for bad input."""
    check_role(role)
    if not username or not password:
        raise UsageError("a user needs a non-empty username and password")
    if _find(session, username) is not None:
        raise AlreadyExistsError(f"user '{username}' exists already")
    row = User(username=username, email=email, password_hash=hash_password(password), role=role)
    session.add(row)
    session.flush()
    return _record(row)


def get_user(username: str, *, session: Session) -> UserRecord:
    """:raises NotFoundError: when no such user exists."""
    return _record(_require(session, username))


def list_users(*, session: Session) -> list[UserRecord]:
    return [_record(row) for row in session.scalars(select(User).order_by(User.username))]


def delete_user(username: str, *, session: Session) -> None:
    """Delete the user and, by cascade, their API tokens."""
    row = _require(session, username)
    session.execute(delete(ApiToken).where(ApiToken.user_id == row.id))
    session.delete(row)
    session.flush()


def set_password(username: str, password: str, *, session: Session) -> None:
    """Replace the password and lift any lockout."""
    if not password:
        raise UsageError("the password must not be empty")
    row = _require(session, username)
    row.password_hash = hash_password(password)
    row.failed_logins = 0
    row.locked_until = None
    session.flush()


def update_user(username: str, changes: Mapping[str, Any], *, session: Session) -> UserRecord:
    """Change what ``changes`` names of a user (``username``, ``email``, ``password``,
    hashed here, and ``role``); the rest stays. A new password lifts any lockout, as
    :func:`set_password` does.

    :raises NotFoundError: for an unknown user; :raises AlreadyExistsError: when the new
        username is taken; :raises UsageError: for an unknown role or an empty username or
        password.
    """
    row = _require(session, username)
    new_name = changes.get("username", username)
    if not new_name:
        raise UsageError("the username must not be empty")
    if new_name != username and _find(session, new_name) is not None:
        raise AlreadyExistsError(f"user '{new_name}' exists already")
    row.username = new_name
    if "email" in changes:
        row.email = changes["email"] or None
    if "role" in changes:
        row.role = check_role(changes["role"])
    session.flush()
    if "password" in changes:
        set_password(new_name, changes["password"] or "", session=session)
    return _record(row)


def set_role(username: str, role: str, *, session: Session) -> None:
    _require(session, username).role = check_role(role)
    session.flush()


def authenticate(
    username: str, password: str, *, session: Session, now: datetime
) -> UserRecord | None:
    """The user when the password matches and the account is usable, else ``None``.

    After :data:`MAX_FAILED_LOGINS` wrong passwords in a row the account is locked for
    :data:`LOCKOUT`, which turns online guessing into a very slow business.
    """
    row = _find(session, username)
    if row is None:
        check_password(password, hash_password("timing"))  # same cost as a real check
        return None
    if not row.active or (row.locked_until is not None and row.locked_until > now):
        return None
    if not check_password(password, row.password_hash):
        row.failed_logins += 1
        if row.failed_logins >= MAX_FAILED_LOGINS:
            row.locked_until = now + LOCKOUT
            row.failed_logins = 0
        session.flush()
        return None
    row.failed_logins, row.locked_until, row.last_login = 0, None, now
    if not is_native_hash(row.password_hash):
        row.password_hash = hash_password(password)  # a migrated Airflow hash, upgraded
    session.flush()
    return _record(row)


# --- API tokens -----------------------------------------------------------------


def create_api_token(
    username: str, name: str, *, session: Session, expires_at: datetime | None = None
) -> tuple[int, str]:
    """Create a token and return ``(id, token)``: the only time the plain token exists."""
    user = _require(session, username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token), expires_at=expires_at)
    session.add(row)
    session.flush()
    return row.id, token


#: how stale ``api_token.last_used_at`` may get before a use is written
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def verify_api_token(token: str, *, session: Session, now: datetime) -> UserRecord | None:
    """The token's active user when it exists and has not expired; records its use."""
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_USE_RESOLUTION:
        # at most one write a minute per token: an API call stays a read
        row.last_used_at = now
        session.flush()
    return _record(user)


def list_api_tokens(username: str, *, session: Session) -> list[ApiTokenInfo]:
    user = _require(session, username)
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    )
    return [ApiTokenInfo(r.id, r.name, r.created_at, r.expires_at, r.last_used_at) for r in rows]


def revoke_api_token(token_id: int, *, session: Session) -> None:
    """:raises NotFoundError: when no such token exists."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"API token {token_id} does not exist")
    session.delete(row)
    session.flush()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _find(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def _require(session: Session, username: str) -> User:
    row = _find(session, username)
    if row is None:
        raise NotFoundError(f"user '{username}' does not exist")
    return row


def _record(row: User) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        email=row.email,
        role=row.role,
        active=row.active,
        created_at=row.created_at,
        last_login=row.last_login,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )
