"""The DAG page's tabs: grid (and its JSON), graph, code, runs and details."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import pairwise

from flask.testing import FlaskClient
from web_harness import Browser, chain_dag, seed_history

from cluster.config import Settings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, SerializedDagRow

SVG = "{http://www.w3.org/2000/svg}"


def viewer(client: FlaskClient, tokens: dict[str, str]) -> Browser:
    return Browser(client, tokens["Viewer"])


def test_the_grid_shows_runs_by_tasks_coloured_by_state(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    html = viewer(client, tokens).page("/dags/etl")
    for task_id, state in [
        ("extract", "success"),
        ("transform", "failed"),
        ("load", "upstream_failed"),
    ]:
        assert f'class="cell state-{state}" data-task-id="{task_id}" data-run-id="run1"' in html
    assert 'href="/dags/etl/runs/run1/tasks/transform"' in html
    assert 'data-active="false"' in html and "grid.js" in html
    assert html.index(">extract<") < html.index(">transform<") < html.index(">load<")


def test_the_grid_json_reports_states_and_whether_a_run_is_active(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    before = viewer(client, tokens).get("/dags/etl/grid.json").get_json()
    assert before["active"] is False and [r["run_id"] for r in before["runs"]] == ["run1"]
    assert before["states"]["transform"] == ["failed"]
    with factory.begin() as session:
        seed_history(session, web_settings)
    after = viewer(client, tokens).get("/dags/etl/grid.json").get_json()
    assert after["active"] is True and [r["run_id"] for r in after["runs"]] == ["run1", "run2"]
    assert after["states"]["extract"] == ["success", "running"]


def test_the_graph_is_an_svg_coloured_by_the_chosen_run(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    html = viewer(client, tokens).page("/dags/etl/graph?run_id=run1")
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    nodes = {g.get("data-task-id"): g.get("class") for g in svg.iter(f"{SVG}g")}
    assert nodes == {
        "extract": "node state-success",
        "transform": "node state-failed",
        "load": "node state-upstream_failed",
    }
    assert len(list(svg.iter(f"{SVG}path"))) >= 2
    assert 'href="/dags/etl/runs/run1/tasks/load"' in html


def test_a_200_task_dag_draws_200_boxes_that_never_overlap_in_a_layer(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    dag = chain_dag("big", 200)
    with factory.begin() as session:
        session.add(Dag(dag_id="big", fileloc=dag.fileloc))
        session.add(
            SerializedDagRow(
                dag_id="big", fileloc=dag.fileloc, data=dag.to_json(), fingerprint=dag.fingerprint()
            )
        )
    html = viewer(client, tokens).page("/dags/big/graph")
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    boxes: dict[str, list[tuple[float, float]]] = {}
    count = 0
    for g in svg.iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        assert rect is not None
        top, height = float(rect.get("y", 0)), float(rect.get("height", 0))
        boxes.setdefault(g.get("data-layer", ""), []).append((top, top + height))
        count += 1
    assert count == 200
    assert len(boxes) > 5
    for spans in boxes.values():
        spans.sort()
        assert all(a_end <= b_top for (_, a_end), (b_top, _) in pairwise(spans))


def test_the_code_tab_shows_the_stored_source(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    assert "has not been stored yet" in viewer(client, tokens).page("/dags/etl/code")
    with factory.begin() as session:
        seed_history(session, web_settings)
    html = viewer(client, tokens).page("/dags/etl/code")
    assert "with DAG(&#39;etl&#39;) as dag:" in html and "extract &gt;&gt; transform" in html


def test_the_runs_tab_filters_by_state(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    with factory.begin() as session:
        seed_history(session, web_settings)
    browser = viewer(client, tokens)
    everything = browser.page("/dags/etl/runs")
    assert ">run1</a>" in everything and ">run2</a>" in everything
    running = browser.page("/dags/etl/runs?state=running")
    assert ">run2</a>" in running and ">run1</a>" not in running


def test_the_details_tab_renders_doc_md_escaped(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        row = session.get(SerializedDagRow, "etl")
        assert row is not None
        row.data = row.data.replace(
            '"doc_md":null', '"doc_md":"# Loads\\n\\n**Nightly** job <script>x</script>"'
        )
    html = viewer(client, tokens).page("/dags/etl/details")
    assert "<h3>Loads</h3>" in html and "<strong>Nightly</strong>" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&#34;minimum&#34;: 0" in html or '"minimum": 0' in html
    assert "finance" in html and "Max active runs" in html
