"""Who sends a request, and whether their role allows the endpoint.

Three ways to sign in, tried in this order:

- ``Authorization: Bearer <token>`` with a token from ``tradewind users token create``;
- ``Authorization: Basic`` with a username and password (API clients, curl);
- the signed session cookie set by the login page. The cookie holds the user's id and
  a fingerprint of their password hash: changing a password ends every session of
  that user on every webserver, without server-side session storage.

Password checks and token checks run in their own short transaction, so a failed
login's counter (which locks the account after five failures) is committed even
though the request then fails. Successful basic-auth and token checks are remembered
for a few seconds (:mod:`cluster.web.credentials`): API clients send the same
credentials with every call. :func:`before_request` is the one place where every
request is authenticated, authorized and CSRF-checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from datetime import datetime
from urllib.parse import urlencode

from flask import g, redirect, request, session
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from cluster.metastore import users
from cluster.metastore.engine import transaction
from cluster.metastore.models import ApiToken, User
from cluster.web.context import CurrentUser, WebContext, db_session, web_context
from cluster.web.csrf import csrf_token_valid, needs_csrf_check
from cluster.web.permissions import PUBLIC, allows
from cluster.web.problems import ApiProblem, problem

SESSION_USER = "uid"
SESSION_FINGERPRINT = "pwd"
API_BLUEPRINT = "api"


def before_request() -> BaseResponse | None:
    """Authenticate, authorize, then check CSRF; a response here ends the request."""
    endpoint = request.endpoint
    if endpoint is None:  # no such route: let Flask answer 404 or 405
        return None
    is_api = request.blueprint == API_BLUEPRINT
    g.user = None
    if endpoint not in PUBLIC:  # public endpoints never touch the metastore for a user
        g.user = identify()
        refused = authorize(endpoint, g.user, is_api=is_api)
        if refused is not None:
            return refused
    via = g.user.via if g.user is not None else None
    if needs_csrf_check(is_api=is_api, via=via) and not csrf_token_valid():
        return problem(400, "the CSRF token is missing or invalid: reload the page and retry")
    return None


def authorize(endpoint: str, user: CurrentUser | None, *, is_api: bool) -> BaseResponse | None:
    """``None`` when ``user`` may call ``endpoint``; else 401 (or the login page) or 403."""
    if user is None:
        if is_api:
            return problem(
                401,
                "authentication required: use HTTP basic auth or 'Authorization: Bearer "
                "<token>' (tradewind users token create)",
                headers={"WWW-Authenticate": 'Basic realm="Tradewind"'},
            )
        target = request.full_path if request.query_string else request.path
        return redirect("/login?" + urlencode({"next": target}))
    if not allows(user.role, endpoint):
        return problem(403, f"the role {user.role} of '{user.username}' may not do this")
    return None


def identify() -> CurrentUser | None:
    """The request's user, or ``None``; bad credentials raise :class:`ApiProblem` (401/429)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return _from_token(credentials.strip())
    if scheme.lower() == "basic":
        return _from_basic(*_decode_basic(credentials.strip()))
    if header:
        raise ApiProblem(401, "unsupported Authorization scheme: use Basic or Bearer")
    return _from_session()


def check_password(username: str, password: str) -> users.UserRecord | None:
    """The user if the password is right; failures count towards the address throttle.

    :raises ApiProblem: 429 while this client address is throttled.
    """
    context = web_context()
    address = _refuse_if_throttled(context)

    def work(session: Session) -> users.UserRecord | None:
        return users.authenticate(username, password, session=session, now=context.clock())

    record = transaction(context.session_factory, work, retries=2)
    if record is None:
        context.throttle.record_failure(address)
    return record


def _refuse_if_throttled(context: WebContext) -> str:
    """The client's address; :raises ApiProblem: 429 while it is throttled."""
    address = request.remote_addr or "unknown"
    wait = context.throttle.retry_after(address)
    if wait > 0:
        raise ApiProblem(
            429,
            "too many failed logins from this address: try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return address


def _from_basic(username: str, password: str) -> CurrentUser:
    """The user of a right password, from the cache of verified credentials when it
    was checked a moment ago (the throttle still applies); else checked with scrypt."""
    context = web_context()
    key = context.credentials.key("basic", username, password)
    now = context.clock()
    cached = context.credentials.lookup(key, now)
    if cached is not None:
        _refuse_if_throttled(context)
        return cached
    record = check_password(username, password)
    if record is None:
        raise ApiProblem(401, "wrong username or password, or the account is locked")
    user = CurrentUser(record.id, record.username, record.role, "basic")
    context.credentials.remember(key, user, now)
    return user


def _from_token(token: str) -> CurrentUser:
    """The user of a valid API token, from the cache when it was checked a moment ago."""
    if not token:
        raise ApiProblem(401, "the API token is unknown, expired or its user is inactive")
    context = web_context()
    key = context.credentials.key("token", token)
    now = context.clock()
    cached = context.credentials.lookup(key, now)
    if cached is not None:
        return cached

    def work(session: Session) -> tuple[users.UserRecord, list[datetime | None]] | None:
        record = users.verify_api_token(token, session=session, now=now)
        return None if record is None else (record, _token_expiry(session, token))

    verified = transaction(context.session_factory, work, retries=2)
    if verified is None:
        raise ApiProblem(401, "the API token is unknown, expired or its user is inactive")
    record, expiry = verified
    user = CurrentUser(record.id, record.username, record.role, "token")
    if len(expiry) == 1:  # else the token's row was not found: never remember blindly
        context.credentials.remember(key, user, now, expires_at=expiry[0])
    return user


def _token_expiry(session: Session, token: str) -> list[datetime | None]:
    """``[expires_at]`` of the token's row, so a cached token never outlives it."""
    digest = hashlib.sha256(token.encode()).hexdigest()  # as cluster.metastore.users stores it
    return list(session.scalars(select(ApiToken.expires_at).where(ApiToken.token_hash == digest)))


def forget_credentials() -> None:
    """Clear the cache of verified credentials when this request commits: it changed a
    user (role, deletion) or a token."""
    g.credentials_changed = True


def forget_credentials_if_changed() -> None:
    """Called once the request committed (see :func:`forget_credentials`)."""
    if g.pop("credentials_changed", False):
        web_context().credentials.forget_all()


def _decode_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiProblem(401, "malformed basic auth credentials") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ApiProblem(401, "malformed basic auth credentials")
    return username, password


def _from_session() -> CurrentUser | None:
    user_id = session.get(SESSION_USER)
    if not isinstance(user_id, int):
        return None
    row = db_session().get(User, user_id)
    if row is None or not row.active or session.get(SESSION_FINGERPRINT) != fingerprint(row):
        session.pop(SESSION_USER, None)
        return None
    return CurrentUser(row.id, row.username, row.role, "session")


def fingerprint(row: User) -> str:
    """A short digest of the password hash: sessions end when the password changes."""
    return hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]


def sign_in(user_id: int) -> None:
    """Start a browser session for ``user_id`` (after the password was checked)."""
    row = db_session().get(User, user_id)
    if row is None:  # pragma: no cover - the user was just authenticated
        raise ApiProblem(401, "the user no longer exists")
    session.clear()
    session.permanent = True
    session[SESSION_USER] = row.id
    session[SESSION_FINGERPRINT] = fingerprint(row)
