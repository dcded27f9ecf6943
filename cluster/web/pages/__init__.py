"""The server-rendered HTML pages of the web UI, one blueprint per area.

:func:`install_pages` registers them on the app with what every template shares:
the signed-in user, ``can(endpoint)`` (the permission table, so a page only offers
what the user may do), the date and duration filters, and HTML error pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from cluster.web.context import current_user
from cluster.web.pages import (
    admin,
    browse,
    cluster,
    dag_charts,
    dag_tabs,
    dags,
    login,
    runs,
    task_instances,
    users,
)
from cluster.web.pages.formatting import install_filters
from cluster.web.permissions import allows

BLUEPRINTS: tuple[Blueprint, ...] = (
    login.bp,
    dags.bp,
    dag_tabs.bp,
    dag_charts.bp,
    runs.bp,
    task_instances.bp,
    browse.bp,
    admin.bp,
    users.bp,
    cluster.bp,
)
#: blueprints whose errors are shown as HTML pages rather than JSON problems
PAGE_BLUEPRINTS: frozenset[str] = frozenset(bp.name for bp in BLUEPRINTS)


def can(endpoint: str) -> bool:
    """Whether the signed-in user's role may call ``endpoint`` (templates hide the rest)."""
    user = current_user()
    return user is not None and allows(user.role, endpoint)


def _shared() -> dict[str, Any]:
    return {"user": current_user()}


def install_pages(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.context_processor(_shared)
    app.jinja_env.globals["can"] = can
    install_filters(app)
