"""Click parameter types shared by commands: ISO datetimes and JSON objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click


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
