"""``tradewind pools``: slots, occupied slots, and the pool that cannot go."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from cluster.metastore.audit import list_events
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, SlotPool, TaskInstance

Invoke = Callable[..., Result]
Main = Callable[..., Any]


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def test_set_creates_and_resizes_a_pool(ok: Invoke, metastore: SessionFactory) -> None:
    ok("pools", "set", "etl", "4", "ETL jobs")
    ok("pools", "set", "etl", "6", "ETL jobs, bigger")
    with metastore() as session:
        pool = session.get(SlotPool, "etl")
        assert pool is not None and (pool.slots, pool.description) == (6, "ETL jobs, bigger")
        assert len(list_events(session=session, event="cli.pools.set")) == 2


def test_get_and_list_show_occupied_slots(ok: Invoke, metastore: SessionFactory) -> None:
    ok("pools", "set", "etl", "4", "ETL jobs")
    with metastore.begin() as session:
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual", state="running"))
        session.flush()
        for task_id, state in (("a", "queued"), ("b", "running"), ("c", "success")):
            session.add(
                TaskInstance(dag_id="d", run_id="r", task_id=task_id, state=state, pool="etl")
            )
    shown = json.loads(ok("pools", "get", "etl", "-o", "json").output)
    assert shown == {"pool": "etl", "slots": 4, "description": "ETL jobs", "occupied_slots": 2}
    listing = json.loads(ok("pools", "list", "-o", "json").output)
    assert [(p["pool"], p["occupied_slots"]) for p in listing] == [("default_pool", 0), ("etl", 2)]


def test_delete_removes_a_pool(ok: Invoke, main: Main) -> None:
    ok("pools", "set", "etl", "4", "ETL jobs")
    ok("pools", "delete", "etl")
    missing = main("pools", "get", "etl")
    assert missing.is_one_line_error and missing.code == 3


def test_default_pool_cannot_be_deleted(main: Main) -> None:
    result = main("pools", "delete", "default_pool")
    assert result.is_one_line_error and "default_pool" in result.err


@pytest.mark.parametrize(
    ("slots", "reason"), [("many", "not a valid integer"), ("-3", "0 or more")]
)
def test_set_with_bad_slots_fails(main: Main, slots: str, reason: str) -> None:
    result = main("pools", "set", "etl", slots, "desc")
    assert result.is_one_line_error and reason in result.err
