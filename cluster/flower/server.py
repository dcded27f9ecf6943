"""Celery Flower in this process, configured from Tradewind's settings.

Flower is a Tornado application that watches the cluster through the same Celery app
the workers use (:func:`~cluster.executors.celery_app.build_celery_app`: every broker
node's URL, the same queues): it asks the workers over Celery's remote control
(``celery.worker_remote_control`` must be on) and follows their task events.

Its options are built here instead of parsed from a command line or a
``flowerconfig.py``, so what runs is what ``[flower]`` says: the address, port and
path prefix, and one of two sign-ins. ``basic`` hands ``flower.basic_auth`` to
Flower's own basic auth; ``webserver`` puts :class:`~cluster.flower.guard.UserGuard`
in front of every request (:class:`GuardedFlower`), so the webserver's Admin and Op
users sign in with their own passwords.
"""

from __future__ import annotations

import os
import types
from typing import Any

from celery import Celery
from flower.app import Flower
from flower.options import default_options
from flower.urls import settings as flower_settings
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

from cluster.config import FlowerSettings
from cluster.errors import ConfigError
from cluster.flower.guard import Refusal, Request, UserGuard

#: Flower's switch that opens its API to requests it did not authenticate itself
UNAUTHENTICATED_API = "FLOWER_UNAUTHENTICATED_API"
#: how to protect Flower, for the one line a refused start prints
HOW_TO_PROTECT = (
    'set [flower] auth = "webserver" (sign in as a webserver Admin or Op user) or '
    'auth = "basic" with basic_auth = ["user:password"] (TRADEWIND__FLOWER__AUTH, '
    "TRADEWIND__FLOWER__BASIC_AUTH): Flower can stop workers and revoke tasks"
)


def check_protection(settings: FlowerSettings) -> None:
    """:raises ConfigError: when Flower would start without a sign-in, in one line."""
    if not settings.auth:
        raise ConfigError(f"flower.auth is empty: {HOW_TO_PROTECT}")
    if settings.auth == "basic":
        if not settings.basic_auth:
            raise ConfigError(
                "flower.auth is basic but flower.basic_auth is empty: set [flower] "
                'basic_auth = ["user:password"] (or TRADEWIND__FLOWER__BASIC_AUTH)'
            )
        bad = [pair.split(":")[0] for pair in settings.basic_auth if ":" not in pair]
        if bad or any(not pair.partition(":")[2] for pair in settings.basic_auth):
            raise ConfigError("flower.basic_auth: give each entry as user:password")


def url_prefix(settings: FlowerSettings) -> str:
    """The path prefix without slashes (``/flower/`` → ``flower``)."""
    return settings.url_prefix.strip("/")


def flower_options(settings: FlowerSettings) -> types.SimpleNamespace:
    """Flower's options: its defaults, with ``[flower]``'s address, port, prefix and auth.

    Persistence stays off (Flower keeps its task history in memory; a restart starts
    afresh, as Airflow's ``celery flower`` does by default).
    """
    values: dict[str, Any] = dict(default_options.as_dict())
    values.update(
        address=settings.address,
        port=settings.port,
        url_prefix=url_prefix(settings),
        basic_auth=list(settings.basic_auth) if settings.auth == "basic" else [],
        auth="",
        unix_socket="",
        persistent=False,
        xheaders=settings.proxied,
        debug=False,
    )
    return types.SimpleNamespace(**values)


def tornado_settings(settings: FlowerSettings) -> dict[str, Any]:
    """Flower's Tornado settings (templates, static files, login URL) under the prefix."""
    values = dict(flower_settings)
    prefix = url_prefix(settings)
    if prefix:
        for name in ("login_url", "static_url_prefix"):
            values[name] = f"/{prefix}{values[name]}"
    return values


def open_api_to_guard() -> None:
    """Let Flower's API answer the requests :class:`UserGuard` let through.

    Flower's API handlers refuse every request unless Flower's own auth is configured
    or ``FLOWER_UNAUTHENTICATED_API`` is set; behind the guard no request reaches them
    unauthenticated, so the process sets it (Flower reads it per request). Call it
    from the entry point, only with ``flower.auth = webserver``.
    """
    os.environ[UNAUTHENTICATED_API] = "true"


class RefusedHandler(RequestHandler):
    """Answers a request the guard refused, whatever its method."""

    def initialize(self, refusal: Refusal) -> None:
        self.refusal = refusal

    def prepare(self) -> None:
        self.set_status(self.refusal.status)
        for name, value in self.refusal.headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self.refusal.message + "\n")


class GuardedFlower(Flower):
    """Flower whose every request passes :class:`UserGuard` first."""

    def __init__(self, guard: UserGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
        refusal = self.guard.refuse(
            Request(
                method=request.method or "GET",
                path=request.path,
                headers=request.headers,
                host=request.host,
                remote_ip=request.remote_ip or "unknown",
            )
        )
        if refusal is not None:
            return self.get_handler_delegate(request, RefusedHandler, {"refusal": refusal})
        return super().find_handler(request, **kwargs)


def build_flower(settings: FlowerSettings, celery_app: Celery, guard: UserGuard | None) -> Flower:
    """The Flower application, not yet listening (see :meth:`Flower.start_http_server`).

    :param guard: required when ``settings.auth`` is ``webserver``.
    :raises ConfigError: when Flower would be unprotected.
    """
    check_protection(settings)
    options = flower_options(settings)
    extra = tornado_settings(settings)
    if settings.auth == "webserver":
        if guard is None:
            raise ConfigError("flower.auth is webserver: Flower needs the metastore's users")
        return GuardedFlower(guard, capp=celery_app, options=options, **extra)
    return Flower(capp=celery_app, options=options, **extra)
