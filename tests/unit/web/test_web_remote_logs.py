"""Logs of tries that ran on another host, fetched from that worker's real log server.

A :class:`cluster.logserver.server.LogServer` serves its own log folder on a loopback
port; the try is recorded as run on ``127.0.0.1`` (not this webserver's host name), so
the webserver signs a request and reads the log over HTTP, from the page, the page's
``log.json`` and the API alike. A closed port, a server that never answers and a
server with another secret each give one plain sentence naming the host.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from web_harness import Api, Browser, context_of, write_log

from cluster.config import Settings
from cluster.devcluster.services.ports import free_port
from cluster.logserver.server import LogServer
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import TaskInstance
from cluster.web.logs import TryRef, fetch_log

WORKER = "127.0.0.1"
LINE = "extract on the worker: 100 rows ✓\n"
LOG_URL = "/api/v1/dags/etl/dagRuns/run1/taskInstances/extract/logs/1"


@pytest.fixture
def worker_logs(tmp_path: Path) -> Path:
    folder = tmp_path / "worker-logs"
    folder.mkdir()
    return folder


@pytest.fixture
def log_server(worker_logs: Path, web_settings: Settings) -> Iterator[LogServer]:
    server = LogServer(
        worker_logs, key=web_settings.webserver.secret_key, host=WORKER, port=free_port()
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ran_on_worker(seeded: None, factory: SessionFactory) -> None:
    """``etl``/``run1``/``extract`` try 1 ran on the worker, not on this webserver's host."""
    with factory.begin() as session:
        row = session.get(TaskInstance, ("etl", "run1", "extract", -1))
        assert row is not None
        row.hostname = WORKER


def ref(hostname: str = WORKER) -> TryRef:
    return TryRef("etl", "run1", "extract", 1, hostname=hostname)


def settings_for(settings: Settings, port: int, timeout: float = 5.0) -> Settings:
    return settings.replace("logging", log_server_port=port).replace(
        "webserver", log_fetch_timeout=timeout
    )


def test_a_remote_log_is_fetched_with_a_signed_request_and_followed(
    web_settings: Settings, log_server: LogServer, worker_logs: Path
) -> None:
    assert web_settings.core.hostname != WORKER
    path = write_log(worker_logs, "etl", "run1", "extract", 1, LINE)
    settings = settings_for(web_settings, log_server.port)
    first = fetch_log(settings, ref())
    assert (first.source, first.text, first.host) == ("remote", LINE, WORKER)
    assert first.next_offset == len(LINE.encode())
    with path.open("a", encoding="utf-8") as log:
        log.write("load done\n")
    rest = fetch_log(settings, ref(), offset=first.next_offset)
    assert rest.text == "load done\n" and rest.offset == first.next_offset


def test_the_page_the_live_endpoint_and_the_api_read_the_remote_log(
    client: FlaskClient,
    tokens: dict[str, str],
    ran_on_worker: None,
    web_settings: Settings,
    log_server: LogServer,
    worker_logs: Path,
) -> None:
    write_log(worker_logs, "etl", "run1", "extract", 1, LINE)
    context_of(client.application).settings = settings_for(web_settings, log_server.port)
    viewer = Browser(client, tokens["Viewer"])
    assert "extract on the worker: 100 rows ✓" in viewer.page("/dags/etl/runs/run1/tasks/extract")
    live = viewer.get("/dags/etl/runs/run1/tasks/extract/log.json").get_json()
    assert (live["source"], live["text"], live["host"]) == ("remote", LINE, WORKER)
    api = Api(client, tokens["Viewer"]).get(LOG_URL).get_json()
    assert (api["source"], api["content"], api["host"]) == ("remote", LINE, WORKER)
    skip = len(b"extract on the worker: ")
    part = Api(client, tokens["Viewer"]).get(f"{LOG_URL}?offset={skip}").get_json()
    assert part["content"] == "100 rows ✓\n" and part["offset"] == skip


def test_the_api_says_when_there_is_no_such_try(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    response = Api(client, tokens["Viewer"]).get(LOG_URL.replace("/logs/1", "/logs/7"))
    assert response.status_code == 404 and "no try 7" in response.get_json()["detail"]


def test_a_closed_port_names_the_host_and_the_reason(
    client: FlaskClient, tokens: dict[str, str], ran_on_worker: None, web_settings: Settings
) -> None:
    closed = free_port(WORKER)
    context_of(client.application).settings = settings_for(web_settings, closed)
    api = Api(client, tokens["Viewer"]).get(LOG_URL)
    assert api.status_code == 200
    body = api.get_json()
    assert body["source"] == "unreachable" and body["content"] == ""
    assert f"on host {WORKER}" in body["message"] and "Connection refused" in body["message"]
    page = Browser(client, tokens["Viewer"]).page("/dags/etl/runs/run1/tasks/extract")
    assert "cannot be reached: Connection refused" in page


def test_a_server_that_never_answers_times_out_plainly(web_settings: Settings) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never replies
        silent.bind((WORKER, 0))
        silent.listen(1)
        settings = settings_for(web_settings, silent.getsockname()[1], timeout=0.5)
        chunk = fetch_log(settings, ref())
    assert chunk.source == "unreachable"
    assert chunk.message is not None and "no answer within 0.5 s" in chunk.message


def test_a_server_with_another_secret_refuses_and_the_page_says_why(
    web_settings: Settings, worker_logs: Path
) -> None:
    write_log(worker_logs, "etl", "run1", "extract", 1, LINE)
    other = LogServer(worker_logs, key="another-secret", host=WORKER, port=free_port())
    other.start()
    try:
        chunk = fetch_log(settings_for(web_settings, other.port), ref())
    finally:
        other.stop()
    assert chunk.text == "" and chunk.message is not None
    assert "refused the signed request" in chunk.message and "secret_key" in chunk.message


def test_a_log_on_this_machine_is_read_from_disk(
    web_settings: Settings, log_server: LogServer
) -> None:
    write_log(web_settings.logging.base_log_folder, "etl", "run1", "extract", 1, "local copy\n")
    chunk = fetch_log(settings_for(web_settings, log_server.port), ref())
    assert (chunk.source, chunk.text) == ("local", "local copy\n")


def test_a_missing_log_on_the_worker_is_not_an_error(
    web_settings: Settings, log_server: LogServer
) -> None:
    chunk = fetch_log(settings_for(web_settings, log_server.port), ref())
    assert chunk.source == "missing" and chunk.message is not None
    assert f"host {WORKER}" in chunk.message
