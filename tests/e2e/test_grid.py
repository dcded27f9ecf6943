"""The Grid in a real browser, against a real scheduler and webserver.

``example_retries`` fails its first try and succeeds on the retry: the grid, opened
right after the trigger and never reloaded by the test, must follow the run to green
by itself (``grid.js`` polling ``grid.json``); a click on the cell opens the side panel
on the latest try, whose tries table opens the first one; the arrow keys move between
cells and Enter opens one; task groups fold. Then every page of the UI is visited and
none may log a console error (a missing favicon used to). Waits poll with deadlines.
"""

from __future__ import annotations

from playwright.sync_api import ConsoleMessage, Page, Response, expect

from e2e_harness import ADMIN, ADMIN_PASSWORD, Tradewind  # isort: skip
from tests.integration.scheduler_harness import tradewind
from tests.waiting import wait_for

RETRIES = "example_retries"
GROUPS = "example_task_group"
#: a run with a retry (a few seconds' delay) on a busy shared machine
RUN_DEADLINE_S = 180.0
FIRST_TRY_LINE = "first try fails on purpose"


def log_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="DAGs")).to_be_visible()


def trigger(server: Tradewind, dag_id: str) -> None:
    tradewind(server.env, "dags", "unpause", dag_id)
    tradewind(server.env, "dags", "trigger", dag_id)


def newest_states(page: Page) -> dict[str, str]:
    """``{task_id: state}`` of the newest run's cells, read from their classes."""
    return dict(
        page.evaluate(
            """() => {
                const heads = [...document.querySelectorAll('#grid a.run-head')];
                if (!heads.length) return [];
                const run = heads[heads.length - 1].dataset.runId;
                return [...document.querySelectorAll('#grid a.cell')]
                    .filter(c => c.dataset.runId === run)
                    .map(c => [c.dataset.taskId, (c.className.match(/state-(\\S+)/) || [])[1]]);
            }"""
        )
    )


def test_the_grid_follows_a_run_opens_tries_in_the_panel_and_moves_by_keys(
    page: Page, tradewind_server: Tradewind
) -> None:
    url = tradewind_server.url
    log_in(page, url)
    trigger(tradewind_server, RETRIES)
    page.goto(f"{url}/dags/{RETRIES}")
    page.evaluate("window.__notReloaded = true")
    seen: set[str] = set()

    def finished() -> bool:
        states = newest_states(page)
        seen.update(states.values())
        return states == {"flaky": "success", "after_retry": "success"}

    wait_for(finished, timeout=RUN_DEADLINE_S, interval=0.3,
             message=lambda: f"the run to turn green by itself (now {newest_states(page)})")  # fmt: skip
    assert page.evaluate("window.__notReloaded === true"), "the grid reloaded the page"
    assert seen - {"success"}, f"the grid never showed the run in progress (saw {seen})"
    head = page.locator("#grid a.run-head").last
    expect(head).to_have_class("run-head state-success")
    expect(head.locator("rect")).to_have_attribute("class", "state-success")
    expect(page.locator('#grid a.cell[data-task-id="flaky"] .mark').last).to_have_text("✓")

    # a click opens the panel on the latest try; its tries table opens the first
    page.locator('#grid a.cell[data-task-id="flaky"]').last.click()
    panel = page.locator("#grid-panel")
    expect(panel.locator("#panel-log-title")).to_have_text("Log of try 2")
    expect(panel.locator("table.tries tbody tr")).to_have_count(2)
    expect(panel.locator("table.tries tr.current")).to_contain_text("2")
    assert page.evaluate("window.__notReloaded === true")
    panel.locator("table.tries a.panel-link", has_text="1").click()
    expect(panel.locator("#panel-log-title")).to_have_text("Log of try 1")
    expect(panel.locator("#panel-log")).to_contain_text(FIRST_TRY_LINE)
    expect(panel.locator(".panel-body")).to_have_attribute("data-try-number", "1")

    # keys: the selected cell moves with the arrows; Enter opens; Escape closes
    flaky = page.locator('#grid a.cell[data-task-id="flaky"]').last
    flaky.focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.dataset.taskId")
    assert focused == "after_retry", focused
    page.keyboard.press("Enter")
    expect(panel.locator(".panel-body")).to_have_attribute("data-task-id", "after_retry")
    page.keyboard.press("ArrowUp")  # the open panel follows the selection
    expect(panel.locator(".panel-body")).to_have_attribute("data-task-id", "flaky")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.taskId") == "flaky"


def test_task_groups_fold_and_the_new_run_column_appears_without_a_reload(
    page: Page, tradewind_server: Tradewind
) -> None:
    url = tradewind_server.url
    log_in(page, url)
    page.goto(f"{url}/dags/{GROUPS}")
    expect(page.locator("#grid-empty")).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    trigger(tradewind_server, GROUPS)
    # no runs when the page was drawn: the idle poll brings the table in (20 s interval)
    expect(page.locator("#grid a.run-head")).to_have_count(1, timeout=60_000)
    assert page.evaluate("window.__notReloaded === true")
    inner = page.locator('tr[data-task-id="section_2.inner_section_2.task_4"]')
    expect(inner).to_be_visible()
    page.locator('button.fold[data-group="section_2"]').click()
    expect(inner).to_be_hidden()
    expect(page.locator('tr[data-group-id="section_2.inner_section_2"]')).to_be_hidden()
    expect(page.locator('tr[data-group-id="section_2"]')).to_be_visible()
    page.reload()  # the fold is remembered
    expect(page.locator('tr[data-task-id="section_2.inner_section_2.task_4"]')).to_be_hidden()
    page.locator('button.fold[data-group="section_2"]').click()
    expect(page.locator('tr[data-task-id="section_2.inner_section_2.task_4"]')).to_be_visible()


def test_no_page_logs_a_console_error(page: Page, tradewind_server: Tradewind) -> None:
    url = tradewind_server.url
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            errors.append(f"{page.url}: {response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.on("response", on_response)
    page.goto(f"{url}/login")
    log_in(page, url)
    paths = [
        "/",
        f"/dags/{RETRIES}",
        f"/dags/{RETRIES}/graph",
        f"/dags/{RETRIES}/code",
        f"/dags/{RETRIES}/runs",
        f"/dags/{RETRIES}/details",
        f"/dags/{RETRIES}/trigger",
        "/dagruns",
        "/taskinstances",
        "/auditlog",
        "/importerrors",
        "/datasets",
        "/variables",
        "/variables/new",
        "/connections",
        "/pools",
        "/users",
        "/cluster",
        f"/dags/{RETRIES}/grid.json",
    ]
    for path in paths:
        page.goto(url + path)
        page.wait_for_load_state("load")
    # the grid page with its panel open
    page.goto(f"{url}/dags/{RETRIES}")
    cells = page.locator("#grid a.cell")
    if cells.count():
        cells.first.click()
        expect(page.locator("#grid-panel .panel-body")).to_be_visible()
        page.locator("#grid-panel a.full-page").click()
        page.wait_for_load_state("load")
    assert errors == []
