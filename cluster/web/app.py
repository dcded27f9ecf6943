"""The Flask application factory: the gunicorn target ``cluster.web:create_app()``.

Settings are loaded when the app is created, never at import. The factory builds the
metastore engine and session factory, then wires the request pipeline:
authenticate, authorize and CSRF-check (:mod:`cluster.web.auth`) → view → commit the
request's session → security headers. Webservers keep no state of their own: the
session is a cookie signed with ``webserver.secret_key``, so any webserver behind the
load balancer serves any user. Behind HAProxy, ``webserver.proxy_fix_x_for`` (the
number of trusted proxies) makes werkzeug's ``ProxyFix`` take the client address from
``X-Forwarded-For``, so login throttling counts the real client, not the proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from cluster.config import Settings, load_settings, require_secret
from cluster.dagfiles.environment import prepare_user_code
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metrics.webserver import install_metrics
from cluster.web import auth, health
from cluster.web.api import install_api
from cluster.web.context import (
    EXTENSION,
    CurrentUser,
    WebContext,
    close_request_session,
    commit_request_session,
    rollback_request_session,
)
from cluster.web.converters import BoundedIntConverter
from cluster.web.credentials import CredentialCache
from cluster.web.csrf import csrf_token
from cluster.web.headers import add_secure_headers
from cluster.web.pages import PAGE_BLUEPRINTS, install_pages
from cluster.web.pages.errors import page_error
from cluster.web.problems import problem_for
from cluster.web.throttle import LoginThrottle

SESSION_COOKIE = "tradewind_session"
SESSION_LIFETIME = timedelta(hours=12)
#: request bodies larger than this are refused (413) before a view reads them
MAX_BODY_BYTES = 16 * 1024 * 1024


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    throttle: LoginThrottle | None = None,
    credentials: CredentialCache[CurrentUser] | None = None,
) -> Flask:
    """Build the web application for ``settings`` (loaded from the environment if omitted).

    :param clock: the current time for logins and tokens; injected by tests.
    :param throttle: the login throttle; tests pass one with a fake clock.
    :param credentials: the cache of verified API credentials (a default one if omitted).
    :raises ConfigError: when ``webserver.secret_key`` is empty.
    """
    settings = settings or load_settings()
    prepare_user_code(settings)  # a plugin timetable's manual runs are inferred here
    app = Flask(__name__)
    app.url_map.converters["int"] = BoundedIntConverter
    app.secret_key = require_secret(settings, "webserver.secret_key")
    root_path = urlsplit(settings.webserver.base_url).path.rstrip("/")
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.webserver.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        PROPAGATE_EXCEPTIONS=False,
        JSON_SORT_KEYS=False,
    )
    # Every session and connection of the webserver ends its transaction itself
    # (requests commit or roll back; Session.close() rolls back what is still open),
    # so the pool's own ROLLBACK on check-in is a wasted round trip per request.
    engine = create_engine_for(settings.metastore, reset_on_return=False)
    app.extensions[EXTENSION] = WebContext(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        throttle=throttle or LoginThrottle(),
        clock=clock or (lambda: datetime.now(UTC)),
        credentials=CredentialCache() if credentials is None else credentials,
    )
    _trust_proxies(app, settings.webserver.proxy_fix_x_for)
    _wire_requests(app)
    app.register_blueprint(health.bp)
    # browsers ask for /favicon.ico on pages without a <link rel="icon"> (JSON, errors)
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))
    install_pages(app)
    install_api(app, root_path=root_path)
    install_metrics(app)
    return app


def _trust_proxies(app: Flask, x_for: int) -> None:
    """Read the client address from the last ``x_for`` hops of ``X-Forwarded-For``.

    Only set it to the number of proxies really in front: with more, a client could
    pick its own address by sending the header itself and so escape the throttle.
    """
    if x_for > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for)  # type: ignore[method-assign]


def _wire_requests(app: Flask) -> None:
    """The request pipeline; every error becomes a JSON problem (rolled back first), or
    an HTML page with the same status and message when a page raised it."""
    app.before_request(auth.before_request)

    @app.after_request
    def finish(response: Response) -> Response:
        if response.status_code < 400:
            commit_request_session()
            auth.forget_credentials_if_changed()
        else:
            rollback_request_session()
        return add_secure_headers(response)

    @app.errorhandler(Exception)
    def handle_error(exc: Exception) -> Response:
        rollback_request_session()
        if request.blueprint in PAGE_BLUEPRINTS:
            return add_secure_headers(page_error(exc))
        return add_secure_headers(problem_for(exc))

    app.teardown_request(lambda _exc: close_request_session())
    app.jinja_env.globals["csrf_token"] = csrf_token
