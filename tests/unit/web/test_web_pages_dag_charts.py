"""The chart tabs of a DAG: Gantt, task duration, tries, landing times and calendar."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

from flask.testing import FlaskClient
from web_harness import T0, Browser, seed_history

from cluster.config import Settings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun, TaskInstance

SVG = "{http://www.w3.org/2000/svg}"


def timed(factory: SessionFactory, settings: Settings) -> None:
    """run1's tries get times: extract 0-10 s, transform try 2 12-20 s (try 1 in history)."""
    with factory.begin() as session:
        seed_history(session, settings)
        run1 = session.get(DagRun, 1)
        assert run1 is not None
        run1.data_interval_end = T0
        for task_id, start, end in (("extract", 0, 10), ("transform", 12, 20)):
            ti = session.get(TaskInstance, ("etl", "run1", task_id, -1))
            assert ti is not None
            ti.queued_at = T0 + timedelta(seconds=start - 1)
            ti.start_date = T0 + timedelta(seconds=start)
            ti.end_date = T0 + timedelta(seconds=end)


def chart(html: str) -> ET.Element:
    return ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])


def test_the_gantt_tab_draws_every_try_of_the_chosen_run(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    timed(factory, web_settings)
    html = Browser(client, tokens["Viewer"]).page("/dags/etl/gantt?run_id=run1")
    svg = chart(html)
    bars = [
        (r.get("data-task-id"), r.get("data-try"), r.get("class"))
        for r in svg.iter(f"{SVG}rect")
        if "bar" in (r.get("class") or "").split()
    ]
    assert bars == [
        ("extract", "1", "bar state-success"),
        ("transform", "1", "bar state-failed"),
        ("transform", "2", "bar state-failed"),
    ]
    links = [a.get("href") for a in svg.iter(f"{SVG}a")]
    assert "/dags/etl/runs/run1/tasks/extract" in links
    assert 'aria-current="page"' in html and ">Gantt</a>" in html
    assert '<option value="run2" >run2</option>' in html or 'value="run2"' in html


def test_the_across_runs_tabs_draw_a_line_per_task(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    timed(factory, web_settings)
    browser = Browser(client, tokens["Viewer"])
    duration = chart(browser.page("/dags/etl/duration?runs=10"))
    titles = [c.findtext(f"{SVG}title") for c in duration.iter(f"{SVG}circle")]
    assert titles == ["extract · 2024-01-01 00:00: 10 s", "transform · 2024-01-01 00:00: 8.0 s"]
    tries = chart(browser.page("/dags/etl/tries"))
    series = {g.get("data-series") for g in tries.iter(f"{SVG}g") if g.get("data-series")}
    assert series == {"extract", "transform", "load"}
    landing = chart(browser.page("/dags/etl/landing"))
    assert "extract · 2024-01-01 00:00: 10 s" in [
        c.findtext(f"{SVG}title") for c in landing.iter(f"{SVG}circle")
    ]
    assert browser.get("/dags/etl/duration?runs=lots").status_code == 200


def test_the_calendar_tab_shows_the_year_of_the_latest_run(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    timed(factory, web_settings)
    browser = Browser(client, tokens["Viewer"])
    html = browser.page("/dags/etl/calendar")
    assert "Calendar 2024" in html
    cells = {r.get("data-date"): r.get("class") for r in chart(html).iter(f"{SVG}rect")}
    assert cells["2024-01-01"] == "day state-failed"
    assert cells["2024-01-02"] == "day state-running"
    assert cells["2024-01-03"] == "day empty"
    other = chart(browser.page("/dags/etl/calendar?year=2023"))
    assert {c for c in (r.get("class") for r in other.iter(f"{SVG}rect")) if c and "day" in c} == {
        "day empty"
    }


def test_chart_tabs_of_an_unknown_dag_are_404(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    browser = Browser(client, tokens["Viewer"])
    for tab in ("gantt", "duration", "tries", "landing", "calendar"):
        assert browser.get(f"/dags/nope/{tab}").status_code == 404


def test_an_across_runs_chart_of_many_tasks_draws_the_highest_unless_asked_for_all(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        session.add(Dag(dag_id="wide", fileloc="/dags/wide.py"))
        session.add(
            DagRun(dag_id="wide", run_id="r", logical_date=T0, run_type="manual", state="success")
        )
        for i in range(50):
            session.add(
                TaskInstance(
                    dag_id="wide",
                    run_id="r",
                    task_id=f"t{i:02d}",
                    state="success",
                    try_number=1,
                    start_date=T0,
                    end_date=T0 + timedelta(seconds=i + 1),
                )
            )
    browser = Browser(client, tokens["Viewer"])
    html = browser.page("/dags/wide/duration")
    drawn = {g.get("data-series") for g in chart(html).iter(f"{SVG}g") if g.get("data-series")}
    assert drawn == {f"t{i:02d}" for i in range(10, 50)}, "the 40 longest"
    assert "The 40 tasks with the highest values of 50 are drawn." in html
    every = chart(browser.page("/dags/wide/duration?lines=all"))
    assert len([g for g in every.iter(f"{SVG}g") if g.get("data-series")]) == 50
