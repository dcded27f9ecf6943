"""Printing listings as a table, JSON or YAML (``-o table|json|yaml`` on every listing).

JSON keys follow Airflow's CLI names (dag_id, run_id, task_id, state, ...), so scripts
written against Airflow's output keep working.

Rich (tables) and PyYAML are imported by name when their format is chosen, as the lazy
command groups import a command's module: ``-o json`` and ``-o plain``, which polling
scripts use, pay for neither (about 0.1 s of CPU together).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

FORMATS = ("table", "json", "yaml", "plain")

F = TypeVar("F", bound=Callable[..., Any])


def output_option(func: F) -> F:
    """The ``-o/--output`` option shared by every listing command."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def emit(data: Any, fmt: str, *, columns: Sequence[str] | None = None) -> None:
    """Print ``data`` (a list of dicts, or one dict) in the chosen format."""
    data = _plain(data)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        yaml = importlib.import_module("yaml")
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    else:
        rows = data if isinstance(data, list) else [data]
        _print_table(rows, columns, plain=fmt == "plain")


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str] | None, *, plain: bool) -> None:
    if not rows and not columns:
        click.echo("No data found")
        return
    cols = list(columns or rows[0].keys())
    if plain:
        for row in rows:
            click.echo("\t".join(_cell(row.get(c)) for c in cols))
        return
    table = importlib.import_module("rich.table").Table(
        *cols, show_lines=False, header_style="bold"
    )
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    importlib.import_module("rich.console").Console(soft_wrap=True).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
