"""Connections files in Airflow's formats, for ``tradewind connections import|export``.

An operator moving from Airflow keeps the files ``airflow connections export`` wrote
and the scripts that read them, so both directions follow Airflow 2.10's
``connection_command`` and ``secrets.local_filesystem``: JSON and YAML hold
``{conn_id: {conn_type, description, login, password, host, port, schema, extra}}``
(a value may also be a URI string, and ``extra_dejson`` an object instead of
``extra``); ``.env`` holds ``conn_id=URI`` or ``conn_id=<the same JSON object>``.

The commands join the group of :mod:`cluster.cli.connections_cmd` here, and the CLI's
lazy table names this module, so the group is complete whenever it is resolved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click
import yaml
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.connections_cmd import EXTRA_KEY, check_extra, connections_group, parse_conn_uri
from cluster.cli.params import VERBOSE
from cluster.cli.secrets_cmd import fernet_for
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import UsageError
from cluster.metastore.connections import (
    ConnectionRecord,
    add_connection,
    delete_connection,
    get_connection,
    list_connections,
)
from cluster.metastore.models import Connection

__all__ = ["connections_group"]

FILE_FORMATS = ("json", "yaml", "env")
#: the keys Airflow's ``Connection(...)`` accepts in a file, plus ``extra_dejson``
_KEYS = {
    "conn_id",
    "conn_type",
    "description",
    "host",
    "login",
    "password",
    "schema",
    "port",
    "extra",
    "extra_dejson",
    "uri",
}


def file_format(path: Path, given: str | None) -> str:
    """The format named by ``--file-format``, else by the file's extension (Airflow's rule).

    :raises UsageError: for an extension Airflow would refuse too.
    """
    if given:
        return given.lower()
    suffix = path.suffix.lower().lstrip(".")
    suffix = "yaml" if suffix == "yml" else suffix
    if suffix not in FILE_FORMATS:
        raise UsageError(f"{path}: unsupported file format; use a .json, .yaml or .env file")
    return suffix


def read_connections(path: Path) -> dict[str, ConnectionRecord]:
    """Every connection the file defines.

    :raises UsageError: when the file is unreadable, malformed or names unknown keys.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    kind = file_format(path, None)
    if kind == "env":
        data: Any = _parse_env(path, text)
    else:
        try:
            data = json.loads(text) if kind == "json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise UsageError(f"{path} is not valid {kind.upper()}: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} must hold one object {{conn_id: connection}}")
    return {str(k): _record(path, str(k), v) for k, v in data.items()}


def _parse_env(path: Path, text: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{path}:{number}: expected CONN_ID=URI or CONN_ID=JSON")
        value = value.strip()
        data[key.strip()] = json.loads(value) if value.startswith("{") else value
    return data


def _record(path: Path, conn_id: str, value: Any) -> ConnectionRecord:
    if isinstance(value, str):
        return parse_conn_uri(conn_id, value)
    if not isinstance(value, dict):
        raise UsageError(f"{path}: connection '{conn_id}' must be a URI or an object")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise UsageError(f"{path}: connection '{conn_id}' has unknown keys: {', '.join(unknown)}")
    if "extra" in value and "extra_dejson" in value:
        raise UsageError(f"{path}: connection '{conn_id}' has both extra and extra_dejson")
    if value.get("conn_id", conn_id) != conn_id:
        raise UsageError(f"{path}: connection '{conn_id}' names conn_id '{value['conn_id']}'")
    if value.get("uri"):
        return parse_conn_uri(conn_id, value["uri"])
    extra = value.get("extra_dejson", value.get("extra"))
    if extra is not None and not isinstance(extra, str):
        extra = json.dumps(extra)
    if not value.get("conn_type"):
        raise UsageError(f"{path}: connection '{conn_id}' has no conn_type")
    port = value.get("port")
    return ConnectionRecord(
        conn_id=conn_id,
        conn_type=value["conn_type"],
        description=value.get("description"),
        host=value.get("host"),
        schema=value.get("schema"),
        login=value.get("login"),
        password=value.get("password"),
        port=None if port in (None, "") else int(port),
        extra=None if extra in (None, "") else check_extra(extra),
    )


def as_dict(record: ConnectionRecord) -> dict[str, Any]:
    """One connection as Airflow's ``_connection_to_dict`` writes it (extra as JSON text)."""
    return {
        "conn_type": record.conn_type,
        "description": record.description,
        "login": record.login,
        "password": record.password,
        "host": record.host,
        "port": record.port,
        "schema": record.schema,
        "extra": record.extra,
    }


def as_uri(record: ConnectionRecord) -> str:
    """The record as Airflow's ``Connection.get_uri`` writes it (extra in ``__extra__``)."""
    uri = f"{record.conn_type.lower().replace('_', '-')}://"
    host = record.host or ""
    if "://" in host:
        protocol, host = host.split("://", 1)
        uri += f"{protocol}://"
    auth = quote(record.login, safe="") if record.login else ""
    if record.password:
        auth += ":" + quote(record.password, safe="")
    uri += f"{auth}@" if auth else ""
    uri += quote(host, safe="")
    uri += f":{record.port}" if record.port else ""
    uri += f"/{quote(record.schema, safe='')}" if record.schema else ""
    if record.extra:
        uri += ("?" if record.schema else "/?") + urlencode({EXTRA_KEY: record.extra})
    return uri


def render(records: list[ConnectionRecord], kind: str, serialization: str) -> str:
    """The file's text, as ``airflow connections export`` writes it for ``kind``."""
    if kind == "env":
        lines = [
            f"{r.conn_id}={json.dumps(as_dict(r)) if serialization == 'json' else as_uri(r)}"
            for r in records
        ]
        return "".join(f"{line}\n" for line in lines)
    data = {r.conn_id: as_dict(r) for r in records}
    if kind == "yaml":
        return str(yaml.safe_dump(data))
    return json.dumps(data, indent=2)


@connections_group.command("import")
@click.argument("file", metavar="FILEPATH", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace connections that exist already.")
@VERBOSE
@pass_app
def import_command(app: App, file: Path, overwrite: bool) -> None:
    """Add the connections of FILEPATH (.json, .yaml or .env, Airflow's formats)."""
    records = read_connections(file)
    fernet = fernet_for(app)

    def work(session: Session) -> list[tuple[str, bool]]:
        done = []
        for conn_id, record in records.items():
            exists = session.get(Connection, conn_id) is not None
            if exists and not overwrite:
                done.append((conn_id, False))
                continue
            if exists:
                delete_connection(conn_id, session=session)
            add_connection(record, session=session, fernet=fernet)
            done.append((conn_id, True))
        audit(session, "cli.connections.import", file=str(file), imported=sum(d for _, d in done))
        return done

    for conn_id, imported in in_metastore(app, work):
        if imported:
            click.echo(f"Imported connection {conn_id}")
        else:
            click.echo(f"Could not import connection {conn_id}: connection already exists.")


@connections_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--file-format", "--format", "kind", type=click.Choice(FILE_FORMATS))
@click.option(
    "--serialization-format",
    type=click.Choice(["uri", "json"], case_sensitive=False),
    help="How .env files write each connection (default uri).",
)
@VERBOSE
@pass_app
def export_command(
    app: App, file: Path, kind: str | None, serialization_format: str | None
) -> None:
    """Write every connection to FILE in clear, as ``airflow connections export`` does."""
    stdout = str(file) == "-"
    kind = "json" if stdout and not kind else file_format(file, kind)
    if serialization_format and kind != "env":
        raise UsageError("--serialization-format may only be used with file type env")
    fernet = fernet_for(app)

    def work(session: Session) -> list[ConnectionRecord]:
        ids = [r.conn_id for r in list_connections(session=session)]
        audit(session, "cli.connections.export", file=str(file), connections=len(ids))
        return [get_connection(i, session=session, fernet=fernet) for i in ids]

    records = in_metastore(app, work)
    text = render(records, kind, (serialization_format or "uri").lower())
    if stdout:
        click.echo(text, nl=False)
        return
    try:
        file.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {file}: {exc.strerror}") from exc
    click.echo(f"Connections successfully exported to {file}.")
