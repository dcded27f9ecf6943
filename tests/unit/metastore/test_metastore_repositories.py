"""Variables, connections, pools, audit log and components as the CLI and web use them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore.audit import list_events, record_event
from cluster.metastore.components import (
    heartbeat_component,
    list_components,
    remove_stale_components,
)
from cluster.metastore.connections import (
    ConnectionRecord,
    add_connection,
    delete_connection,
    get_connection,
    list_connections,
)
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.pools import (
    delete_pool,
    get_pool,
    list_pools,
    occupied_slots,
    set_pool,
)
from cluster.metastore.variables import (
    delete_variable,
    get_variable,
    list_variables,
    set_variable,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_variables_crud(session: Session, fernet: MultiFernet) -> None:
    set_variable("b", "1", session=session, fernet=fernet, description="bee")
    set_variable("a", "2", session=session, fernet=fernet)
    set_variable("a", "3", session=session, fernet=fernet)
    assert get_variable("a", session=session, fernet=fernet) == "3"
    assert [(v.key, v.description) for v in list_variables(session=session)] == [
        ("a", None),
        ("b", "bee"),
    ]
    delete_variable("a", session=session)
    with pytest.raises(NotFoundError):
        get_variable("a", session=session, fernet=fernet)
    with pytest.raises(NotFoundError):
        delete_variable("a", session=session)


def test_connections_hide_secrets_except_on_get(session: Session, fernet: MultiFernet) -> None:
    record = ConnectionRecord("pg", "postgres", host="db", port=5432, login="u", password="p")
    add_connection(record, session=session, fernet=fernet)
    with pytest.raises(AlreadyExistsError):
        add_connection(record, session=session, fernet=fernet)
    assert get_connection("pg", session=session, fernet=fernet) == record
    (listed,) = list_connections(session=session)
    assert listed == record.without_secrets()
    delete_connection("pg", session=session)
    with pytest.raises(NotFoundError):
        get_connection("pg", session=session, fernet=fernet)


def test_default_pool_exists_and_cannot_be_deleted(session: Session) -> None:
    assert get_pool("default_pool", session=session).slots == 128
    with pytest.raises(UsageError, match="default_pool"):
        delete_pool("default_pool", session=session)
    set_pool("default_pool", 16, session=session)
    assert get_pool("default_pool", session=session).slots == 16


def test_pools_crud(session: Session) -> None:
    set_pool("gpu", 2, session=session, description="GPUs")
    assert [p.pool for p in list_pools(session=session)] == ["default_pool", "gpu"]
    with pytest.raises(UsageError):
        set_pool("gpu", -1, session=session)
    delete_pool("gpu", session=session)
    with pytest.raises(NotFoundError):
        get_pool("gpu", session=session)


def test_occupied_slots_count_queued_and_running(
    session: Session,
    add_run: Callable[..., DagRun],
    add_task: Callable[..., TaskInstance],
) -> None:
    add_run()
    add_task("a", state="queued", pool="gpu", pool_slots=2)
    add_task("b", state="running", pool="gpu")
    add_task("c", state="scheduled", pool="gpu")
    add_task("d", state="success")
    assert occupied_slots(session=session) == {"gpu": 3}


def test_audit_events_newest_first(session: Session) -> None:
    record_event("trigger", session=session, username="ada", dag_id="d", now=NOW)
    record_event("pause", session=session, username="ada", dag_id="e", extra={"why": "x"})
    events = list_events(session=session)
    assert [e.event for e in events] == ["pause", "trigger"]
    assert events[0].extra == {"why": "x"}
    assert [e.event for e in list_events(session=session, dag_id="d")] == ["trigger"]


def test_components_heartbeat_upserts(session: Session) -> None:
    first = heartbeat_component("scheduler", "m1", 10, session=session, now=NOW)
    again = heartbeat_component(
        "scheduler", "m1", 10, session=session, now=NOW + timedelta(seconds=5)
    )
    heartbeat_component("worker", "w1", 11, session=session, now=NOW)
    assert first == again
    (scheduler,) = list_components(session=session, kind="scheduler")
    assert (scheduler.started_at, scheduler.heartbeat_at) == (NOW, NOW + timedelta(seconds=5))
    assert remove_stale_components(session=session, older_than=NOW + timedelta(seconds=1)) == 1
    with pytest.raises(UsageError):
        heartbeat_component("robot", "h", 1, session=session, now=NOW)
