"""Connections to external systems; password and extra are Fernet-encrypted at rest.

Callers get frozen :class:`ConnectionRecord` values, never ORM rows, so a secret
cannot leak through a lazily loaded attribute; listings carry no secrets at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import AlreadyExistsError, NotFoundError
from cluster.metastore.models import Connection
from cluster.metastore.secrets import decrypt, encrypt


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """One connection; ``extra`` is the JSON text users give (``{"timeout": 5}``)."""

    conn_id: str
    conn_type: str
    description: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None

    def without_secrets(self) -> ConnectionRecord:
        return replace(self, password=None, extra=None)


def add_connection(record: ConnectionRecord, *, session: Session, fernet: MultiFernet) -> None:
    """:raises AlreadyExistsError: when ``record.conn_id`` is taken."""
    if session.get(Connection, record.conn_id) is not None:
        raise AlreadyExistsError(f"connection '{record.conn_id}' exists already (delete it first)")
    session.add(
        Connection(
            conn_id=record.conn_id,
            conn_type=record.conn_type,
            description=record.description,
            host=record.host,
            schema=record.schema,
            login=record.login,
            password=None if record.password is None else encrypt(fernet, record.password),
            port=record.port,
            extra=None if record.extra is None else encrypt(fernet, record.extra),
        )
    )
    session.flush()


def get_connection(conn_id: str, *, session: Session, fernet: MultiFernet) -> ConnectionRecord:
    """The connection with its password and extra decrypted.

    :raises NotFoundError: when no such connection exists.
    :raises SecretError: when the configured keys cannot decrypt it.
    """
    row = session.get(Connection, conn_id)
    if row is None:
        raise NotFoundError(f"connection '{conn_id}' does not exist")
    return replace(
        _record(row),
        password=None if row.password is None else decrypt(fernet, row.password),
        extra=None if row.extra is None else decrypt(fernet, row.extra),
    )


def delete_connection(conn_id: str, *, session: Session) -> None:
    """:raises NotFoundError: when no such connection exists."""
    row = session.get(Connection, conn_id)
    if row is None:
        raise NotFoundError(f"connection '{conn_id}' does not exist")
    session.delete(row)
    session.flush()


def list_connections(*, session: Session) -> list[ConnectionRecord]:
    """Every connection sorted by id, without password and extra."""
    rows = session.scalars(select(Connection).order_by(Connection.conn_id))
    return [_record(row) for row in rows]


def _record(row: Connection) -> ConnectionRecord:
    return ConnectionRecord(
        conn_id=row.conn_id,
        conn_type=row.conn_type,
        description=row.description,
        host=row.host,
        schema=row.schema,
        login=row.login,
        port=row.port,
    )
