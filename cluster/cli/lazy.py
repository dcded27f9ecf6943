"""Command groups whose subcommands are imported only when one of them is resolved.

This is click's documented lazy-loading pattern: a group knows each subcommand by
name, the module that defines it and the first paragraph of its help. Resolving a
subcommand imports that one module (by name, with :mod:`importlib`), so ``tradewind
version`` loads no SQLAlchemy and ``tradewind dags state`` no web app or scheduler:
each command pays for its own imports only (a CLI call cost 1.2 s of CPU when every
command imported everything). ``--help`` lists every subcommand from the table,
importing none of them; ``tests/unit/cli/test_cli_lazy.py`` checks that the table says
what each command's own help says, so the listing cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """Where a subcommand lives, and the first paragraph of its help (for listings)."""

    module: str
    attribute: str
    help: str


class LazyGroup(click.Group):
    """A :class:`click.Group` whose ``lazy`` subcommands are imported on resolution.

    :param lazy: subcommand name → :class:`Lazy`; eager subcommands may be added as
        usual with :meth:`add_command`.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):  # a wrong table entry: a bug, not a user error
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with each lazy subcommand's short help taken from the table.

        A placeholder command carries the table's help, so click shortens it exactly as
        it shortens the real command's.
        """
        commands = [(name, self._listed(ctx, name)) for name in self.list_commands(ctx)]
        shown = [(name, cmd) for name, cmd in commands if cmd is not None and not cmd.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        rows = [(name, cmd.get_short_help_str(limit)) for name, cmd in shown]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _listed(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self.lazy.get(name)
        if entry is None:
            return super().get_command(ctx, name)
        return click.Command(name, help=entry.help)
