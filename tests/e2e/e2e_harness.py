"""Pieces of the browser tests: the running Tradewind, its webserver process, chromium's flags."""

from __future__ import annotations

import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.integration.scheduler_harness import CLI, REPO, descendants_of, kill_leftovers

CHROMIUM = Path("/usr/bin/chromium")
#: TESTING.md "Browser tests": without the background flags chromium calls outside hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = "admin"
ADMIN_PASSWORD = "e2e admin password"
#: how long a page may take to answer one action on a busy 2-core machine
ACTION_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Tradewind:
    """A running scheduler and webserver, and where their logs are."""

    url: str
    env: dict[str, str]
    logs: dict[str, Path]

    def log_tails(self, lines: int = 80) -> dict[str, str]:
        tails = {}
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            tails[name] = "\n".join(text.splitlines()[-lines:])
        return tails


class WebServerProcess:
    """``tradewind webserver`` in a process group of its own, stopped by its PID."""

    def __init__(self, env: dict[str, str], port: int, log_file: Path) -> None:
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "webserver", "-w", "2", "-b", f"127.0.0.1:{port}"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        tree = set(descendants_of(self.process.pid))  # gunicorn's workers
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        kill_leftovers(tree)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
