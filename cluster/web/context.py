"""What every request of one web application shares: settings, the metastore, the user.

The application factory builds one :class:`WebContext` and stores it on the Flask app;
views reach it through :func:`web_context`. Each request gets its own metastore session
(:func:`db_session`), opened on first use and committed when the request ends, so the
request owns its transaction and views never commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from cryptography.fernet import MultiFernet
from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.secrets import make_fernet
from cluster.web.credentials import CredentialCache
from cluster.web.throttle import LoginThrottle
from cluster.web.view_cache import ViewCache

EXTENSION = "tradewind"


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """Who sent the request and how they proved it (``session``, ``basic`` or ``token``)."""

    id: int
    username: str
    role: str
    via: str


@dataclass
class WebContext:
    """The per-process state of the web application (one per :func:`create_app`)."""

    settings: Settings
    engine: Engine
    session_factory: SessionFactory
    throttle: LoginThrottle
    clock: Callable[[], datetime]
    #: API credentials verified a moment ago (:mod:`cluster.web.credentials`)
    credentials: CredentialCache[CurrentUser] = field(default_factory=CredentialCache)
    #: ``GET /api/v1/dags`` answers by query, reused while their rows are unchanged
    dag_list_views: ViewCache[bytes] = field(default_factory=ViewCache)
    #: the DAGs page's table by filters and role (:mod:`cluster.web.pages.dags`)
    dags_page_views: ViewCache[Any] = field(default_factory=ViewCache)
    #: the grid's rows per DAG (:class:`cluster.web.grid_shape.GridShape`), reused while
    #: its fingerprint is unchanged; a 10,000-task DAG's take about 5 MB, hence few
    grid_shapes: ViewCache[Any] = field(default_factory=lambda: ViewCache(max_entries=16))
    _fernet: MultiFernet | None = field(default=None, repr=False)

    def fernet(self) -> MultiFernet:
        """The cipher for variables and connections, built on first use.

        :raises SecretError: when ``core.fernet_key`` is missing or malformed; only the
            endpoints that touch secrets fail then, not the whole webserver.
        """
        if self._fernet is None:
            self._fernet = make_fernet(self.settings.core.fernet_key)
        return self._fernet


def web_context() -> WebContext:
    return cast(WebContext, current_app.extensions[EXTENSION])


def db_session() -> Session:
    """The request's metastore session, opened on first use."""
    if "db_session" not in g:
        g.db_session = web_context().session_factory()
    return cast(Session, g.db_session)


def commit_request_session() -> None:
    """Commit the request's work; called once the view has produced its response."""
    session = g.get("db_session")
    if session is not None:
        session.commit()


def rollback_request_session() -> None:
    """Undo the request's work after an error, so nothing half-done is committed."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()


def close_request_session() -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def current_user() -> CurrentUser | None:
    """The authenticated user of this request, or ``None`` for anonymous requests."""
    return cast(CurrentUser | None, g.get("user"))


def require_user() -> CurrentUser:
    """The authenticated user; views behind the permission table always have one."""
    user = current_user()
    if user is None:  # pragma: no cover - the permission check runs first
        raise RuntimeError("view reached without an authenticated user")
    return user
