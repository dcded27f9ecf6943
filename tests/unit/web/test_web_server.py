"""``tradewind webserver`` as users run it: gunicorn in a subprocess on a loopback port.

Checks the worker's heartbeat row and, with schemathesis, that no request generated
from the OpenAPI document makes the server answer 5xx.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from cluster.cli.main import cli
from cluster.config import load_settings
from cluster.devcluster.services.ports import free_port
from cluster.metastore import users
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import Component

from web_harness import seed  # isort: skip
from tests.waiting import answers_ok, wait_for

#: no 5xx, and every answer is one the document declares: status, content type, body
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    home: Path
    env: dict[str, str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")},
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__WEBSERVER__SECRET_KEY": "live-test-secret",
    }
    settings = load_settings(env)
    engine = create_engine_for(settings.metastore)
    migrate(engine)
    with make_session_factory(engine).begin() as session:
        seed(session, settings)
        users.create_user("admin", "pw", role="Admin", session=session)
        token = users.create_api_token("admin", "live", session=session)[1]
    engine.dispose()
    port = free_port()
    command = [sys.executable, "-c", "from cluster.cli.main import main; main()"]
    process = subprocess.Popen(
        [*command, "webserver", "-w", "1", "-b", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        health = f"http://127.0.0.1:{port}/health"
        wait_for(
            lambda: answers_ok(health), timeout=30, interval=0.2, message=f"{health} to answer"
        )
        yield Server(f"http://127.0.0.1:{port}", token, home, env)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_webserver_serves_the_api_and_heartbeats(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    response = requests.get(server.url + "/api/v1/dags", headers=headers, timeout=5)
    assert response.status_code == 200 and response.json()["total_entries"] == 2
    engine = create_engine_for(load_settings(server.env).metastore)
    deadline = time.monotonic() + 15
    kinds: list[str] = []
    while time.monotonic() < deadline and "webserver" not in kinds:
        with make_session_factory(engine)() as session:
            kinds = list(session.scalars(select(Component.kind)))
        time.sleep(0.2)
    engine.dispose()
    assert "webserver" in kinds


def test_a_request_line_too_long_for_gunicorn_is_a_documented_414(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    response = requests.get(
        server.url + "/api/v1/dags", params={"search": "x" * 5000}, headers=headers, timeout=5
    )
    assert response.status_code == 414
    document = requests.get(server.url + "/api/v1/openapi.json", headers=headers, timeout=5)
    documented = document.json()["paths"]["/dags"]["get"]["responses"]["414"]["$ref"]
    answer = document.json()["components"]["responses"][documented.rsplit("/", 1)[1]]
    assert response.headers["Content-Type"].split(";")[0] in answer["content"]


def test_the_webserver_refuses_an_empty_secret_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["webserver"],
        env={"TRADEWIND_HOME": str(tmp_path), "TRADEWIND__WEBSERVER__SECRET_KEY": ""},
    )
    assert result.exit_code != 0
    assert "secret_key" in str(result.exception)


def test_no_generated_request_makes_the_server_fail(server: Server) -> None:
    done = subprocess.run(
        [
            # beside this interpreter in a virtualenv, else on PATH; a dev dependency
            shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or "schemathesis",
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {server.token}",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "10",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
        cwd=server.home,  # schemathesis keeps its state in the working directory
    )
    (server.home / "schemathesis.txt").write_text(done.stdout)
    assert done.returncode == 0, done.stdout[-5000:]
