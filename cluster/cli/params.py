"""Click parameter types and options shared by commands: ISO datetimes, JSON objects,
and the Airflow flags that scripts pass (so their lines work unchanged)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class DateTimeType(click.ParamType):
    """An ISO date or datetime; a value without a zone is UTC."""

    name = "datetime"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO date or datetime (e.g. 2024-01-31 or 2024-01-31T06:00)",
                param,
                ctx,
            )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class JsonObjectType(click.ParamType):
    """A JSON object given on the command line."""

    name = "json"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)
        if not isinstance(parsed, dict):
            self.fail('must be a JSON object, like \'{"key": "value"}\'', param, ctx)
        return parsed


DATETIME = DateTimeType()
JSON_OBJECT = JsonObjectType()

#: Airflow's ``-v/--verbose``, accepted on the commands scripts call so their lines work
#: unchanged; Tradewind's commands print the same either way.
VERBOSE = click.option(
    "-v", "--verbose", is_flag=True, expose_value=False, help="Accepted for Airflow's scripts."
)

#: Airflow's ``-S/--subdir``: Tradewind reads DAGs from its configured folder and the
#: metastore, so the flag is accepted (scripts pass it) and has no effect.
SUBDIR = click.option(
    "-S",
    "--subdir",
    expose_value=False,
    metavar="PATH",
    help="Accepted for Airflow's scripts; DAGs come from dags_folder.",
)

#: Airflow's ``--map-index`` of the task-instance commands: -1 for an unmapped task. ``-m``
#: is Tradewind's own short form (Airflow's ``tasks run -m`` is ``--mark-success``, which
#: Tradewind does not have: such a line fails with one error instead of misbehaving).
MAP_INDEX = click.option(
    "-m",
    "--map-index",
    type=click.IntRange(min=-1),
    default=-1,
    show_default=True,
    help="The index of a mapped task instance.",
)


def accepted_flags(*flags: tuple[str, ...]) -> Callable[[F], F]:
    """Airflow flags a script may pass that change nothing here (each one's reason is in
    the command's docstring), accepted so the script's line works unchanged."""

    def decorate(func: F) -> F:
        for decls in reversed(flags):
            func = click.option(
                *decls, is_flag=True, expose_value=False, help="Accepted for Airflow's scripts."
            )(func)
        return func

    return decorate
