"""``/users`` (Admin only) and ``/eventLogs``, the audit log (Op and Admin)."""

from __future__ import annotations

from sqlalchemy import select

from cluster.metastore import users as store
from cluster.metastore.models import AuditLog
from cluster.metastore.models import User as UserRow
from cluster.web.api.admin_schemas import (
    EventLog,
    EventLogCollection,
    EventLogListQuery,
    RoleName,
    User,
    UserCollection,
)
from cluster.web.api.lookups import paginate
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import Page
from cluster.web.context import db_session

user_routes = Routes("User")
event_log_routes = Routes("EventLog")


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


@user_routes.operation("/users", "GET", query=Page, response=UserCollection)
def get_users(*, query: Page) -> UserCollection:
    """List users (never their passwords or tokens)."""
    statement = select(UserRow.username).order_by(UserRow.username)
    session = db_session()
    names, total = paginate(session, statement, query)
    items = [user_model(store.get_user(name, session=session)) for name in names]
    return UserCollection(users=items, total_entries=total)


@user_routes.operation("/users/<username>", "GET", response=User)
def get_user(username: str) -> User:
    """One user."""
    return user_model(store.get_user(username, session=db_session()))


@event_log_routes.operation(
    "/eventLogs", "GET", query=EventLogListQuery, response=EventLogCollection
)
def get_event_logs(*, query: EventLogListQuery) -> EventLogCollection:
    """The audit log, newest first: who triggered, paused, cleared, marked or changed what."""
    statement = select(AuditLog).order_by(AuditLog.id.desc())
    if query.dag_id is not None:
        statement = statement.where(AuditLog.dag_id == query.dag_id)
    if query.event is not None:
        statement = statement.where(AuditLog.event == query.event)
    rows, total = paginate(db_session(), statement, query)
    items = [
        EventLog(
            event_log_id=r.id,
            when=r.ts,
            event=r.event,
            owner=r.username,
            dag_id=r.dag_id,
            run_id=r.run_id,
            task_id=r.task_id,
            extra=r.extra,
        )
        for r in rows
    ]
    return EventLogCollection(event_logs=items, total_entries=total)
