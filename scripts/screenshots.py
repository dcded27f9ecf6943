"""Screenshots of the web UI's views into docs/screenshots/, taken on a real Tradewind.

Starts ``tradewind scheduler`` and ``tradewind webserver`` on SQLite with the example
DAGs in a temporary home (as the browser tests do, tests/e2e), backfills four days of
``example_bash_operator`` and triggers ``example_retries`` (two failed tries, then a
success), waits for the runs to finish, then signs in with Debian's headless chromium
through Playwright and saves each view of :data:`VIEWS` as a PNG. Re-run it after a
change to the UI; name views to take only those:

    .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py gantt calendar

Needs /usr/bin/chromium (apt-get install chromium). Every process it starts is stopped
by its PID at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from cryptography.fernet import Fernet  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from cluster.devcluster.services.ports import free_port  # noqa: E402

from e2e_harness import (  # noqa: E402  # isort: skip
    ADMIN,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    WebServerProcess,
    answers,
)
from tests.integration.scheduler_harness import (  # noqa: E402
    SchedulerProcess,
    cli_env,
    tradewind,
    tradewind_json,
)

OUT = ROOT / "docs" / "screenshots"
BASH = "example_bash_operator"
RETRIES = "example_retries"
#: name → path of each view ("{run}" is the run of example_retries)
VIEWS = {
    "dags": "/",
    "grid": f"/dags/{BASH}",
    "grid-panel": f"/dags/{RETRIES}",
    "grid-dark": f"/dags/{BASH}",
    "gantt": f"/dags/{RETRIES}/gantt",
    "duration": f"/dags/{BASH}/duration",
    "tries": f"/dags/{RETRIES}/tries",
    "landing": f"/dags/{BASH}/landing",
    "calendar": f"/dags/{BASH}/calendar",
    "cluster": "/cluster",
}
RUN_DEADLINE_S = 600.0


def wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what}")
        time.sleep(1)


def make_runs(env: dict[str, str]) -> None:
    """Four backfilled days of the bash example and one run of the retries example."""
    for dag_id in (BASH, RETRIES):
        tradewind(env, "dags", "unpause", dag_id)
    tradewind(env, "dags", "backfill", BASH, "-s", "2026-11-01", "-e", "2026-11-04", "--no-wait")
    tradewind(env, "dags", "trigger", RETRIES)

    def finished() -> bool:
        states = [
            run["state"]
            for dag_id in (BASH, RETRIES)
            for run in tradewind_json(env, "dags", "list-runs", dag_id)
        ]
        return bool(states) and all(s in ("success", "failed") for s in states)

    wait(finished, RUN_DEADLINE_S, "the example runs to finish")


def shoot(page: Page, url: str, names: list[str]) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        page.emulate_media(color_scheme="dark" if name.endswith("-dark") else "light")
        page.goto(url + VIEWS[name])
        page.wait_for_load_state("networkidle")
        if name == "grid-panel":  # the side panel on the retried task's latest try
            page.locator('#grid a.cell[data-task-id="flaky"]').last.click()
            page.locator("#grid-panel #panel-log").wait_for()
        page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
        print(f"docs/screenshots/{name}.png  <- {VIEWS[name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("views", nargs="*", help=f"some of {', '.join(VIEWS)} (default: all)")
    names = parser.parse_args().views or list(VIEWS)
    unknown = [n for n in names if n not in VIEWS]
    if unknown:
        raise SystemExit(
            f"screenshots: no view named {', '.join(unknown)}; views: {', '.join(VIEWS)}"
        )
    if not CHROMIUM.is_file():
        raise SystemExit(f"screenshots: {CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="tw-screenshots-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = cli_env(
            home,
            f"sqlite:///{home / 'tradewind.db'}",
            Fernet.generate_key().decode(),
            CORE__LOAD_EXAMPLES="true",
            CORE__DAGS_ARE_PAUSED_AT_CREATION="true",
            WEBSERVER__SECRET_KEY="screenshots-secret-key",
        )
        tradewind(env, "db", "migrate")
        tradewind(env, "users", "create", "-u", ADMIN, "-r", "Admin", "-p", ADMIN_PASSWORD)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        scheduler = SchedulerProcess(env, Path(tmp) / "scheduler.log").start()
        web = WebServerProcess(env, port, Path(tmp) / "webserver.log")
        try:
            wait(lambda: answers(f"{url}/health"), 120, "the webserver")
            wait(
                lambda: BASH in {d["dag_id"] for d in tradewind_json(env, "dags", "list")},
                180,
                "the example DAGs to be parsed",
            )
            make_runs(env)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                shoot(page, url, names)
                browser.close()
        finally:
            web.stop()
            scheduler.stop()


if __name__ == "__main__":
    main()
