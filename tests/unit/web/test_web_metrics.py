"""``GET /metrics`` on a webserver: signed-in users only, every request counted and timed.

The last test runs ``tradewind webserver`` with two gunicorn workers and
``metrics.enabled``: whichever worker answers the scrape, it reports the requests of
both (multiprocess mode).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import requests
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from cluster.config import load_settings
from cluster.devcluster.services.ports import free_port
from cluster.metastore import users
from cluster.metastore.components import settings_fingerprints
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import Component

from web_harness import bearer  # isort: skip
from tests.waiting import answers_ok, wait_for

T = TypeVar("T")


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_need_a_signed_in_user(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_requests_are_counted_by_endpoint_and_status(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    viewer = bearer(tokens["Viewer"])
    for _ in range(3):
        assert client.get("/api/v1/dags", headers=viewer).status_code == 200
    assert client.get("/api/v1/variables", headers=viewer).status_code == 403
    assert client.get("/api/v1/dags", headers=bearer("not-a-token")).status_code == 401
    response = client.get("/metrics", headers=viewer)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    counts = samples(response.get_data(as_text=True), "tradewind_http_requests_total")
    assert counts[(("endpoint", "api.get_dags"), ("status", "200"))] == 3
    assert counts[(("endpoint", "api.get_dags"), ("status", "401"))] == 1
    assert counts[(("endpoint", "api.get_variables"), ("status", "403"))] == 1
    latency = samples(
        response.get_data(as_text=True), "tradewind_http_request_duration_seconds_count"
    )
    assert latency[(("endpoint", "api.get_dags"),)] == 4


def test_gunicorn_workers_report_together_and_record_fingerprints(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")},
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__WEBSERVER__SECRET_KEY": "metrics-test-secret",
        "TRADEWIND__METRICS__ENABLED": "true",
    }
    settings = load_settings(env)
    engine = create_engine_for(settings.metastore)
    migrate(engine)
    with make_session_factory(engine).begin() as session:
        users.create_user("viewer", "pw", role="Viewer", session=session)
        token = users.create_api_token("viewer", "metrics", session=session)[1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "cluster.cli", "webserver", "-w", "2", "-b", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers_ok(url + "/health"), timeout=60, message="the webserver to answer")
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(20):  # new connections: gunicorn hands them to either worker
            response = requests.get(url + "/api/v1/dags", headers=headers, timeout=10)
            assert response.status_code == 200
        for _ in range(4):  # any worker answering the scrape sees all 20
            text = requests.get(url + "/metrics", headers=headers, timeout=10).text
            counts = samples(text, "tradewind_http_requests_total")
            assert counts[(("endpoint", "api.get_dags"), ("status", "200"))] == 20
        assert list((home / "metrics").glob("webserver-*/counter_*.db"))

        def fingerprints() -> dict[str, str] | None:
            with make_session_factory(engine)() as session:
                rows = list(session.scalars(select(Component).where(Component.kind == "webserver")))
            found = rows[0].extra.get("fingerprints") if rows and rows[0].extra else None
            return found if isinstance(found, dict) else None

        recorded = wait_for(
            fingerprints, timeout=60, message="a webserver heartbeat with fingerprints"
        )
        assert recorded == settings_fingerprints(settings)
        assert "metrics-test-secret" not in str(recorded)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        engine.dispose()
