"""Fixtures of the browser tests: a real Tradewind and a headless Debian chromium.

``tradewind`` migrates a SQLite metastore in a temp ``TRADEWIND_HOME``, creates an
admin, and starts ``tradewind scheduler`` (local executor, the example DAGs, paused
at creation) and ``tradewind webserver`` as subprocesses, once per module; both are
stopped by their PIDs. ``page`` is a fresh chromium profile driven by Playwright.
When a test fails, a screenshot of the page goes into the test's tmp dir and the
tails of both server logs are attached to the report.

Chromium missing: skipped on a workstation, a failure under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import BrowserContext, Page, sync_playwright

from cluster.devcluster.services.ports import free_port
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    cli_env,
    tradewind,
    tradewind_json,
)
from tests.waiting import wait_for

from e2e_harness import (  # isort: skip
    ACTION_TIMEOUT_MS,
    ADMIN,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    Tradewind,
    WebServerProcess,
    answers,
)


@pytest.fixture(scope="module")
def tradewind_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tradewind]:
    root = tmp_path_factory.mktemp("tradewind-e2e")
    home = root / "home"
    home.mkdir()
    env = cli_env(
        home,
        f"sqlite:///{home / 'tradewind.db'}",
        Fernet.generate_key().decode(),
        CORE__LOAD_EXAMPLES="true",
        CORE__DAGS_ARE_PAUSED_AT_CREATION="true",
        WEBSERVER__SECRET_KEY="e2e-secret-key",
    )
    tradewind(env, "db", "migrate")
    tradewind(env, "users", "create", "-u", ADMIN, "-r", "Admin", "-p", ADMIN_PASSWORD)
    port = free_port()
    logs = {"scheduler": root / "scheduler.log", "webserver": root / "webserver.log"}
    scheduler = SchedulerProcess(env, logs["scheduler"]).start()
    web: WebServerProcess | None = None
    try:
        web = WebServerProcess(env, port, logs["webserver"])
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{url}/health"), timeout=60, message="the webserver's /health")
        wait_for(
            lambda: (
                "tutorial_taskflow_api"
                in {d["dag_id"] for d in tradewind_json(env, "dags", "list")}
            ),
            timeout=120,
            interval=1,
            message="the example DAGs to be parsed",
        )
        yield Tradewind(url, env, logs)
    finally:
        if web is not None:
            web.stop()
        scheduler.stop()


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not (CHROMIUM.is_file() and shutil.which(str(CHROMIUM))):
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def browser_context(chromium_path: Path, tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh user-data dir (no cookies, no cache)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium_path),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    return browser_context.pages[0] if browser_context.pages else browser_context.new_page()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure: a screenshot of the page into the test's tmp dir, and the server logs."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    page, tmp_path = funcargs.get("page"), funcargs.get("tmp_path")
    if isinstance(page, Page) and isinstance(tmp_path, Path):
        shot = tmp_path / f"{item.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            report.sections.append(("screenshot", f"{shot} (at {page.url})"))
        except Exception as exc:  # the browser may be what failed
            report.sections.append(("screenshot", f"none: {exc}"))
    server = funcargs.get("tradewind_server")
    if isinstance(server, Tradewind):
        for name, tail in server.log_tails().items():
            report.sections.append((f"{name} log", tail))
    return report
