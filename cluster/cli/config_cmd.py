"""``tradewind config show|init``."""

from __future__ import annotations

import click

from cluster.cli.app import App, pass_app
from cluster.cli.first_run import CONFIG_FILE, write_initial_config
from cluster.cli.output import emit
from cluster.config import effective_settings
from cluster.errors import AlreadyExistsError


@click.group("config")
def config_group() -> None:
    """Inspect the effective settings, or write a first tradewind.toml."""


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


@config_group.command("init")
@click.option(
    "--force", is_flag=True, help="Replace an existing file (its old Fernet key is lost)."
)
@pass_app
def init(app: App, force: bool) -> None:
    """Write $TRADEWIND_HOME/tradewind.toml with a fresh Fernet key and secret key."""
    path = write_initial_config(app.home, written_by="tradewind config init", overwrite=force)
    if path is None:
        raise AlreadyExistsError(
            f"{app.home / CONFIG_FILE} exists: pass --force to replace it (values encrypted "
            "with its Fernet key can then no longer be read)"
        )
    click.echo(f"Wrote {path} with a new core.fernet_key and webserver.secret_key.")
    click.echo("A cluster needs the same keys on every node: copy them from this file.")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
