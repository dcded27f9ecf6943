"""A command's change to the metastore: one transaction on a schema at this code's
revision, with an audit row naming the operating-system user who made it.

Apart from :mod:`cluster.cli.app` because checking the schema loads Alembic, which
the commands that only read (``dags list``, ``tasks states-for-dag-run``) do without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from cluster.cli.app import App, os_user
from cluster.metastore import migrate as schema
from cluster.metastore.audit import record_event
from cluster.metastore.engine import transaction

T = TypeVar("T")


def in_metastore(app: App, work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in one transaction on a metastore at the head revision.

    ``work`` may run more than once (the transaction retries deadlocks), so it must
    not print: print its result after this returns.

    :raises MigrationError: when the schema is missing or old, telling the user to run
        ``tradewind db migrate``.
    """
    schema.check(app.engine)
    return transaction(app.session_factory, work)


def audit(session: Session, event: str, **extra: Any) -> None:
    """Record a change made from the CLI, by the operating-system user who made it."""
    record_event(event, session=session, username=os_user(), extra=extra or None)
