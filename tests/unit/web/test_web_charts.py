"""The pure chart drawers: given rows, the SVG has the right bars, labels and titles."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

from cluster.web.charts.across_runs import RunColumn, Series, draw_across_runs
from cluster.web.charts.calendar import day_state, draw_calendar
from cluster.web.charts.gantt import Attempt, draw_gantt
from cluster.web.charts.sparkline import RunBar, draw_sparkline
from cluster.web.charts.svg import duration_text, nice_ticks, time_ticks

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def titles(root: ET.Element, tag: str, css: str) -> list[str]:
    return [
        (e.findtext(f"{SVG}title") or "")
        for e in root.iter(f"{SVG}{tag}")
        if not css or css in (e.get("class") or "").split()
    ]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_gantt_bar_per_try_with_its_queued_span_in_task_order() -> None:
    attempts = [
        Attempt("load", -1, 1, "running", at(20), at(22), None),
        Attempt("extract", -1, 2, "success", at(5), at(6), at(16)),
        Attempt("extract", -1, 1, "failed", None, at(0), at(4)),
    ]
    root = parse(draw_gantt(attempts, order=["extract", "load"], now=at(30)))
    bars = [e for e in root.iter(f"{SVG}rect") if "bar" in (e.get("class") or "")]
    assert [(b.get("data-task-id"), b.get("data-try"), b.get("class")) for b in bars] == [
        ("extract", "1", "bar state-failed"),
        ("extract", "2", "bar state-success"),
        ("load", "1", "bar state-running"),
    ]
    failed, succeeded, running = (float(b.get("x") or 0) for b in bars)
    assert failed < succeeded < running
    # the running try reaches "now" (30 s of a 30 s axis: the right end of the plot)
    assert float(bars[2].get("width") or 0) > float(bars[1].get("width") or 0) * 0.7
    assert titles(root, "rect", "bar")[0].startswith("extract try 1: failed, ran 4.0 s")
    assert titles(root, "rect", "queued-span") == [
        "extract try 2: queued for 1.0 s",
        "load try 1: queued for 2.0 s",
    ]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "row-label"]
    assert labels == ["extract", "load"]


def test_a_gantt_row_per_mapped_instance_links_to_its_page() -> None:
    attempts = [Attempt("m", i, 1, "success", at(0), at(1), at(2)) for i in (1, 0)]
    svg = draw_gantt(attempts, now=at(5), link=lambda t, i: f"/ti/{t}?map_index={i}")
    root = parse(svg)
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == ["/ti/m?map_index=0", "/ti/m?map_index=1"]
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "row-label"] == [
        "m [0]",
        "m [1]",
    ]


def test_a_gantt_of_a_run_that_never_started_says_so() -> None:
    svg = draw_gantt([Attempt("a", -1, 0, "none", None, None, None)], now=T0)
    assert "No try of this run has been queued yet." in svg
    assert parse(svg).get("aria-label") == "Gantt chart: nothing ran yet"


def test_a_thousand_task_gantt_has_a_thousand_bars_and_escapes_names() -> None:
    attempts = [
        Attempt(f"t<{i}>", -1, 1, "success", at(i), at(i + 1), at(i + 3)) for i in range(1000)
    ]
    root = parse(draw_gantt(attempts, now=at(2000)))
    assert len(titles(root, "rect", "bar")) == 1000
    assert any(t.text == "t<999>" for t in root.iter(f"{SVG}text"))


def test_across_runs_draws_a_line_per_task_and_leaves_gaps_for_missing_values() -> None:
    runs = [RunColumn(f"r{i}", f"2026-03-0{i + 1}") for i in range(3)]
    series = [Series("extract", (10.0, None, 30.0)), Series("load", (5.0, 6.0, 7.0))]
    root = parse(
        draw_across_runs(
            runs, series, kind="duration", label="Task duration", value_text=duration_text
        )
    )
    groups = [g for g in root.iter(f"{SVG}g") if g.get("data-series")]
    assert [g.get("data-series") for g in groups] == ["extract", "load"]
    extract, load = groups
    assert len(extract.findall(f"{SVG}polyline")) == 0  # two lone points: no segment
    assert len(extract.findall(f"{SVG}circle")) == 2
    assert len(load.findall(f"{SVG}polyline")) == 1
    assert titles(load, "circle", "") == [
        "load · 2026-03-01: 5.0 s",
        "load · 2026-03-02: 6.0 s",
        "load · 2026-03-03: 7.0 s",
    ]
    run_labels = [t.text for t in root.iter(f"{SVG}text") if "transform" in t.attrib]
    assert run_labels == ["2026-03-01", "2026-03-02", "2026-03-03"]
    legend = [t.text for g in root.iter(f"{SVG}g") if g.get("class") == "legend" for t in g]
    assert "extract" in legend and "load" in legend


def test_across_runs_with_no_value_says_so() -> None:
    svg = draw_across_runs([], [], kind="tries", label="Tries", value_text=str)
    assert "No values yet" in svg


def test_the_calendar_colours_a_day_by_its_most_urgent_run_and_crosses_failures() -> None:
    days = {
        date(2026, 1, 1): {"success": 2},
        date(2026, 1, 2): {"success": 1, "failed": 1},
        date(2026, 6, 30): {"running": 1, "success": 3},
    }
    root = parse(draw_calendar(2026, days))
    cells = {r.get("data-date"): r for r in root.iter(f"{SVG}rect") if r.get("data-date")}
    assert len(cells) == 365
    assert cells["2026-01-01"].get("class") == "day state-success"
    assert cells["2026-01-02"].get("class") == "day state-failed"
    assert cells["2026-06-30"].get("class") == "day state-running"
    assert cells["2026-03-01"].get("class") == "day empty"
    assert cells["2026-01-02"].findtext(f"{SVG}title") == "2026-01-02: 1 failed, 1 success"
    assert cells["2026-03-01"].findtext(f"{SVG}title") == "2026-03-01: no runs"
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "mark"]) == 1
    # 1 January 2026 is a Thursday: the fourth row of the first column
    assert cells["2026-01-01"].get("x") == cells["2026-01-04"].get("x")
    assert float(cells["2026-01-05"].get("x") or 0) > float(cells["2026-01-04"].get("x") or 0)


def test_day_state_prefers_failed_then_running_then_queued_then_success() -> None:
    assert day_state({"success": 3, "failed": 1}) == "failed"
    assert day_state({"success": 3, "queued": 1}) == "queued"
    assert day_state({"success": 0}) == "none"


def test_the_sparkline_has_a_bar_per_run_scaled_to_the_longest() -> None:
    root = parse(
        draw_sparkline(
            [RunBar("a", "success", 10.0), RunBar("b", "failed", 20.0), RunBar("c", "queued", None)]
        )
    )
    bars = list(root.iter(f"{SVG}rect"))
    assert [b.get("class") for b in bars] == ["state-success", "state-failed", "state-queued"]
    heights = [float(b.get("height") or 0) for b in bars]
    assert heights[1] == 2 * heights[0] and heights[2] == 1.0
    assert [b.findtext(f"{SVG}title") for b in bars] == [
        "a: success, 10 s",
        "b: failed, 20 s",
        "c: queued, not finished",
    ]
    assert draw_sparkline([]) == ""
    linked = parse(draw_sparkline([RunBar("a", "success", 1.0)], href="/dags/x/runs"))
    assert [a.get("href") for a in linked.iter(f"{SVG}a")] == ["/dags/x/runs"]


def test_ticks_fall_on_round_values() -> None:
    assert nice_ticks(9.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert time_ticks(3600) == [0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0, 3600.0]
    assert duration_text(0.25) == "250 ms" and duration_text(125) == "2 min 5 s"
    assert duration_text(90000) == "1 d 1 h"
