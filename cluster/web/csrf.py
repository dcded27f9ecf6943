"""Protection against cross-site request forgery for everything a browser session can do.

A random token lives in the signed session cookie; every HTML form carries it in a
hidden ``csrf_token`` field and scripts send it in the ``X-CSRFToken`` header. A
state-changing request is refused unless it presents the token, when the browser's
cookie is what authenticates it: every page form (login and logout included), and
API calls made with the session cookie. API calls with HTTP basic auth or a bearer
token need no token: another site cannot make a browser send those.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FIELD = "csrf_token"
HEADER = "X-CSRFToken"


def csrf_token() -> str:
    """This session's token, created on first use (templates call it for each form)."""
    token = session.get(FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[FIELD] = token
    return token


def new_csrf_token() -> str:
    """Replace the token (at login, so a token planted before login is worthless)."""
    session.pop(FIELD, None)
    return csrf_token()


def needs_csrf_check(*, is_api: bool, via: str | None) -> bool:
    """Whether this request must present the token (see the module docstring)."""
    if request.method in SAFE_METHODS:
        return False
    return not is_api or via == "session"


def csrf_token_valid() -> bool:
    expected = session.get(FIELD)
    given = request.headers.get(HEADER) or request.form.get(FIELD)
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
