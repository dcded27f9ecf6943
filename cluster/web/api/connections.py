"""``/connections``: how DAGs reach other systems (Op and Admin only).

Passwords are write-only: the responses never carry them. A PATCH keeps every field
it does not name, the password included.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from cluster.errors import UsageError
from cluster.metastore import connections as store
from cluster.metastore.connections import ConnectionRecord
from cluster.metastore.models import Connection as ConnectionRow
from cluster.web.api.admin_schemas import (
    Connection,
    ConnectionBody,
    ConnectionCollection,
    ConnectionPatch,
)
from cluster.web.api.lookups import audit_api, paginate
from cluster.web.api.masks import masked
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import Ordered, UpdateMaskQuery
from cluster.web.context import db_session, web_context

routes = Routes("Connection")


def connection_model(record: ConnectionRecord, *, with_extra: bool = False) -> Connection:
    return Connection(
        connection_id=record.conn_id,
        conn_type=record.conn_type,
        description=record.description,
        host=record.host,
        login=record.login,
        schema=record.schema,
        port=record.port,
        extra=record.extra if with_extra else None,
    )


def _audit(event: str, conn_id: str) -> None:
    audit_api(f"connections.{event}", session=db_session(), conn_id=conn_id)


def _read(conn_id: str) -> Connection:
    record = store.get_connection(conn_id, session=db_session(), fernet=web_context().fernet())
    return connection_model(record, with_extra=True)


CONNECTION_ORDER = {
    "connection_id": ConnectionRow.conn_id,
    "conn_type": ConnectionRow.conn_type,
    "description": ConnectionRow.description,
    "host": ConnectionRow.host,
}


@routes.operation("/connections", "GET", query=Ordered, response=ConnectionCollection)
def get_connections(*, query: Ordered) -> ConnectionCollection:
    """List connections, without passwords and extras (by id, or ``order_by``)."""
    order = order_clauses(
        query.order_by, CONNECTION_ORDER, default="connection_id", tiebreak=ConnectionRow.conn_id
    )
    statement = select(ConnectionRow).order_by(*order)
    rows, total = paginate(db_session(), statement, query)
    items = [
        Connection(
            connection_id=r.conn_id,
            conn_type=r.conn_type,
            description=r.description,
            host=r.host,
            login=r.login,
            schema=r.schema,
            port=r.port,
            extra=None,
        )
        for r in rows
    ]
    return ConnectionCollection(connections=items, total_entries=total)


@routes.operation("/connections/<connection_id>", "GET", response=Connection)
def get_connection(connection_id: str) -> Connection:
    """One connection with its extra, never its password."""
    return _read(connection_id)


@routes.operation("/connections", "POST", body=ConnectionBody, response=Connection)
def post_connection(*, body: ConnectionBody) -> Connection:
    """Create a connection (409 when the id is taken)."""
    record = ConnectionRecord(
        conn_id=body.connection_id,
        conn_type=body.conn_type,
        description=body.description,
        host=body.host,
        schema=body.schema_,
        login=body.login,
        password=body.password,
        port=body.port,
        extra=body.extra,
    )
    store.add_connection(record, session=db_session(), fernet=web_context().fernet())
    _audit("add", body.connection_id)
    return _read(body.connection_id)


@routes.operation(
    "/connections/<connection_id>",
    "PATCH",
    query=UpdateMaskQuery,
    body=ConnectionPatch,
    response=Connection,
)
def patch_connection(
    connection_id: str, *, query: UpdateMaskQuery, body: ConnectionPatch
) -> Connection:
    """Change the fields given; the others, the password included, stay as they are. With
    ``update_mask``, only the fields it names change (``connection_id`` cannot)."""
    if body.connection_id is not None and body.connection_id != connection_id:
        raise UsageError("a connection cannot be renamed: the id in the body must match the path")
    session, fernet = db_session(), web_context().fernet()
    current = store.get_connection(connection_id, session=session, fernet=fernet)
    sent = body.model_dump(exclude_unset=True, exclude={"connection_id"}, by_alias=True)
    given = masked(query.update_mask, sent, updatable=set(sent))
    if given.get("conn_type") is None:
        given.pop("conn_type", None)
    updated = dataclasses.replace(current, **given)
    store.delete_connection(connection_id, session=session)
    store.add_connection(updated, session=session, fernet=fernet)
    _audit("update", connection_id)
    return _read(connection_id)


@routes.operation("/connections/<connection_id>", "DELETE", status=204)
def delete_connection(connection_id: str) -> None:
    """Delete a connection."""
    store.delete_connection(connection_id, session=db_session())
    _audit("delete", connection_id)
