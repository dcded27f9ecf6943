"""``tradewind sla-misses list``: the misses the SLA check recorded, newest first."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result

from cluster.metastore.engine import SessionFactory
from cluster.metastore.slas import record_misses

Invoke = Callable[..., Result]
DAY = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def test_list_sla_misses(ok: Invoke, metastore: SessionFactory) -> None:
    with metastore.begin() as session:
        misses = [("report", DAY), ("report", DAY + timedelta(days=1))]
        assert record_misses(session, "daily", misses, now=DAY) == 2
        assert record_misses(session, "daily", misses[:1], now=DAY) == 0
        record_misses(session, "other", [("load", DAY)], now=DAY)
    rows = json.loads(ok("sla-misses", "list", "-d", "daily", "-o", "json").output)
    assert [(r["task_id"], r["execution_date"]) for r in rows] == [
        ("report", "2026-01-02T00:00:00+00:00"),
        ("report", "2026-01-01T00:00:00+00:00"),
    ]
    assert [r["notification_sent"] for r in rows] == [False, False]
    assert len(json.loads(ok("sla-misses", "list", "-o", "json").output)) == 3
    assert "daily" in ok("sla-misses", "list").output
