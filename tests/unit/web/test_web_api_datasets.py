"""``/api/v1/datasets``: datasets with their consumers and producers, events, an external
event that queues the consumers, the events that triggered a run, and queued events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cluster.metastore.dataset_models import DagRunDatasetEvent
from cluster.metastore.datasets import EventSpec, record_events, sync_references
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun
from tests.unit.web.web_harness import Api

NOW = datetime(2026, 1, 1, tzinfo=UTC)
URI = "s3://bucket/table"


def _consumer_and_producer(factory: SessionFactory) -> None:
    with factory.begin() as session:
        sync_references(session, "consumer", uris=[URI], aliases=[], outlets={}, now=NOW)
        sync_references(session, "producer", uris=[], aliases=[], outlets={"make": [URI]}, now=NOW)


def test_datasets_list_their_consumers_and_producers(admin: Api, factory: SessionFactory) -> None:
    _consumer_and_producer(factory)
    body = admin.get("/api/v1/datasets").get_json()
    assert body["total_entries"] == 1
    (dataset,) = body["datasets"]
    assert dataset["uri"] == URI
    assert [c["dag_id"] for c in dataset["consuming_dags"]] == ["consumer"]
    assert [(p["dag_id"], p["task_id"]) for p in dataset["producing_tasks"]] == [
        ("producer", "make")
    ]
    assert admin.get(f"/api/v1/datasets/{URI}").get_json()["id"] == dataset["id"]
    assert admin.get("/api/v1/datasets/s3://nothing/here").status_code == 404


def test_an_external_event_queues_the_consumer(admin: Api, factory: SessionFactory) -> None:
    _consumer_and_producer(factory)
    response = admin.post("/api/v1/datasets/events", json={"dataset_uri": URI, "extra": {"k": 1}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["extra"] == {"k": 1, "from_rest_api": True}
    events = admin.get("/api/v1/datasets/events").get_json()
    assert events["total_entries"] == 1
    queued = admin.get("/api/v1/dags/consumer/datasets/queuedEvent").get_json()
    assert [(q["uri"], q["dag_id"]) for q in queued["datasets"]] == [(URI, "consumer")]
    assert admin.delete(f"/api/v1/datasets/queuedEvent/{URI}").status_code == 204
    assert admin.get("/api/v1/dags/consumer/datasets/queuedEvent").status_code == 404
    unknown = admin.post("/api/v1/datasets/events", json={"dataset_uri": "s3://x/unknown"})
    assert unknown.status_code == 404


@pytest.mark.parametrize("uri", ["", "   ", "s3://bücher/x", "airflow://reserved"])
def test_an_event_for_an_invalid_uri_is_a_400(admin: Api, uri: str) -> None:
    response = admin.post("/api/v1/datasets/events", json={"dataset_uri": uri, "extra": {}})
    assert response.status_code == 400, response.get_json()
    assert "dataset_uri" in response.get_json()["detail"]


def test_upstream_events_of_a_run(admin: Api, factory: SessionFactory) -> None:
    _consumer_and_producer(factory)
    with factory.begin() as session:
        (event_id,) = record_events(
            session, [EventSpec(uri=URI, source_dag_id="producer")], now=NOW
        )
        run = DagRun(dag_id="consumer", run_id="r1", run_type="dataset_triggered", state="queued")
        session.add(run)
        session.flush()
        session.add(DagRunDatasetEvent(dag_run_id=run.id, event_id=event_id))
    body = admin.get("/api/v1/dags/consumer/dagRuns/r1/upstreamDatasetEvents").get_json()
    assert [e["source_dag_id"] for e in body["dataset_events"]] == ["producer"]
    events = admin.get("/api/v1/datasets/events").get_json()["dataset_events"]
    assert [r["run_id"] for r in events[0]["created_dagruns"]] == ["r1"]
