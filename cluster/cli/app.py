"""The per-process application context shared by every command.

Settings are loaded once, when a command first needs them; the metastore engine and
session factory are created from them on first use, so a usage error never touches the
database. (``tradewind version`` does not even import this module.)
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings, default_home, load_settings
from cluster.metastore.engine import create_engine_for, make_session_factory

P = ParamSpec("P")
R = TypeVar("R")


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
        """The settings. Commands that run user code or compute schedules also prepare the
        process for it (:func:`cluster.cli.user_code.with_user_code`)."""
        return load_settings(self._env)

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


def os_user() -> str | None:
    """The login name of whoever runs the command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return None
