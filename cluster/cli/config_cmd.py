"""``tradewind config show`` and ``tradewind version``."""

from __future__ import annotations

import click

from cluster import __version__
from cluster.cli.app import App, pass_app
from cluster.cli.output import emit
from cluster.config import effective_settings


@click.group("config")
def config_group() -> None:
    """Inspect the effective settings."""


@config_group.command("show")
@click.option("-o", "--output", type=click.Choice(["toml", "json", "yaml"]), default="toml")
@click.option("--section", help="Only this section.")
@pass_app
def show(app: App, output: str, section: str | None) -> None:
    """Print every setting after defaults, tradewind.toml and environment; secrets masked."""
    values = effective_settings(app.settings)
    if section is not None:
        if section not in values:
            raise click.BadParameter(f"unknown section '{section}'", param_hint="--section")
        values = {section: values[section]}
    if output != "toml":
        emit(values, output)
        return
    for name, items in values.items():
        click.echo(f"[{name}]")
        for key, value in items.items():
            click.echo(f"{key} = {_toml_value(value)}")
        click.echo()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@click.command()
def version() -> None:
    """Print Tradewind's version."""
    click.echo(__version__)
