"""Reading a page request: who acts, which page of a list, which boxes are ticked.

Every HTML view shares these small steps, so each view reads as the happy path:
load, decide, render (or act, flash, redirect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request, url_for

from cluster.actions import Actor
from cluster.metastore import audit
from cluster.web.context import db_session, require_user
from cluster.web.pages.login import safe_next

#: the audit log's source of actions taken in the web UI
WEB_SOURCE = "web"
#: rows per page of the long lists (runs, task instances, audit log)
PER_PAGE = 50
MAX_PAGE = 100_000
_TRUE = frozenset({"1", "on", "true", "yes"})


def web_actor() -> Actor:
    """The signed-in user, as the audit log records actions taken in the web UI."""
    return Actor(require_user().username, source=WEB_SOURCE)


def audit_web(event: str, **extra: object) -> None:
    """Record ``web.<event>`` by the signed-in user in the request's transaction.

    The row commits with the change it describes, or not at all when the request fails.
    """
    actor = web_actor()
    audit.record_event(
        f"{actor.source}.{event}", session=db_session(), username=actor.username, extra=extra
    )


def checked(name: str) -> bool:
    """Whether a checkbox (or ``?name=1``) is set in the query string or the form."""
    return request.values.get(name, "").lower() in _TRUE


def text(name: str) -> str | None:
    """A stripped form or query value; ``None`` when it is absent or blank."""
    value = request.values.get(name, "").strip()
    return value or None


def back_to(default: str) -> str:
    """Where to go after an action: the form's ``next`` (a path on this site) or ``default``."""
    target = request.values.get("next")
    return safe_next(target) if target else default


@dataclass(frozen=True)
class Pager:
    """One page of a list read with ``LIMIT per_page + 1``: no ``COUNT(*)`` over big tables."""

    page: int
    per_page: int = PER_PAGE
    has_next: bool = False

    @classmethod
    def from_request(cls, per_page: int = PER_PAGE) -> Pager:
        try:
            page = int(request.args.get("page", "1"))
        except ValueError:
            page = 1
        return cls(page=min(max(page, 1), MAX_PAGE), per_page=per_page)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def fetch(self) -> int:
        """How many rows to ask for: one more than a page tells whether a next page exists."""
        return self.per_page + 1

    def trim(self, rows: list[Any]) -> tuple[list[Any], Pager]:
        """The page's rows, and this pager knowing whether a next page exists."""
        more = len(rows) > self.per_page
        return rows[: self.per_page], Pager(self.page, self.per_page, more)

    def url(self, page: int) -> str:
        """This list's URL with the same filters, on ``page``."""
        args: dict[str, Any] = {**request.args.to_dict(), "page": page}
        return url_for(str(request.endpoint), **(request.view_args or {}), **args)

    @property
    def prev_url(self) -> str | None:
        return self.url(self.page - 1) if self.page > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.page + 1) if self.has_next else None
