"""The DAGs page tells a data-aware DAG's readiness: "on datasets (1 of 2 ready)", kept
current when an event arrives although the rest of the table is reused."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from web_harness import Browser

from cluster.metastore.datasets import EventSpec, record_events, sync_references
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag

NOW = datetime(2026, 1, 1, tzinfo=UTC)
A, B = "s3://bucket/a", "s3://bucket/b"


def test_the_dags_page_shows_how_many_datasets_are_ready(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        session.add(Dag(dag_id="consumer", fileloc="/x.py", timetable_summary="Dataset"))
        sync_references(session, "consumer", uris=[A, B], aliases=[], outlets={}, now=NOW)
        record_events(session, [EventSpec(uri=A)], now=NOW)
    viewer = Browser(client, tokens["Viewer"])
    assert "on datasets (1 of 2 ready)" in viewer.page("/")
    with factory.begin() as session:
        record_events(session, [EventSpec(uri=B)], now=NOW)
    assert "on datasets (2 of 2 ready)" in viewer.page("/")


def test_the_datasets_page_shows_producers_consumers_and_recent_events(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        sync_references(session, "consumer", uris=[A], aliases=[], outlets={}, now=NOW)
        sync_references(session, "producer", uris=[], aliases=[], outlets={"make": [A]}, now=NOW)
        record_events(session, [EventSpec(uri=A, extra={"rows": 7}, source_dag_id="producer",
                                           source_task_id="make", source_run_id="r1")], now=NOW)  # fmt: skip
    html = Browser(client, tokens["Viewer"]).page("/datasets")
    assert "<code>producer.make</code>" in html and "<code>consumer</code>" in html
    assert f"<code>{A}</code>" in html
    assert "&#34;rows&#34;: 7" in html or '"rows": 7' in html
