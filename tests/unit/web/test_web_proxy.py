"""Behind HAProxy: ``webserver.proxy_fix_x_for`` makes throttling key on the real client.

HAProxy (``option forwardfor``) appends the client's address to ``X-Forwarded-For``;
every request reaches the webserver from the proxy's own address. Without trusting
the header, one client's failed logins would throttle everyone behind the proxy; with
it trusted when no proxy is in front, a client could forge any address.
"""

from __future__ import annotations

import base64
from pathlib import Path

from flask.testing import FlaskClient

from cluster.config import Settings, load_settings
from cluster.web import create_app
from cluster.web.throttle import LoginThrottle

PROXY = "127.0.0.9"


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def client_behind_proxy(settings: Settings, trusted: int) -> FlaskClient:
    app = create_app(
        settings.replace("webserver", proxy_fix_x_for=trusted),
        throttle=LoginThrottle(max_failures=2, window=60, clock=lambda: 0.0),
    )
    return app.test_client()


def login_status(client: FlaskClient, forwarded_for: str) -> int:
    """A wrong password from ``forwarded_for`` as HAProxy passes it on (from ``PROXY``)."""
    response = client.get(
        "/api/v1/version",
        headers={**basic("nobody", "wrong"), "X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": PROXY},
    )
    return response.status_code


def test_with_one_trusted_proxy_each_client_is_throttled_on_its_own(
    web_settings: Settings, tokens: dict[str, str]
) -> None:
    client = client_behind_proxy(web_settings, trusted=1)
    assert [login_status(client, "10.0.0.1") for _ in range(3)] == [401, 401, 429]
    assert login_status(client, "10.0.0.2") == 401, "another client must not be throttled"
    # a forged first hop does not help: only the hop HAProxy appended counts
    assert login_status(client, "10.9.9.9, 10.0.0.1") == 429


def test_without_trusted_proxies_the_header_is_ignored(
    web_settings: Settings, tokens: dict[str, str]
) -> None:
    client = client_behind_proxy(web_settings, trusted=0)
    assert [login_status(client, "10.0.0.1") for _ in range(2)] == [401, 401]
    # every request came from the proxy's address: a "new" client is throttled too
    assert login_status(client, "10.0.0.2") == 429


def test_the_setting_comes_from_the_environment(tmp_path: Path) -> None:
    assert load_settings({}, home=tmp_path).webserver.proxy_fix_x_for == 0
    env = {"TRADEWIND__WEBSERVER__PROXY_FIX_X_FOR": "1"}
    assert load_settings(env, home=tmp_path).webserver.proxy_fix_x_for == 1
