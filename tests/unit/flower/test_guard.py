"""Who gets into Flower behind the webserver's users: Admin and Op, by basic auth."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import MetastoreSettings
from cluster.flower.guard import ASK, Request, UserGuard, basic_credentials
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import User
from cluster.metastore.users import create_user
from cluster.web.throttle import LoginThrottle


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{tmp_path / 'm.db'}"))
    migrate(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for name, role in (("ada", "Admin"), ("otto", "Op"), ("una", "User"), ("vi", "Viewer")):
            create_user(name, f"{name}-pw", role=role, session=session)
    yield factory
    engine.dispose()


def request(
    auth: tuple[str, str] | None = None,
    *,
    method: str = "GET",
    path: str = "/flower/api/workers",
    **headers: str,
) -> Request:
    if auth is not None:
        token = base64.b64encode(":".join(auth).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return Request(method, path, headers, host="flower.example:5555", remote_ip="10.0.0.9")


def test_admin_and_op_get_in_other_roles_do_not(sessions: sessionmaker[Session]) -> None:
    guard = UserGuard(sessions, url_prefix="flower")
    assert guard.refuse(request(("ada", "ada-pw"))) is None
    assert guard.refuse(request(("otto", "otto-pw"))) is None
    for name in ("una", "vi"):
        refusal = guard.refuse(request((name, f"{name}-pw")))
        assert refusal is not None and refusal.status == 403


def test_no_or_wrong_credentials_are_asked_for_again(sessions: sessionmaker[Session]) -> None:
    guard = UserGuard(sessions, url_prefix="flower")
    assert guard.refuse(request()) == ASK
    assert guard.refuse(request(("ada", "wrong"))) == ASK
    assert guard.refuse(request(("nobody", "x"))) == ASK
    assert ASK.status == 401 and ASK.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_the_health_check_is_public_under_the_prefix(sessions: sessionmaker[Session]) -> None:
    guard = UserGuard(sessions, url_prefix="/flower/")
    assert guard.refuse(request(path="/flower/healthcheck")) is None
    assert guard.refuse(request(path="/healthcheck")) == ASK
    assert guard.refuse(request(path="/flower/healthcheck", method="POST")) == ASK


def test_a_cross_site_change_is_refused_even_with_credentials(
    sessions: sessionmaker[Session],
) -> None:
    guard = UserGuard(sessions)
    post = {"auth": ("ada", "ada-pw"), "method": "POST", "path": "/api/task/revoke/x"}
    refusal = guard.refuse(request(**post, **{"Sec-Fetch-Site": "cross-site"}))
    assert refusal is not None and refusal.status == 403
    refusal = guard.refuse(request(**post, Origin="https://evil.example"))
    assert refusal is not None and refusal.status == 403
    assert guard.refuse(request(**post, **{"Sec-Fetch-Site": "same-origin"})) is None
    assert guard.refuse(request(**post, Origin="http://flower.example:5555")) is None
    assert guard.refuse(request(**post)) is None  # curl sends neither header


def test_failed_sign_ins_throttle_the_address(sessions: sessionmaker[Session]) -> None:
    guard = UserGuard(sessions, throttle=LoginThrottle(max_failures=2))
    assert guard.refuse(request(("ada", "a"))) == ASK
    assert guard.refuse(request(("otto", "b"))) == ASK
    refusal = guard.refuse(request(("ada", "ada-pw")))
    assert refusal is not None and refusal.status == 429


def test_a_verified_password_is_not_checked_again_for_a_while(
    sessions: sessionmaker[Session],
) -> None:
    """The browser resends the credentials with every request of a page."""
    guard = UserGuard(sessions)
    assert guard.refuse(request(("ada", "ada-pw"))) is None
    with sessions.begin() as session:
        session.execute(delete(User))
    assert guard.refuse(request(("ada", "ada-pw"))) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + base64.b64encode(b"ada:p:w").decode(), ("ada", "p:w")),
        ("basic " + base64.b64encode(b"ada:").decode(), ("ada", "")),
        ("Basic " + base64.b64encode(b":pw").decode(), None),
        ("Basic " + base64.b64encode(b"nocolon").decode(), None),
        ("Basic !!!", None),
        ("Bearer abc", None),
        ("", None),
    ],
)
def test_basic_credentials(header: str, expected: tuple[str, str] | None) -> None:
    assert basic_credentials(header) == expected
