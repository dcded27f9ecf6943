"""``tradewind connections``: add, get, delete and list connections.

A connection is given either field by field (``--conn-type``, ``--conn-host``, ...) or
as one URI parsed the way Airflow parses it (:func:`parse_conn_uri`). Nothing this
module prints carries a password: ``get`` shows ``***`` instead, and masks the keys of
``extra`` that name a secret, as Airflow's secrets masker does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
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

MASK = "***"
#: the query parameter whose value is the whole ``extra`` JSON (Airflow's ``__extra__``)
EXTRA_KEY = "__extra__"
#: ``extra`` keys containing one of these words are masked in output
SENSITIVE_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key")
COLUMNS = ["conn_id", "conn_type", "description", "host", "schema", "login", "port"]
_FIELD_OPTIONS = ("type", "host", "login", "password", "schema", "port", "extra")


def parse_conn_uri(conn_id: str, uri: str) -> ConnectionRecord:
    """Parse ``scheme://login:password@host:port/schema?k=v`` like Airflow's ``Connection``.

    Dashes in the scheme become underscores and ``postgresql`` becomes ``postgres``; a
    second ``scheme://`` keeps the host's own protocol (``http://https://host``).
    Query parameters become the ``extra`` JSON object, unless one named ``__extra__``
    holds the JSON text itself.

    :raises UsageError: for a URI without a scheme, with three schemes, or a bad port.
    """
    schemes = uri.count("://")
    scheme, _, rest = uri.partition("://")
    if schemes == 0 or schemes > 2 or not scheme:
        raise UsageError(f"invalid connection URI '{_mask_uri(uri)}': expected scheme://...")
    parts = urlsplit(rest if schemes == 2 else f"//{rest}")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"invalid connection URI '{_mask_uri(uri)}': {exc}") from exc
    host = _hostname(parts)
    if schemes == 2 and host:
        host = f"{parts.scheme}://{host}"
    return ConnectionRecord(
        conn_id=conn_id,
        conn_type=_conn_type(scheme.lower()),
        host=host or None,
        schema=unquote(parts.path[1:]) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        port=port,
        extra=_extra_from_query(parts.query),
    )


def _hostname(parts: SplitResult) -> str:
    """The host as Airflow reads it: lower-cased, unless quoted with a ``/`` inside."""
    hostname = unquote(parts.hostname or "")
    if "/" in hostname:  # a socket path such as %2Ftmp%2Fmysql.sock keeps its case
        hostname = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


def _conn_type(scheme: str) -> str:
    conn_type = scheme.replace("-", "_")
    return "postgres" if conn_type == "postgresql" else conn_type


def _extra_from_query(query: str) -> str | None:
    if not query:
        return None
    params = dict(parse_qsl(query, keep_blank_values=True))
    if EXTRA_KEY in params:
        return check_extra(params[EXTRA_KEY])
    return json.dumps(params)


def check_extra(extra: str) -> str:
    """:raises UsageError: unless ``extra`` is the JSON text of an object."""
    try:
        parsed = json.loads(extra)
    except ValueError as exc:
        raise UsageError(f"connection extra is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise UsageError('connection extra must be a JSON object, e.g. {"timeout": 5}')
    return extra


def masked(record: ConnectionRecord) -> dict[str, Any]:
    """The record as output rows show it: password as ``***``, secret extra keys masked."""
    row = asdict(record)
    if record.password is not None:
        row["password"] = MASK
    if record.extra is not None:
        row["extra"] = _masked_extra(json.loads(record.extra))
    return row


def _masked_extra(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if _sensitive(k) else _masked_extra(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_extra(v) for v in value]
    return value


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


def _mask_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    return uri.replace(f":{parts.password}@", f":{MASK}@", 1)


@click.group("connections")
def connections_group() -> None:
    """Manage connections (passwords and extras are encrypted at rest)."""


@connections_group.command("add")
@click.argument("conn_id")
@click.option("--conn-uri", help="The whole connection as scheme://login:password@host:port/schema")
@click.option("--conn-type", help="Connection type (postgres, http, ...); required without URI.")
@click.option("--conn-host")
@click.option("--conn-login")
@click.option("--conn-password")
@click.option("--conn-schema")
@click.option("--conn-port", type=click.IntRange(min=0, max=65535))
@click.option("--conn-extra", help="Extra settings as a JSON object.")
@click.option("--conn-description")
@pass_app
def add_command(app: App, conn_id: str, conn_uri: str | None, **fields: Any) -> None:
    """Add the connection CONN_ID, from --conn-uri or from --conn-type and its fields."""
    record = _record_from_options(conn_id, conn_uri, fields)
    fernet = fernet_for(app)

    def work(session: Session) -> None:
        add_connection(record, session=session, fernet=fernet)
        audit(session, "cli.connections.add", conn_id=conn_id, conn_type=record.conn_type)

    in_metastore(app, work)
    click.echo(f"Successfully added `conn_id`={conn_id} of type {record.conn_type}.")


def _record_from_options(
    conn_id: str, conn_uri: str | None, fields: dict[str, Any]
) -> ConnectionRecord:
    """Build the record from either the URI or the field options, never both.

    :raises UsageError: when both or neither are given, or the extra is not JSON.
    """
    description = fields.pop("conn_description")
    if conn_uri is not None:
        clashing = [f"--conn-{name}" for name in _FIELD_OPTIONS if fields[f"conn_{name}"]]
        if clashing:
            raise UsageError(f"--conn-uri cannot be combined with {', '.join(clashing)}")
        record = parse_conn_uri(conn_id, conn_uri)
        return ConnectionRecord(**{**asdict(record), "description": description})
    if not fields["conn_type"]:
        raise UsageError("give --conn-type (with --conn-host, ...) or --conn-uri")
    extra = fields["conn_extra"]
    return ConnectionRecord(
        conn_id=conn_id,
        conn_type=fields["conn_type"],
        description=description,
        host=fields["conn_host"],
        schema=fields["conn_schema"],
        login=fields["conn_login"],
        password=fields["conn_password"],
        port=fields["conn_port"],
        extra=None if extra is None else check_extra(extra),
    )


@connections_group.command("get")
@click.argument("conn_id")
@output_option
@pass_app
def get_command(app: App, conn_id: str, output: str) -> None:
    """Show the connection CONN_ID, its password masked."""
    fernet = fernet_for(app)
    record = in_metastore(app, lambda s: get_connection(conn_id, session=s, fernet=fernet))
    emit(masked(record), output, columns=[*COLUMNS, "password", "extra"])


@connections_group.command("delete")
@click.argument("conn_id")
@pass_app
def delete_command(app: App, conn_id: str) -> None:
    """Delete the connection CONN_ID."""

    def work(session: Session) -> None:
        delete_connection(conn_id, session=session)
        audit(session, "cli.connections.delete", conn_id=conn_id)

    in_metastore(app, work)
    click.echo(f"Successfully deleted connection with `conn_id`={conn_id}.")


@connections_group.command("list")
@output_option
@pass_app
def list_command(app: App, output: str) -> None:
    """List the connections, without passwords and extras."""
    records = in_metastore(app, lambda s: list_connections(session=s))
    rows = [{c: getattr(r, c) for c in COLUMNS} for r in records]
    emit(rows, output, columns=COLUMNS)
