"""``/users`` (Admin only) and ``/eventLogs``, the audit log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, select

from cluster.errors import NotFoundError, UsageError
from cluster.metastore import users as store
from cluster.metastore.models import AuditLog
from cluster.metastore.models import User as UserRow
from cluster.web.api.admin_schemas import (
    EventLog,
    EventLogCollection,
    EventLogListQuery,
    NewUser,
    RoleName,
    User,
    UserCollection,
    UserPatch,
)
from cluster.web.api.lookups import audit_api, paginate
from cluster.web.api.masks import masked
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import Ordered, UpdateMaskQuery
from cluster.web.context import db_session, require_user

user_routes = Routes("User")
event_log_routes = Routes("EventLog")

USER_ORDER = {
    "username": UserRow.username,
    "email": UserRow.email,
    "active": UserRow.active,
    "created_on": UserRow.created_at,
    "last_login": UserRow.last_login,
    "failed_login_count": UserRow.failed_logins,
}
EVENT_LOG_ORDER = {
    "event_log_id": AuditLog.id,
    "id": AuditLog.id,
    "when": AuditLog.ts,
    "dttm": AuditLog.ts,
    "event": AuditLog.event,
    "owner": AuditLog.username,
    "dag_id": AuditLog.dag_id,
    "run_id": AuditLog.run_id,
    "task_id": AuditLog.task_id,
}


def user_model(record: store.UserRecord) -> User:
    return User(
        username=record.username,
        email=record.email,
        roles=[RoleName(name=record.role)],
        active=record.active,
        created_on=record.created_at,
        last_login=record.last_login,
        failed_login_count=record.failed_logins,
        locked_until=record.locked_until,
    )


@user_routes.operation("/users", "GET", query=Ordered, response=UserCollection)
def get_users(*, query: Ordered) -> UserCollection:
    """List users (never their passwords or tokens), by name (or ``order_by``)."""
    order = order_clauses(query.order_by, USER_ORDER, default="username", tiebreak=UserRow.id)
    statement = select(UserRow.username).order_by(*order)
    session = db_session()
    names, total = paginate(session, statement, query)
    items = [user_model(store.get_user(name, session=session)) for name in names]
    return UserCollection(users=items, total_entries=total)


@user_routes.operation("/users/<username>", "GET", response=User)
def get_user(username: str) -> User:
    """One user."""
    return user_model(store.get_user(username, session=db_session()))


@user_routes.operation("/users", "POST", body=NewUser, response=User)
def post_user(*, body: NewUser) -> User:
    """Create a user with one of Airflow's roles (``Public`` when none is given); a taken
    username is a 409, more than one role a 400 (a Tradewind user has one role)."""
    role = body.roles[0].name if body.roles else "Public"
    session = db_session()
    record = store.create_user(
        body.username, body.password, role=role, email=body.email or None, session=session
    )
    audit_api("users.create", session=session, user=body.username, role=role)
    return user_model(record)


#: what a PATCH of a user may name (names are accepted and not kept, as on creation)
USER_FIELDS = frozenset({"username", "password", "email", "first_name", "last_name", "roles"})


@user_routes.operation(
    "/users/<username>", "PATCH", query=UpdateMaskQuery, body=UserPatch, response=User
)
def patch_user(username: str, *, query: UpdateMaskQuery, body: UserPatch) -> User:
    """Change a user as Airflow does: the fields sent (with ``update_mask``, only those it
    names); a new ``username`` renames (409 when taken), a ``password`` is hashed, and
    ``roles`` names one of Airflow's roles (an empty list is ``Public``, no role)."""
    session = db_session()
    store.get_user(username, session=session)  # 404 first, as Airflow
    changes = masked(query.update_mask, body.model_dump(exclude_unset=True), updatable=USER_FIELDS)
    if "roles" in changes:
        roles = changes.pop("roles") or []
        changes["role"] = roles[0]["name"] if roles else "Public"
    record = store.update_user(username, changes, session=session)
    audit_api("users.update", session=session, user=username, fields=sorted(changes))
    return user_model(record)


@user_routes.operation("/users/<username>", "DELETE", status=204)
def delete_user(username: str) -> None:
    """Delete a user with their API tokens (not the signed-in user: 400)."""
    if username == require_user().username:
        raise UsageError("you cannot delete your own account")
    session = db_session()
    store.delete_user(username, session=session)
    audit_api("users.delete", session=session, user=username)


def event_log_model(row: AuditLog) -> EventLog:
    """An audit row as Airflow's event log: ``extra`` as the JSON text Airflow keeps."""
    extra = row.extra if row.extra is None or isinstance(row.extra, str) else json.dumps(row.extra)
    return EventLog(
        event_log_id=row.id,
        when=row.ts,
        event=row.event,
        owner=row.username,
        dag_id=row.dag_id,
        run_id=row.run_id,
        task_id=row.task_id,
        extra=extra,
    )


def filter_event_logs(statement: Select[Any], query: EventLogListQuery) -> Select[Any]:
    """``statement`` narrowed by Airflow's event-log filters."""
    equal = (
        (AuditLog.dag_id, query.dag_id),
        (AuditLog.event, query.event),
        (AuditLog.username, query.owner),
        (AuditLog.run_id, query.run_id),
        (AuditLog.task_id, query.task_id),
    )
    for column, value in equal:
        if value is not None:
            statement = statement.where(column == value)
    if query.map_index is not None or query.try_number is not None:
        # the audit log records user actions, never a map index or try number (both are
        # null in every entry, as in Airflow's entries of user actions)
        statement = statement.where(AuditLog.id.is_(None))
    if query.before is not None:
        statement = statement.where(AuditLog.ts < query.before)
    if query.after is not None:
        statement = statement.where(AuditLog.ts > query.after)
    if query.included_events:
        statement = statement.where(AuditLog.event.in_(query.included_events.split(",")))
    if query.excluded_events:
        statement = statement.where(AuditLog.event.not_in(query.excluded_events.split(",")))
    return statement


@event_log_routes.operation(
    "/eventLogs", "GET", query=EventLogListQuery, response=EventLogCollection
)
def get_event_logs(*, query: EventLogListQuery) -> EventLogCollection:
    """The audit log, newest first: who triggered, paused, cleared, marked or changed what."""
    order = order_clauses(
        query.order_by, EVENT_LOG_ORDER, default="-event_log_id", tiebreak=AuditLog.id
    )
    statement = filter_event_logs(select(AuditLog).order_by(*order), query)
    rows, total = paginate(db_session(), statement, query)
    return EventLogCollection(event_logs=[event_log_model(r) for r in rows], total_entries=total)


@event_log_routes.operation(
    "/eventLogs/<int(max=2147483647):event_log_id>", "GET", response=EventLog
)
def get_event_log(event_log_id: int) -> EventLog:
    """One audit-log entry."""
    row = db_session().get(AuditLog, event_log_id)
    if row is None:
        raise NotFoundError(f"event log {event_log_id} not found")
    return event_log_model(row)
