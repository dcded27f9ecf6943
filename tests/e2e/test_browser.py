"""A user in a real browser against a real scheduler and webserver.

Logs in, unpauses and triggers ``tutorial_taskflow_api``, watches its grid turn green
by itself (``grid.js`` polls ``grid.json``), opens the ``load`` task's log, clears that
task and sees a second try run, and fails a login with a wrong password. Every wait
polls the page with a deadline.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e_harness import ADMIN, ADMIN_PASSWORD, Tradewind  # isort: skip
from tests.waiting import wait_for

DAG_ID = "tutorial_taskflow_api"
TASKS = ("extract", "transform", "load")
#: what ``load`` prints (the sum of the tutorial's order table)
LOAD_LINE = "Total order value is: 1236.70"
#: a run of three Python tasks on a busy shared machine
RUN_DEADLINE_S = 180.0


def log_in(page: Page, url: str, password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def cell_states(page: Page) -> dict[str, str]:
    """``{task_id: state}`` of the grid's newest run, read from the cells' classes."""
    states = page.eval_on_selector_all(
        "#grid a.cell",
        """cells => cells.map(c => [c.dataset.taskId, c.dataset.runId,
               (c.className.match(/state-(\\S+)/) || [])[1]])""",
    )
    runs = page.eval_on_selector_all("#grid a.run-head", "heads => heads.map(h => h.dataset.runId)")
    newest = runs[-1] if runs else None
    return {task: state for task, run, state in states if run == newest}


def test_a_wrong_password_shows_an_error_and_opens_no_session(
    page: Page, tradewind_server: Tradewind
) -> None:
    log_in(page, tradewind_server.url, password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    assert "/login" in page.url
    page.goto(f"{tradewind_server.url}/")
    expect(page).to_have_url(f"{tradewind_server.url}/login?next=%2F")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_trigger_watch_green_read_the_log_clear_and_run_again(
    page: Page, tradewind_server: Tradewind
) -> None:
    url = tradewind_server.url
    log_in(page, url)
    expect(page.get_by_role("heading", name="DAGs")).to_be_visible()

    row = page.locator(f'tr[data-dag-id="{DAG_ID}"]')
    expect(row.locator(".tag.paused")).to_be_visible()
    row.get_by_role("button", name="Unpause").click()
    row = page.locator(f'tr[data-dag-id="{DAG_ID}"]')
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    expect(row.locator(".tag.paused")).to_have_count(0)

    row.get_by_role("link", name="Trigger").click()
    expect(page.get_by_role("heading", name=f"Trigger {DAG_ID}")).to_be_visible()
    page.locator("form.trigger button[type=submit]").click()
    page.wait_for_url(f"{url}/dags/{DAG_ID}*")

    # no reloads from the test: the grid's own script must bring the cells and colours
    wait_for(
        lambda: cell_states(page) == dict.fromkeys(TASKS, "success"),
        timeout=RUN_DEADLINE_S,
        interval=0.5,
        message=lambda: f"every task of the run to be green in the grid (now {cell_states(page)})",
    )
    expect(page.locator("#grid a.run-head").last).to_have_class("run-head state-success")

    # a click opens the side panel; its link leads to the task instance's own page
    page.locator('#grid a.cell[data-task-id="load"]').last.click()
    expect(page.locator("#grid-panel #panel-log")).to_contain_text(LOAD_LINE)
    page.locator("#grid-panel a.full-page").click()
    expect(page.get_by_role("heading", name="load")).to_be_visible()
    expect(page.locator("#log")).to_contain_text(LOAD_LINE)
    expect(page.locator("table.tries tbody tr")).to_have_count(1)
    task_page = page.url

    page.get_by_role("button", name="Clear…").click()
    expect(page.locator("ul.affected")).to_have_text("load")
    page.locator("form.confirm button[type=submit]").click()
    expect(page.get_by_role("status")).to_contain_text("Cleared 1 task instances.")

    def second_try_succeeded() -> bool:
        page.goto(task_page)
        rows = page.locator("table.tries tbody tr")
        return rows.count() == 2 and "success" in rows.nth(1).inner_text()

    wait_for(
        second_try_succeeded,
        timeout=RUN_DEADLINE_S,
        interval=0.5,
        message="a second try of load to succeed",
    )
    expect(page.get_by_role("heading", name="Log of try 2")).to_be_visible()
    expect(page.locator("#log")).to_contain_text(LOAD_LINE)
    first_try = page.locator("table.tries tbody tr").first
    expect(first_try).to_contain_text("success")
