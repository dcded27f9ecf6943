"""The chart tabs, the DAGs list and the cluster page in a real browser.

One run of ``tutorial_taskflow_api`` (triggered by the CLI, run by the real scheduler)
is drawn by each view: the Gantt chart has a bar per task, the across-runs charts a dot
per task, the calendar a green day; the DAGs list shows its sparkline and task counts,
the cluster page the leader and the live scheduler. No page may log a console error
(a missing favicon or script would).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from e2e_harness import ADMIN, ADMIN_PASSWORD, Tradewind  # isort: skip
from tests.integration.scheduler_harness import tradewind, tradewind_json
from tests.waiting import wait_for

DAG_ID = "tutorial_taskflow_api"
TASKS = 3
RUN_DEADLINE_S = 180.0


@pytest.fixture(scope="module")
def finished_run(tradewind_server: Tradewind) -> str:
    """The run id of one successful run of the DAG."""
    env = tradewind_server.env
    tradewind(env, "dags", "unpause", DAG_ID)
    tradewind(env, "dags", "trigger", DAG_ID)

    def states() -> list[str]:
        return [r["state"] for r in tradewind_json(env, "dags", "list-runs", DAG_ID)]

    wait_for(
        lambda: states() == ["success"],
        timeout=RUN_DEADLINE_S,
        interval=1,
        message=lambda: f"the run to succeed (runs: {states()})",
    )
    return str(tradewind_json(env, "dags", "list-runs", DAG_ID)[0]["run_id"])


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    """Every console error and uncaught exception of the page; the test must end with none."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    yield errors


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="DAGs")).to_be_visible()


@pytest.mark.parametrize(
    ("tab", "marks", "count"),
    [
        ("gantt", "svg.gantt rect.bar.state-success", TASKS),
        ("duration", "svg.duration g.series circle", TASKS),
        ("tries", "svg.tries g.series circle", TASKS),
        ("calendar", "svg.calendar rect.day.state-success", 1),
    ],
)
def test_a_chart_tab_draws_the_run(
    page: Page,
    tradewind_server: Tradewind,
    finished_run: str,
    console_errors: list[str],
    tab: str,
    marks: str,
    count: int,
) -> None:
    log_in(page, tradewind_server.url)
    page.goto(f"{tradewind_server.url}/dags/{DAG_ID}/{tab}")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_count(1)
    expect(page.locator(marks)).to_have_count(count)
    title = page.locator(marks).first.locator("title").text_content() or ""
    assert "success" in title or ":" in title, title
    assert console_errors == []


def test_the_landing_times_tab_draws(
    page: Page, tradewind_server: Tradewind, finished_run: str, console_errors: list[str]
) -> None:
    log_in(page, tradewind_server.url)
    page.goto(f"{tradewind_server.url}/dags/{DAG_ID}/landing")
    expect(page.locator("svg.landing")).to_be_visible()
    expect(page.locator("svg.landing")).to_have_attribute(
        "aria-label", f"Landing times of {TASKS} tasks"
    )
    assert console_errors == []


def test_a_gantt_bar_leads_to_the_task_instance(
    page: Page, tradewind_server: Tradewind, finished_run: str, console_errors: list[str]
) -> None:
    log_in(page, tradewind_server.url)
    page.goto(f"{tradewind_server.url}/dags/{DAG_ID}/gantt?run_id={quote(finished_run)}")
    page.locator("svg.gantt a", has_text="load").click()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/*/tasks/load*")
    expect(page.get_by_role("heading", level=1)).to_contain_text("load")
    assert console_errors == []


def test_the_dags_list_shows_the_runs_sparkline_and_the_latest_tasks(
    page: Page, tradewind_server: Tradewind, finished_run: str, console_errors: list[str]
) -> None:
    log_in(page, tradewind_server.url)
    row = page.locator(f'tr[data-dag-id="{DAG_ID}"]')
    expect(row.locator("svg.sparkline rect.state-success")).to_have_count(1)
    expect(
        row.locator(f'span.count.state-success[title="success: {TASKS} tasks in the latest run"]')
    ).to_be_visible()
    page.get_by_role("link", name="Last run").click()
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Last run ▲ (ascending)")
    assert console_errors == []


def test_the_cluster_page_shows_the_leader_and_a_live_scheduler(
    page: Page, tradewind_server: Tradewind, finished_run: str, console_errors: list[str]
) -> None:
    log_in(page, tradewind_server.url)
    page.goto(f"{tradewind_server.url}/cluster")
    expect(page.locator("table.leader-history tbody tr")).not_to_have_count(0)
    age = page.locator('table[data-kind="scheduler"] td.age').first
    expect(age).to_contain_text("ago")
    first = age.text_content()
    # the age counts on by itself (ages.js), without a reload
    wait_for(
        lambda: age.text_content() != first, timeout=10, interval=0.3, message="the age to tick"
    )
    assert console_errors == []
