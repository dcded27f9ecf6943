"""``tradewind standalone`` on a fresh home: the README's promise, end to end.

It creates the home with fresh secrets, migrates SQLite, creates the admin user,
loads the example DAGs, and the tutorial triggered from another process succeeds; its
triggerer (a child process) is a member of the cluster. Ctrl-C stops it and everything
it started.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.devcluster.services.ports import free_port
from tests.integration.scheduler_harness import (
    CLI,
    REPO,
    alive,
    descendants_of,
    tradewind,
)
from tests.waiting import wait_for


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "fresh-home"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def env(home: Path, port: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    return {
        **clean,
        "TRADEWIND__WEBSERVER__PORT": str(port),
        "TRADEWIND_HOME": str(home),
        "PYTHONPATH": str(REPO),
        "TRADEWIND__SCHEDULER__POLL_INTERVAL": "0.2",
    }


@pytest.fixture
def standalone(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (tmp_path / "standalone.log").open("wb") as log:
        process = subprocess.Popen(
            [*CLI, "standalone"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tree: set[int] = set()
    yield process
    if process.poll() is None:
        tree.update(descendants_of(process.pid))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    for pid in tree:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _dag_ids(env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [*CLI, "dags", "list", "-o", "json"], env=env, cwd=REPO, capture_output=True, text=True
    )
    return set() if done.returncode else {d["dag_id"] for d in json.loads(done.stdout)}


def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}


def test_standalone_runs_the_tutorial_and_stops_cleanly(
    standalone: subprocess.Popen[bytes], env: dict[str, str], home: Path, port: int
) -> None:
    wait_for(
        lambda: "tutorial" in _dag_ids(env), timeout=60, message="the example DAGs to be listed"
    )
    config = home / "tradewind.toml"
    password = home / "standalone_admin_password.txt"
    assert "fernet_key" in config.read_text() and oct(config.stat().st_mode & 0o777) == "0o600"
    assert (
        len(password.read_text().strip()) >= 12 and oct(password.stat().st_mode & 0o777) == "0o600"
    )

    tradewind(env, "dags", "trigger", "tutorial", "-r", "from_test")
    wait_for(
        lambda: (
            tradewind(env, "dags", "state", "tutorial", "from_test").strip()
            in ("success", "failed")
        ),
        timeout=60,
        message="the tutorial run to finish",
    )
    assert tradewind(env, "dags", "state", "tutorial", "from_test").strip() == "success"
    states = json.loads(
        tradewind(env, "tasks", "states-for-dag-run", "tutorial", "from_test", "-o", "json")
    )
    assert {s["task_id"]: s["state"] for s in states} == {
        "print_date": "success",
        "sleep": "success",
        "templated": "success",
    }

    # its triggerer is a child process, a member of the cluster
    members = json.loads(tradewind(env, "cluster", "status", "-o", "json"))
    assert [t["state"] for t in members["triggerers"]] == ["running"]
    assert members["triggerers"][0]["pid"] in descendants_of(standalone.pid)

    base = f"http://127.0.0.1:{port}"
    wait_for(
        lambda: _get(f"{base}/health")[0] == 200, timeout=30, message="the webserver's /health"
    )
    admin = ("admin", password.read_text().strip())
    status, dags = _get(f"{base}/api/v1/dags?limit=100", auth=admin)
    assert status == 200
    assert "tutorial" in {d["dag_id"] for d in dags["dags"]}  # type: ignore[union-attr]
    assert _get(f"{base}/api/v1/dags", auth=("admin", "wrong"))[0] == 401

    tree = descendants_of(standalone.pid)
    assert tree, "the local executor's workers run as children of standalone"
    standalone.send_signal(signal.SIGINT)
    assert standalone.wait(30) == 0
    members = json.loads(tradewind(env, "cluster", "status", "-o", "json"))
    assert members["triggerers"] == []  # stopped with it, its triggers handed back
    wait_for(
        lambda: not [p for p in tree if alive(p)],
        timeout=15,
        message="standalone's workers to exit",
    )
