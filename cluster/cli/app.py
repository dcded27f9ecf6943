"""The per-process application context shared by every command.

Settings are loaded once, when a command first needs them; the metastore engine and
session factory are created from them on first use, so ``tradewind version`` or a
usage error never touch the database.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings, default_home, load_settings
from cluster.dagfiles.environment import prepare_user_code
from cluster.metastore import migrate as schema
from cluster.metastore.audit import record_event
from cluster.metastore.engine import create_engine_for, make_session_factory, transaction

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class App:
    """Lazily built settings and metastore access for one CLI process."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env

    @functools.cached_property
    def home(self) -> Path:
        """``$TRADEWIND_HOME``, known before the settings (which live there) are read."""
        return default_home(os.environ if self._env is None else self._env)

    @functools.cached_property
    def settings(self) -> Settings:
        """The settings; the process is then also ready for user code (plugins loaded)."""
        settings = load_settings(self._env)
        prepare_user_code(settings)
        return settings

    @functools.cached_property
    def engine(self) -> Engine:
        return create_engine_for(self.settings.metastore)

    @functools.cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)


def pass_app(func: Callable[Concatenate[App, P], R]) -> Callable[P, R]:
    """Give a click command the process's :class:`App` as its first argument."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        app = ctx.find_object(App)
        if app is None:
            app = ctx.ensure_object(App)
        return func(app, *args, **kwargs)

    return wrapper


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


def os_user() -> str | None:
    """The login name of whoever runs the command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return None
