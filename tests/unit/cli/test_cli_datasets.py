"""``tradewind datasets list|events``: what DAGs produce and consume, and what happened."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from click.testing import Result

from cluster.metastore.datasets import EventSpec, record_events, sync_references
from cluster.metastore.engine import SessionFactory

Invoke = Callable[..., Result]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
URI = "s3://bucket/table"


@pytest.fixture(autouse=True)
def _migrated(migrated: None) -> None:
    """Every test here starts from a migrated metastore."""


def test_list_and_events(ok: Invoke, metastore: SessionFactory) -> None:
    with metastore.begin() as session:
        sync_references(session, "consumer", uris=[URI], aliases=[], outlets={}, now=NOW)
        sync_references(session, "producer", uris=[], aliases=[], outlets={"make": [URI]}, now=NOW)
        record_events(
            session, [EventSpec(uri=URI, extra={"rows": 3}, source_dag_id="producer")], now=NOW
        )
    (dataset,) = json.loads(ok("datasets", "list", "-o", "json").output)
    assert dataset["uri"] == URI
    assert (dataset["consumers"], dataset["producers"], dataset["events"]) == (
        "consumer",
        "producer.make",
        1,
    )
    (event,) = json.loads(ok("datasets", "events", "--uri", URI, "-o", "json").output)
    assert (event["source_dag_id"], event["extra"]) == ("producer", {"rows": 3})
    assert json.loads(ok("datasets", "events", "--uri", "s3://other/x", "-o", "json").output) == []
    assert URI in ok("datasets", "list").output
