"""Signing in and out: login page, CSRF, basic auth, tokens, throttling, secure headers."""

from __future__ import annotations

import base64
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_harness import PASSWORD, bearer

from cluster.config import Settings
from cluster.errors import ConfigError
from cluster.metastore import users
from cluster.metastore.engine import SessionFactory
from cluster.web import create_app
from cluster.web.throttle import LoginThrottle


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str = PASSWORD, next_url: str = "/"):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_url},
    )


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_an_empty_secret_key_refuses_to_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=r"webserver\.secret_key"):
        create_app(settings.replace("webserver", secret_key=""))


def test_pages_send_anonymous_users_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/?tab=1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_then_logout(client: FlaskClient, tokens: dict[str, str]) -> None:
    response = log_in(client, "viewer", next_url="/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200 and "viewer (Viewer)" in home.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    logout_token = csrf_from(home.get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": logout_token}).status_code == 302
    assert client.get("/").status_code == 302


def test_login_refuses_a_wrong_password_and_an_outside_redirect(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    assert log_in(client, "viewer", password="wrong").status_code == 401
    response = log_in(client, "viewer", next_url="//evil.example/")
    assert response.headers["Location"] == "/"


def test_forms_without_the_csrf_token_are_refused(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["detail"]
    log_in(client, "viewer")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_api_calls_with_the_session_cookie_need_the_csrf_header(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    log_in(client, "user")
    assert client.get("/api/v1/dags").status_code == 200
    assert client.patch("/api/v1/dags/etl", json={"is_paused": False}).status_code == 400
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.patch(
        "/api/v1/dags/etl", json={"is_paused": False}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200


def test_changing_the_password_ends_existing_sessions(
    client: FlaskClient, tokens: dict[str, str], factory: SessionFactory
) -> None:
    log_in(client, "viewer")
    assert client.get("/").status_code == 200
    with factory.begin() as session:
        users.set_password("viewer", "a new password", session=session)
    assert client.get("/").status_code == 302


def test_sessions_are_valid_on_every_webserver_with_the_same_key(
    app: Flask, web_settings: Settings, tokens: dict[str, str]
) -> None:
    first = app.test_client()
    log_in(first, "viewer")
    other = create_app(web_settings).test_client()
    cookie = first.get_cookie("tradewind_session")
    assert cookie is not None
    other.set_cookie("tradewind_session", cookie.value)
    assert other.get("/").status_code == 200


def test_api_accepts_basic_auth_and_bearer_tokens(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    assert client.get("/api/v1/version", headers=basic("viewer", PASSWORD)).status_code == 200
    assert client.get("/api/v1/version", headers=bearer(tokens["Viewer"])).status_code == 200
    for headers in (
        basic("viewer", "wrong"),
        bearer("tw_not-a-token"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest x"},
        {},
    ):
        response = client.get("/api/v1/version", headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["status"] == 401


def test_failed_logins_are_throttled_per_address(
    web_settings: Settings, tokens: dict[str, str]
) -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window=60, clock=lambda: now[0])
    app = create_app(web_settings, throttle=throttle)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/version", headers=basic("nobody", "x")).status_code == 401
    refused = client.get("/api/v1/version", headers=basic("viewer", PASSWORD))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert log_in(client, "viewer").status_code == 429
    now[0] = 61.0
    assert client.get("/api/v1/version", headers=basic("viewer", PASSWORD)).status_code == 200


def test_accounts_lock_after_five_wrong_passwords(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    for _ in range(5):
        assert client.get("/api/v1/version", headers=basic("op", "wrong")).status_code == 401
    assert client.get("/api/v1/version", headers=basic("op", PASSWORD)).status_code == 401


def test_every_response_carries_the_security_headers(client: FlaskClient) -> None:
    for path in ("/login", "/health", "/api/v1/dags", "/no/such/page"):
        headers = client.get(path).headers
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "default-src 'self'" in headers["Content-Security-Policy"]
