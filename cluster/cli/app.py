"""The per-process application context shared by every command.

Settings are loaded once, when a command first needs them (:class:`SettingsApp`); the
metastore engine and session factory are created from them on first use, so a usage
error never touches the database. (``tradewind version`` does not even import this
module, nor do the commands that only read: see :mod:`cluster.cli.settings_app`.)
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cluster.cli.settings_app import SettingsApp, passing
from cluster.metastore.engine import create_engine_for, make_session_factory

P = ParamSpec("P")
R = TypeVar("R")


class App(SettingsApp):
    """Lazily built settings and metastore access for one CLI process."""

    @functools.cached_property
    def engine(self) -> Engine:
        return create_engine_for(self.settings.metastore)

    @functools.cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)


def pass_app(func: Callable[Concatenate[App, P], R]) -> Callable[P, R]:
    """Give a click command the process's :class:`App` as its first argument."""
    return passing(App, func)


def os_user() -> str | None:
    """The login name of whoever runs the command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return None
