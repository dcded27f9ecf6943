"""``GET /health`` for HAProxy, and the app over both metastores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_harness import ROLES, bearer, build_app, context_of, seed

from cluster.config import Settings
from cluster.metastore import users
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, SchedulerLease
from cluster.web import create_app


def test_health_without_a_scheduler(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "metastore": {"status": "healthy"},
        "scheduler": {"status": "unknown", "leader": None, "epoch": 0, "latest_heartbeat": None},
    }


def test_health_reports_the_scheduler_leader(client: FlaskClient, factory: SessionFactory) -> None:
    beat = datetime.now(UTC) - timedelta(seconds=1)
    with factory.begin() as session:
        session.merge(SchedulerLease(id=1, epoch=7, leader_host="master1", heartbeat_at=beat))
    scheduler = client.get("/health").get_json()["scheduler"]
    assert scheduler["status"] == "healthy" and scheduler["leader"] == "master1"
    assert scheduler["epoch"] == 7 and scheduler["latest_heartbeat"] == beat.isoformat()
    with factory.begin() as session:
        session.merge(SchedulerLease(id=1, epoch=7, heartbeat_at=beat - timedelta(hours=1)))
    assert client.get("/health").get_json()["scheduler"]["status"] == "unhealthy"


def test_health_is_503_when_the_metastore_is_unreachable(web_settings: Settings) -> None:
    settings = web_settings.replace("metastore", url="mysql+pymysql://x:y@127.0.0.1:1/db")
    app = create_app(settings)
    client = app.test_client()
    response = client.get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["metastore"]["status"] == "unhealthy" and body["metastore"]["detail"]
    api = client.get("/api/v1/dags", headers=bearer("tw_some-token"))
    assert api.status_code == 503 and api.get_json()["status"] == 503
    context_of(app).engine.dispose()


@pytest.fixture
def any_metastore_app(web_settings: Settings, metastore_url: str) -> Iterator[Flask]:
    app = build_app(web_settings.replace("metastore", url=metastore_url))
    yield app
    context_of(app).engine.dispose()


def test_the_api_works_on_sqlite_and_mariadb(
    any_metastore_app: Flask, web_settings: Settings
) -> None:
    factory = context_of(any_metastore_app).session_factory
    with factory.begin() as session:
        seed(session, web_settings)
        users.create_user("u", "pw", role=ROLES[2], session=session)
        token = users.create_api_token("u", "t", session=session)[1]
    client = any_metastore_app.test_client()
    assert client.get("/health").status_code == 200
    response = client.post(
        "/api/v1/dags/etl/dagRuns", json={"dag_run_id": "m1"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.get_json()
    with factory() as session:
        run = session.query(DagRun).filter_by(run_id="m1").one()
        assert run.state == "queued"
    listed = client.get("/api/v1/dags/etl/dagRuns?order_by=-id", headers=bearer(token)).get_json()
    assert [r["dag_run_id"] for r in listed["dag_runs"]] == ["m1", "run1"]
