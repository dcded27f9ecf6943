"""The per-process context of the commands that only read: settings, and reads through
the metastore's driver alone.

Apart from :mod:`cluster.cli.app` (which adds the SQLAlchemy engine and sessions) so
that ``tradewind dags state``, ``dags list``, ``tasks state`` and ``tasks
states-for-dag-run`` never import SQLAlchemy: scripts poll them, and importing it cost
those commands most of their second of CPU (see :mod:`cluster.metastore.dbapi`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import click

from cluster.config import Settings, default_home, load_settings
from cluster.metastore.dbapi import Reader, reading

P = ParamSpec("P")
R = TypeVar("R")
AppT = TypeVar("AppT", bound="SettingsApp")


class SettingsApp:
    """Lazily loaded settings for one CLI process, and driver-only metastore reads.

    :param env: the environment to read settings from (``os.environ`` when ``None``).
    """

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

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """One read transaction on a connection of its own (no engine, no pool)."""
        with reading(self.settings.metastore) as reader:
            yield reader


def pass_settings_app(func: Callable[Concatenate[SettingsApp, P], R]) -> Callable[P, R]:
    """Give a click command the process's :class:`SettingsApp` (or the full
    :class:`cluster.cli.app.App` a caller put in the context) as its first argument."""
    return passing(SettingsApp, func)


def passing(cls: type[AppT], func: Callable[Concatenate[AppT, P], R]) -> Callable[P, R]:
    """``func`` with the context's object of ``cls`` (created on first use) put first."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        app = ctx.find_object(cls)
        if app is None:
            app = ctx.ensure_object(cls)
        return func(app, *args, **kwargs)

    return wrapper
