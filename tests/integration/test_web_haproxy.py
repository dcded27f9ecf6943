"""Webservers behind a real HAProxy: any webserver serves any user, and a dead or
metastore-less webserver is taken out of rotation by its ``/health``.

Three masters, each a real ``tradewind webserver -w 2`` (gunicorn) on its own port,
behind a real HAProxy whose config ``tradewind haproxy render`` made for them. ``m1``
and ``m2`` share one MariaDB metastore and one secret key; ``m3`` is given a metastore
nobody listens on, so its ``/health`` answers 503. What HAProxy thinks of each server
is read from its admin socket (``show stat``): its status, the result of the last
check, and how many requests each server was sent.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from cluster.config import load_settings
from cluster.deploy.haproxy import webservers
from cluster.deploy.topology import parse_inventory
from cluster.devcluster.services.haproxy import HAProxy
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.process import ServiceError, tail, wait_until
from cluster.metastore import users
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
USER, PASSWORD = "admin", "haproxy-test-pw"
#: seconds for a webserver (gunicorn, two workers) to answer its first /health
START_TIMEOUT = 60.0
#: seconds for HAProxy to change its mind about a server (checks every 0.5 s)
STATUS_TIMEOUT = 30.0


class WebserverProcess:
    """One ``tradewind webserver`` in a process group of its own (gunicorn and workers)."""

    def __init__(self, name: str, port: int, env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> WebserverProcess:
        argv = [sys.executable, "-m", "cluster.cli", "webserver", "-w", "2"]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*argv, "-b", f"{HOST}:{self.port}"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_listening(self) -> None:
        """Until ``/health`` answers at all (200 or 503): gunicorn's workers are up."""

        def answers() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise ServiceError(f"webserver {self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{self.url}/health", timeout=5)
                return True
            return False

        wait_until(answers, timeout=START_TIMEOUT, what=f"webserver {self.name}", interval=0.2)

    def kill(self) -> None:
        """SIGKILL gunicorn's master and its workers together: the node died."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> None:
        """Ask gunicorn to stop (SIGTERM; it stops its workers) without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM gunicorn, wait for it, then SIGKILL whatever is left of its group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def log_tail(self) -> str:
        return f"--- {self.log_file} ---\n{tail(self.log_file, 30)}"


@dataclass
class WebCluster:
    haproxy: HAProxy
    webservers: dict[str, WebserverProcess]

    def logs(self) -> str:
        """Every log's tail, for assertion messages."""
        parts = [self.haproxy.log_tail(25)]
        parts += [w.log_tail() for w in self.webservers.values()]
        return "\n".join(parts)


def webserver_env(
    home: Path, metastore_url: str, secret_key: str, fernet_key: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    env.update(
        {
            "TRADEWIND_HOME": str(home),
            "TRADEWIND__METASTORE__URL": metastore_url,
            "TRADEWIND__CORE__FERNET_KEY": fernet_key,
            "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
            "TRADEWIND__WEBSERVER__SECRET_KEY": secret_key,
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def prepare_metastore(mariadb: MariaDB, home: Path, fernet_key: str) -> str:
    """A migrated database with one admin user; returns its URL."""
    url = mariadb.create_database(f"tw_web_{uuid.uuid4().hex[:10]}")
    settings = load_settings(
        {"TRADEWIND_HOME": str(home), "TRADEWIND__METASTORE__URL": url,
         "TRADEWIND__CORE__FERNET_KEY": fernet_key},
    )  # fmt: skip
    engine = create_engine_for(settings.metastore)
    try:
        migrate(engine)
        with make_session_factory(engine).begin() as session:
            users.create_user(USER, PASSWORD, role="Admin", session=session)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="module")
def cluster(mariadb: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebCluster]:
    base = tmp_path_factory.mktemp("webha")
    home = base / "home"
    home.mkdir()
    fernet_key = Fernet.generate_key().decode()
    url = prepare_metastore(mariadb, home, fernet_key)
    secret_key = secrets.token_urlsafe(32)
    nowhere = f"mysql+pymysql://tradewind:tradewind@{HOST}:{free_port()}/nowhere"
    urls = {"m1": url, "m2": url, "m3": nowhere}
    ports = {name: free_port() for name in urls}
    inventory = {
        "master": {
            "hosts": {
                name: {"ansible_host": HOST, "tradewind_webserver_port": port}
                for name, port in ports.items()
            }
        }
    }
    servers = webservers(parse_inventory(inventory))
    procs = {
        name: WebserverProcess(
            name, ports[name], webserver_env(home, urls[name], secret_key, fernet_key),
            base / f"webserver-{name}.log",
        )
        for name in urls
    }  # fmt: skip
    haproxy = HAProxy(base / "haproxy", servers)
    web = WebCluster(haproxy, procs)
    try:
        for proc in procs.values():
            proc.start()
        for proc in procs.values():
            proc.wait_listening()
        haproxy.start()
        for name, status in (("m1", "UP"), ("m2", "UP"), ("m3", "DOWN")):
            haproxy.wait_for_status(name, status, timeout=STATUS_TIMEOUT)
        yield web
    except ServiceError as exc:
        pytest.fail(f"{exc}\n{web.logs()}")
    finally:
        haproxy.stop()
        procs["m3"].kill()  # a graceful stop would retry its unreachable metastore
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.stop()
        if mariadb.alive():
            mariadb.drop_database(url.rsplit("/", 1)[1].split("?")[0])


@pytest.fixture(scope="module")
def browser(cluster: WebCluster) -> Iterator[requests.Session]:
    """A user logged in through HAProxy with the login form (and its CSRF token)."""
    session = requests.Session()
    base = cluster.haproxy.url
    form = session.get(f"{base}/login", timeout=10)
    assert form.status_code == 200, cluster.logs()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    done = session.post(
        f"{base}/login",
        data={"username": USER, "password": PASSWORD, "csrf_token": token[1], "next": "/"},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/"), done.text
    yield session
    session.close()


def served_by(cluster: WebCluster, session: requests.Session, path: str) -> tuple[int, str]:
    """Send one request through HAProxy; ``(status, server that answered)``."""
    before = cluster.haproxy.server_sessions()
    response = session.get(f"{cluster.haproxy.url}{path}", timeout=30, allow_redirects=False)
    after = cluster.haproxy.server_sessions()
    moved = [name for name in after if after[name] != before.get(name)]
    assert len(moved) == 1, (before, after)
    return response.status_code, moved[0]


def test_requests_alternate_between_webservers_and_the_session_holds(
    cluster: WebCluster, browser: requests.Session
) -> None:
    answers = [served_by(cluster, browser, path) for path in ["/api/v1/dags", "/"] * 4]
    assert [status for status, _ in answers] == [200] * 8, cluster.logs()
    order = [server for _, server in answers]
    assert set(order) == {"m1", "m2"}, order
    assert all(a != b for a, b in itertools.pairwise(order)), order
    # the session is honoured by both, and a request without it is refused by both
    anonymous = [served_by(cluster, requests.Session(), "/api/v1/dags") for _ in range(2)]
    assert sorted(anonymous) == [(401, "m1"), (401, "m2")]


def test_a_webserver_without_its_metastore_answers_503_and_is_taken_out(
    cluster: WebCluster,
) -> None:
    direct = requests.get(f"{cluster.webservers['m3'].url}/health", timeout=10)
    assert direct.status_code == 503
    assert direct.json()["metastore"]["status"] == "unhealthy"
    # DOWN because /health said 503 (a layer-7 status), not because nobody listened
    cluster.haproxy.wait_for_server(
        "m3", status="DOWN", check_status="L7STS", check_code="503", timeout=STATUS_TIMEOUT
    )
    assert cluster.haproxy.server_sessions()["m3"] == 0


def test_a_killed_webserver_costs_no_request_and_comes_back(
    cluster: WebCluster, browser: requests.Session
) -> None:
    haproxy, victim = cluster.haproxy, cluster.webservers["m1"]
    # with m1's checks paused, HAProxy keeps sending it every other request after the
    # kill: each must be retried and redispatched to m2, not lost
    haproxy.command("disable health tradewind_webservers/m1")
    victim.kill()
    statuses = [browser.get(f"{haproxy.url}/api/v1/dags", timeout=30).status_code
                for _ in range(10)]  # fmt: skip
    assert statuses == [200] * 10, cluster.logs()
    assert int(haproxy.server_stat("m1")["wredis"]) >= 5
    haproxy.command("enable health tradewind_webservers/m1")
    # refused: nobody listens any more
    haproxy.wait_for_server("m1", status="DOWN", check_status="L4CON", timeout=STATUS_TIMEOUT)
    during = [served_by(cluster, browser, "/api/v1/dags") for _ in range(4)]
    assert during == [(200, "m2")] * 4
    victim.start().wait_listening()
    haproxy.wait_for_status("m1", "UP", timeout=STATUS_TIMEOUT)
    after = [served_by(cluster, browser, "/api/v1/dags") for _ in range(4)]
    assert {server for _, server in after} == {"m1", "m2"}, after
    assert [status for status, _ in after] == [200] * 4, cluster.logs()
