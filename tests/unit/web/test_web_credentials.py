"""Remembered API credentials: what a change to a user or a token does, and when.

A webserver trusts a token or a password it verified a moment ago for
:data:`cluster.web.credentials.TTL_SECONDS`, so these tests move the application's
injected clock instead of waiting.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_harness import PASSWORD, Browser, bearer, context_of

from cluster.config import Settings
from cluster.metastore import users
from cluster.metastore.engine import SessionFactory
from cluster.metastore.migrate import migrate
from cluster.web import create_app
from cluster.web.credentials import TTL_SECONDS, CredentialCache
from cluster.web.throttle import LoginThrottle
from tests.clocks import FakeClock

PAST_TTL = timedelta(seconds=TTL_SECONDS + 1)
VERSION = "/api/v1/version"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_app(web_settings: Settings, clock: FakeClock) -> Iterator[Flask]:
    throttle = LoginThrottle(max_failures=3, window=60, clock=clock.epoch)
    app = create_app(web_settings, clock=clock, throttle=throttle)
    migrate(context_of(app).engine)
    yield app
    context_of(app).engine.dispose()


@pytest.fixture
def timed_factory(timed_app: Flask) -> SessionFactory:
    return context_of(timed_app).session_factory


@pytest.fixture
def client(timed_app: Flask) -> FlaskClient:
    return timed_app.test_client()


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def add_user(
    factory: SessionFactory, name: str, role: str = "Viewer", *, expires_at: datetime | None = None
) -> tuple[int, str]:
    """A user named ``name`` with :data:`PASSWORD`; returns its token's id and token."""
    with factory.begin() as session:
        users.create_user(name, PASSWORD, role=role, session=session)
        return users.create_api_token(name, "tests", session=session, expires_at=expires_at)


def test_a_revoked_token_stops_working_within_the_ttl(
    client: FlaskClient, timed_factory: SessionFactory, clock: FakeClock
) -> None:
    token_id, token = add_user(timed_factory, "viewer")
    assert client.get(VERSION, headers=bearer(token)).status_code == 200
    with timed_factory.begin() as session:
        users.revoke_api_token(token_id, session=session)
    assert client.get(VERSION, headers=bearer(token)).status_code == 200, "still remembered"
    clock.advance(PAST_TTL)
    assert client.get(VERSION, headers=bearer(token)).status_code == 401


def test_a_changed_password_stops_working_within_the_ttl(
    client: FlaskClient, timed_factory: SessionFactory, clock: FakeClock
) -> None:
    add_user(timed_factory, "viewer")
    assert client.get(VERSION, headers=basic("viewer", PASSWORD)).status_code == 200
    with timed_factory.begin() as session:
        users.set_password("viewer", "another password", session=session)
    clock.advance(PAST_TTL)
    assert client.get(VERSION, headers=basic("viewer", PASSWORD)).status_code == 401
    assert client.get(VERSION, headers=basic("viewer", "another password")).status_code == 200


def test_a_remembered_token_never_outlives_its_expiry(
    client: FlaskClient, timed_factory: SessionFactory, clock: FakeClock
) -> None:
    expires_at = clock() + timedelta(seconds=TTL_SECONDS / 2)
    _, token = add_user(timed_factory, "viewer", expires_at=expires_at)
    assert client.get(VERSION, headers=bearer(token)).status_code == 200
    clock.advance(timedelta(seconds=TTL_SECONDS / 2))
    assert client.get(VERSION, headers=bearer(token)).status_code == 401


def test_a_deleted_user_loses_access_within_the_ttl(
    client: FlaskClient, timed_factory: SessionFactory, clock: FakeClock
) -> None:
    _, token = add_user(timed_factory, "viewer")
    assert client.get(VERSION, headers=bearer(token)).status_code == 200
    with timed_factory.begin() as session:
        users.delete_user("viewer", session=session)
    clock.advance(PAST_TTL)
    assert client.get(VERSION, headers=bearer(token)).status_code == 401


def test_changing_a_role_on_this_webserver_takes_effect_at_once(
    client: FlaskClient, timed_factory: SessionFactory
) -> None:
    _, admin_token = add_user(timed_factory, "admin", "Admin")
    _, op_token = add_user(timed_factory, "op", "Op")
    assert client.get("/api/v1/variables", headers=bearer(op_token)).status_code == 200
    admin = Browser(client, admin_token)
    assert admin.post("/users/op/role", {"role": "Viewer"}).status_code == 302
    assert client.get("/api/v1/variables", headers=bearer(op_token)).status_code == 403


def test_wrong_passwords_are_never_remembered_and_still_throttled(
    client: FlaskClient, timed_factory: SessionFactory
) -> None:
    add_user(timed_factory, "viewer")
    assert client.get(VERSION, headers=basic("viewer", PASSWORD)).status_code == 200
    for _ in range(3):
        assert client.get(VERSION, headers=basic("viewer", "wrong")).status_code == 401
    refused = client.get(VERSION, headers=basic("viewer", PASSWORD))
    assert refused.status_code == 429, "a remembered password does not bypass the throttle"


def test_the_cache_keeps_no_secret_and_stays_bounded() -> None:
    cache: CredentialCache[str] = CredentialCache(max_entries=2)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    keys = [cache.key("basic", "viewer", f"password {n}") for n in range(3)]
    assert all(b"password" not in key for key in keys)
    assert keys[0] == cache.key("basic", "viewer", "password 0")
    assert CredentialCache().key("basic", "viewer", "password 0") != keys[0], "per-process key"
    for n, key in enumerate(keys):
        cache.remember(key, f"user {n}", now)
    assert len(cache) == 2 and cache.lookup(keys[0], now) is None, "the oldest went first"
    assert cache.lookup(keys[2], now) == "user 2"
    assert cache.lookup(keys[2], now + timedelta(seconds=TTL_SECONDS)) is None
