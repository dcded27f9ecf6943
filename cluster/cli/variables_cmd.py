"""``tradewind variables``: get, set, delete, list, import and export variables.

Files use Airflow's format, one JSON object ``{key: value}``: string values are
stored as they are, any other JSON value is stored as its JSON text, and on export a
value that parses as JSON is written as JSON, so a file round-trips through Airflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.params import VERBOSE
from cluster.cli.secrets_cmd import fernet_for
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import NotFoundError, UsageError
from cluster.metastore.variables import (
    delete_variable,
    get_variable,
    list_variables,
    set_variable,
)

_ON_EXISTING = ("overwrite", "fail", "skip")


@click.group("variables")
def variables_group() -> None:
    """Manage variables (values are encrypted at rest)."""


@variables_group.command("get")
@click.argument("key")
@click.option("-d", "--default", "default", help="Print this when the variable does not exist.")
@click.option("-j", "--json", "as_json", is_flag=True, help="The value is JSON: print it as JSON.")
@pass_app
def get_command(app: App, key: str, default: str | None, as_json: bool) -> None:
    """Print the value of the variable KEY."""
    fernet = fernet_for(app)
    try:
        value = in_metastore(app, lambda s: get_variable(key, session=s, fernet=fernet))
    except NotFoundError:
        if default is None:
            raise
        value = default
    if as_json:
        value = json.dumps(_parse_json(value, f"variable '{key}'"), indent=2)
    click.echo(value)


@variables_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--description", help="What the variable is for.")
@click.option("-j", "--json", "as_json", is_flag=True, help="VALUE is JSON: check it first.")
@pass_app
def set_command(app: App, key: str, value: str, description: str | None, as_json: bool) -> None:
    """Create or replace the variable KEY."""
    if as_json:
        value = json.dumps(_parse_json(value, "VALUE"))
    fernet = fernet_for(app)

    def work(session: Session) -> None:
        set_variable(key, value, session=session, fernet=fernet, description=description)
        audit(session, "cli.variables.set", key=key)

    in_metastore(app, work)
    click.echo(f"Variable '{key}' set.")


@variables_group.command("delete")
@click.argument("key")
@pass_app
def delete_command(app: App, key: str) -> None:
    """Delete the variable KEY."""

    def work(session: Session) -> None:
        delete_variable(key, session=session)
        audit(session, "cli.variables.delete", key=key)

    in_metastore(app, work)
    click.echo(f"Variable '{key}' deleted.")


@variables_group.command("list")
@output_option
@pass_app
def list_command(app: App, output: str) -> None:
    """List the variables' keys (never their values: they may be secrets)."""
    infos = in_metastore(app, lambda s: list_variables(session=s))
    emit([{"key": info.key} for info in infos], output, columns=["key"])


@variables_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-a",
    "--action-on-existing-key",
    type=click.Choice(_ON_EXISTING),
    default="overwrite",
    show_default=True,
    help="What to do with a key that exists already.",
)
@VERBOSE
@pass_app
def import_command(app: App, file: Path, action_on_existing_key: str) -> None:
    """Set every variable in FILE, a JSON object {key: value}, in one transaction."""
    values = _read_variables_file(file)
    fernet = fernet_for(app)

    def work(session: Session) -> int:
        existing = {info.key for info in list_variables(session=session)}
        clash = sorted(existing.intersection(values))
        if clash and action_on_existing_key == "fail":
            raise UsageError(f"{file}: variables exist already: {', '.join(clash)}")
        written = 0
        for key, value in values.items():
            if key in existing and action_on_existing_key == "skip":
                continue
            set_variable(key, value, session=session, fernet=fernet)
            written += 1
        audit(session, "cli.variables.import", file=str(file), keys=written)
        return written

    written = in_metastore(app, work)
    click.echo(f"{written} of {len(values)} variables imported from {file}.")


@variables_group.command("export")
@click.argument(
    "file", type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path)
)
@VERBOSE
@pass_app
def export_command(app: App, file: Path) -> None:
    """Write every variable to FILE as a JSON object {key: value} (values in clear).

    FILE ``-`` is standard output, as with Airflow's ``argparse.FileType``.
    """
    fernet = fernet_for(app)

    def work(session: Session) -> dict[str, Any]:
        keys = [info.key for info in list_variables(session=session)]
        values = {k: _exported(get_variable(k, session=session, fernet=fernet)) for k in keys}
        audit(session, "cli.variables.export", file=str(file), keys=len(values))
        return values

    values = in_metastore(app, work)
    text = json.dumps(values, indent=4, sort_keys=True) + "\n"
    if str(file) == "-":
        click.echo(text, nl=False)
        return
    try:
        file.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {file}: {exc.strerror}") from exc
    click.echo(f"{len(values)} variables exported to {file}.")


def _read_variables_file(file: Path) -> dict[str, str]:
    """The file's variables as the strings to store.

    :raises UsageError: when the file is unreadable, not JSON or not one object.
    """
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{file} must hold one JSON object {{key: value}}")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def _exported(value: str) -> Any:
    """A stored value as Airflow exports it: parsed when it is JSON, else the string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc
