"""The Grid: run columns (bar height = duration, colour and mark = state, date), task
group rows that fold, mapped tasks as one cell with a count, ``grid.json`` for live
updates, the table alone for swapping in, and the side panel with its actions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from web_harness import T0, Browser

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import (
    Dag,
    DagRun,
    SerializedDagRow,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from cluster.web.grid import MARKS, Grid, GridRun, load_grid
from cluster.web.grid_page import rows_html
from cluster.web.grid_rows import display_order, grid_rows
from cluster.web.grid_shape import prepare_rows

EDGES = {
    "start": ("section.a", "section.inner.c"),
    "section.a": ("section.b",),
    "section.b": ("end",),
    "section.inner.c": ("end",),
    "end": (),
}
GROUPS = {"section": {"parent": None}, "section.inner": {"parent": "section"}}
#: run id → (state, minutes it took, each task's state)
RUNS = {
    "r1": ("success", 10, dict.fromkeys(EDGES, "success")),
    "r2": ("failed", 5, {**dict.fromkeys(EDGES, "success"), "section.b": "failed", "end": "upstream_failed"}),
}  # fmt: skip
MAPPED = 1000


def grouped_dag() -> SerializedDag:
    tasks = {
        task_id: SerializedTask(
            task_id=task_id,
            operator="BashOperator",
            upstream_task_ids=tuple(u for u, downs in EDGES.items() if task_id in downs),
            downstream_task_ids=downs,
            task_group_id=task_id.rpartition(".")[0] or None,
            is_setup=task_id == "start",
        )
        for task_id, downs in EDGES.items()
    }
    tasks["fan"] = SerializedTask(
        task_id="fan", operator="PythonOperator", mapping={"kind": "dict-of-lists", "args": {}}
    )
    return SerializedDag(
        dag_id="grouped",
        fileloc="/dags/grouped.py",
        timetable={"type": "null"},
        schedule=None,
        tasks=tasks,
        task_groups=GROUPS,
    )


@pytest.fixture
def grouped(factory: SessionFactory, seeded: None) -> Iterator[None]:
    dag = grouped_dag()
    with factory.begin() as session:
        session.add(Dag(dag_id="grouped", fileloc=dag.fileloc, is_paused=False))
        session.add(
            SerializedDagRow(dag_id="grouped", fileloc=dag.fileloc, data=dag.to_json(),
                             fingerprint=dag.fingerprint())
        )  # fmt: skip
        for day, (run_id, (state, minutes, tasks)) in enumerate(RUNS.items(), start=1):
            when = T0.replace(day=day)
            session.add(
                DagRun(dag_id="grouped", run_id=run_id, logical_date=when, run_type="scheduled",
                       state=state, conf={}, queued_at=when, start_date=when,
                       end_date=when + timedelta(minutes=minutes))
            )  # fmt: skip
            session.flush()
            for task_id, task_state in tasks.items():
                session.add(
                    TaskInstance(dag_id="grouped", run_id=run_id, task_id=task_id,
                                 state=task_state, try_number=1, hostname="worker-1")
                )  # fmt: skip
        session.add_all(
            TaskInstance(dag_id="grouped", run_id="r2", task_id="fan", map_index=i,
                         state="failed" if i == 7 else "success", try_number=1)
            for i in range(MAPPED)
        )  # fmt: skip
        b = session.get(TaskInstance, ("grouped", "r2", "section.b", -1))
        assert b is not None
        b.try_number, b.rendered_fields = 2, {"bash_command": "echo b"}
        session.add(
            TaskInstanceHistory(dag_id="grouped", run_id="r2", task_id="section.b", try_number=1,
                                state="up_for_retry", hostname="worker-9", start_date=T0)
        )  # fmt: skip
        session.add(
            XCom(dag_id="grouped", run_id="r2", task_id="section.b", key="rows", value="42")
        )
    yield


def viewer(client: FlaskClient, tokens: dict[str, str]) -> Browser:
    return Browser(client, tokens["Viewer"])


def test_rows_keep_groups_together_with_a_group_row_before_its_members() -> None:
    dag = grouped_dag()
    rows = grid_rows(dag, display_order(dag))
    shape = [(r.row_id, r.label, r.depth, r.is_group) for r in rows]
    assert shape == [
        ("start", "start", 0, False),
        ("fan", "fan", 0, False),
        ("section", "section", 0, True),
        ("section.a", "a", 1, False),
        ("section.inner", "inner", 1, True),
        ("section.inner.c", "c", 2, False),
        ("section.b", "b", 1, False),
        ("end", "end", 0, False),
    ]
    section = rows[2]
    assert set(section.members) == {"section.a", "section.b", "section.inner.c"}
    assert rows[0].role == "setup" and rows[3].title == "section.a"


def test_a_task_mapped_a_thousand_times_is_one_row_of_counted_states(
    factory: SessionFactory, grouped: None
) -> None:
    with factory() as session:
        grid = load_grid(session, "grouped", display_order(grouped_dag()))
    assert grid.state("fan", "r2") == "failed"  # the most urgent state names the cell
    assert grid.mapped[("fan", "r2")] == {"success": MAPPED - 1, "failed": 1}
    assert grid.mapped_count("fan", "r2") == MAPPED and grid.state("fan", "r1") is None
    assert grid.mapped_summary("fan", "r2") == "1000 mapped: 1 failed, 999 success"


def test_the_grid_page_draws_run_bars_group_rows_marks_and_counts(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    html = viewer(client, tokens).page("/dags/grouped")
    # the longest run's bar is full height (48 px), the other in proportion
    bars = re.findall(r'<rect class="state-(\w+)" x="1" width="12" y="(\d+)" height="(\d+)"', html)
    assert bars == [("success", "0", "48"), ("failed", "24", "24")]
    assert 'title="r2: failed, scheduled run of 2024-01-02 00:00:00, took 5m"' in html
    assert '<span class="run-date" aria-hidden="true">01-02</span>' in html
    assert re.search(
        r'<tr class="group" data-group-id="section\.inner" data-groups="section">', html
    )
    assert 'aria-expanded="true" data-group="section"' in html
    assert 'data-task-id="section.inner.c" data-groups="section section.inner"' in html
    # the group's cell in r2 shows the most urgent state of its tasks
    assert re.search(
        r'class="cell group-cell state-failed" data-group-id="section" data-run-id="r2"', html
    )
    cell = re.search(
        r'<a class="cell state-failed mapped" data-task-id="fan" data-run-id="r2"[^>]*>(.*?)</a>',
        html,
    )
    assert cell is not None and '<span class="count">1000</span>' in cell.group(1)
    assert f'<span class="mark" aria-hidden="true">{MARKS["failed"]}</span>' in cell.group(1)
    assert 'title="fan · r2: 1000 mapped: 1 failed, 999 success"' in html
    assert 'href="/dags/grouped/runs/r2/tasks/section.b" title="section.b · r2: failed"' in html
    assert html.count('<td><a class="cell') == 11  # 5 tasks in r1 (no fan), 6 in r2
    assert '<span class="role-mark" title="setup task">↑</span> start' in html


def test_grid_json_gives_bars_labels_and_group_states(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    data = viewer(client, tokens).get("/dags/grouped/grid.json").get_json()
    assert [(r["run_id"], r["duration"], r["bar"]) for r in data["runs"]] == [
        ("r1", 600.0, 1.0),
        ("r2", 300.0, 0.5),
    ]
    assert data["runs"][1]["label"].startswith("r2: failed, scheduled run of")
    # lists in the order of the runs: 5,000 cells stay small
    assert data["groups"] == {
        "section": ["success", "failed"],
        "section.inner": ["success", "success"],
    }
    assert data["states"]["end"] == ["success", "upstream_failed"]
    assert data["states"]["fan"] == [None, "failed"]
    assert data["mapped"] == {"fan": [None, {"failed": 1, "success": MAPPED - 1}]}
    assert data["active"] is False


def test_the_table_alone_is_served_for_swapping_in(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    html = viewer(client, tokens).page("/dags/grouped?fragment=table")
    assert html.lstrip().startswith("<table")
    assert '<table class="grid" id="grid" data-runs="r1 r2"' in html
    assert "<html" not in html and "grid-panel" not in html


def test_the_panel_shows_the_chosen_try_its_log_fields_and_xcoms(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    browser = viewer(client, tokens)
    html = browser.page("/dags/grouped/runs/r2/tasks/section.b/panel")
    assert "<html" not in html and 'id="panel-title"' in html
    assert "Log of try 2" in html and 'data-try-number="2"' in html
    assert "echo b" in html and ">rows<" in html and ">42<" in html
    assert 'href="/dags/grouped/runs/r2/tasks/section.b/panel?try_number=1"' in html
    assert "panel-action" not in html  # a Viewer is offered no action
    first = browser.page("/dags/grouped/runs/r2/tasks/section.b/panel?try_number=1")
    assert "Log of try 1" in first and 'class="current" aria-current="true"' in first
    # the full page shows the latest try unless one was chosen
    assert 'class="full-page" href="/dags/grouped/runs/r2/tasks/section.b"' in html
    assert 'class="full-page" href="/dags/grouped/runs/r2/tasks/section.b?try_number=1"' in first


def test_the_panel_of_a_mapped_task_counts_and_lists_its_instances(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    html = viewer(client, tokens).page("/dags/grouped/runs/r2/tasks/fan/panel")
    assert "1000 mapped instances" in html
    assert html.count('class="panel-link"') == 100
    assert "The first 100 of 1000" in html
    assert 'href="/dags/grouped/runs/r2/tasks/fan/panel?map_index=7"' in html
    one = viewer(client, tokens).page("/dags/grouped/runs/r2/tasks/fan/panel?map_index=7")
    assert "fan[7]" in one


def test_panel_actions_preview_then_clear_and_mark_with_csrf(
    client: FlaskClient, tokens: dict[str, str], grouped: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    base = "/dags/grouped/runs/r2/tasks/section.b"
    html = user.page(base + "/panel")
    assert html.count('name="csrf_token"') == 3 and 'data-kind="clear"' in html
    preview = user.get(base + "/clear?via=panel&downstream=1").get_json()
    # its setup task is cleared with it, as in Airflow
    assert preview == {"dry_run": True, "task_instances": ["end", "section.b", "start"]}
    assert user.post(base + "/clear", {"via": "panel"}, csrf=False).status_code == 400
    done = user.post(base + "/clear", {"via": "panel"})
    assert done.status_code == 200 and done.get_json() == {
        "dry_run": False,
        "task_instances": ["section.b", "start"],
    }
    marked = user.post(base + "/mark", {"via": "panel", "state": "success"})
    assert marked.get_json() == {"marked": "success"}
    with factory() as session:
        row = session.get(TaskInstance, ("grouped", "r2", "section.b", -1))
        assert row is not None and row.state == "success"


def test_a_favicon_on_every_page_and_at_the_root_without_login(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data
    html = viewer(client, tokens).page("/dags/grouped")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert '<meta name="color-scheme" content="light dark">' in html


def test_cell_links_are_those_url_for_builds_for_awkward_ids(app: Flask) -> None:
    """Cells link to the run's path plus the quoted task id (built once per row and
    column): the same path ``url_for`` gives the task instance page."""
    run_id, task_id = "manual__2024-01-01T00:00:00+00:00 a/b?c#d%é", "group.task-1"
    grid = Grid(
        runs=[GridRun(run_id, "success", "manual", T0)],
        task_ids=[task_id],
        states={(task_id, run_id): "success"},
    )
    with app.test_request_context():
        html = str(rows_html("my dag", prepare_rows(grid_rows(None, [task_id])), grid, {}))
        expected = url_for(
            "task_instances.show", dag_id="my dag", dag_run_id=run_id, task_id=task_id
        )
    assert f'href="{expected}"' in html


def test_the_rows_are_built_once_per_version_of_the_dag_and_keep_removed_tasks(
    client: FlaskClient, tokens: dict[str, str], grouped: None, factory: SessionFactory
) -> None:
    """The rows are reused while the fingerprint stays (its data unread), rebuilt when
    a new version is stored; a task the new version dropped keeps its row, at the end."""
    browser = viewer(client, tokens)
    assert 'data-task-id="section.b"' in browser.page("/dags/grouped")
    dag = grouped_dag()
    tasks = {k: v for k, v in dag.tasks.items() if k != "section.b"}
    tasks["added"] = SerializedTask(task_id="added", operator="EmptyOperator")
    newer = SerializedDag(dag.dag_id, dag.fileloc, dag.timetable, None, tasks=tasks,
                          task_groups=dag.task_groups)  # fmt: skip
    with factory.begin() as session:
        row = session.get(SerializedDagRow, "grouped")
        assert row is not None
        row.data = newer.to_json()  # the same fingerprint: the rows built before are kept
    assert ">added<" not in browser.page("/dags/grouped")
    with factory.begin() as session:
        row = session.get(SerializedDagRow, "grouped")
        assert row is not None
        row.fingerprint = newer.fingerprint()
    html = browser.page("/dags/grouped")
    assert ">added<" in html
    # section.b's instances remain: a plain row after the DAG's own, no longer in a group
    assert html.index(">added<") < html.index('<tr data-task-id="section.b" data-groups="">')
    data = browser.get("/dags/grouped/grid.json").get_json()
    assert data["task_ids"][-1] == "section.b" and "added" in data["task_ids"]


def test_the_run_page_lists_every_instance_with_its_link_state_try_and_host(
    client: FlaskClient, tokens: dict[str, str], grouped: None
) -> None:
    """The rows are written in Python (cluster.web.run_rows): the links are url_for's,
    a mapped instance links with its map index, the state badge is the macro's."""
    html = viewer(client, tokens).page("/dags/grouped/runs/r2")
    assert html.count('<tr><td><a href="/dags/grouped/runs/r2/tasks/') == len(EDGES) + MAPPED
    assert (
        '<tr><td><a href="/dags/grouped/runs/r2/tasks/section.b">section.b</a></td>'
        '<td><span class="state state-failed">failed</span></td><td>2</td>'
    ) in html
    assert "<td>worker-1</td></tr>" in html
    assert '<a href="/dags/grouped/runs/r2/tasks/fan?map_index=7">fan[7]</a>' in html
    assert "No task instances yet" not in html
