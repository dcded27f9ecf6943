"""Printing listings as a table, JSON or YAML (``-o table|json|yaml`` on every listing).

JSON keys follow Airflow's CLI names (dag_id, run_id, task_id, state, ...), so scripts
written against Airflow's output keep working.

Rich (tables) and PyYAML are imported by name when their format is chosen, as the lazy
command groups import a command's module: ``-o json`` and ``-o plain``, which polling
scripts use, pay for neither (about 0.1 s of CPU together).

Rich draws the table only for a terminal and at most :data:`RICH_ROWS` rows. Measuring
its layout costs about 1.4 ms of CPU per row (``dags list`` of 1,000 DAGs: 1.7 s, of
which 0.3 s was the command's own work), and off a terminal it cuts every row to 80
columns (``/tmp/dags/my_d…``). Otherwise the table is fixed-width text, its columns as
wide as their widest value and separated as Airflow's ``-o table`` separates them
(``a | b`` under an ``==+==`` rule), never cut: ``grep`` and ``awk`` see whole values.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

FORMATS = ("table", "json", "yaml", "plain")
#: the most rows rich draws (on a terminal); more are written as fixed-width text
RICH_ROWS = 100

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
    cells = [[_cell(row.get(c)) for c in cols] for row in rows]
    if plain:
        if cells:
            click.echo("\n".join("\t".join(line) for line in cells))
    elif len(rows) <= RICH_ROWS and sys.stdout.isatty():
        table = importlib.import_module("rich.table").Table(
            *cols, show_lines=False, header_style="bold"
        )
        for line in cells:
            table.add_row(*line)
        importlib.import_module("rich.console").Console(soft_wrap=True).print(table)
    else:
        click.echo(fixed_width(cols, cells))


def fixed_width(columns: list[str], cells: list[list[str]]) -> str:
    """``columns`` over ``cells`` as text: each column as wide as its widest value, a
    ``|`` between columns and a ``=`` rule under the header; a value's line breaks
    become spaces, so one row stays one line."""
    cells = [[value.replace("\n", " ") for value in line] for line in cells]
    widths = [len(name) for name in columns]
    for line in cells:
        widths = [max(width, len(value)) for width, value in zip(widths, line, strict=True)]

    def row(values: list[str]) -> str:
        return " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    rule = "=+=".join("=" * width for width in widths)
    return "\n".join([row(columns), rule, *(row(line) for line in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
