"""The DAGs page and the DAG-level actions: pause, trigger, delete.

Forms are posted as a signed-in browser does, with the session's CSRF token; without
it every action is refused and nothing changes.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from web_harness import T0, Browser, context_of

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import AuditLog, Dag, DagRun


def browser(client: FlaskClient, tokens: dict[str, str], role: str = "User") -> Browser:
    return Browser(client, tokens[role])


def test_the_dags_page_lists_dags_with_tags_runs_and_the_import_error_banner(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    html = browser(client, tokens, "Viewer").page("/")
    assert 'href="/dags/etl"' in html and 'href="/dags/other"' in html
    assert "finance" in html and "misc" in html and "ops" in html
    assert "<title>run1: failed, not finished</title>" in html, "a sparkline bar per run"
    assert 'href="/dags/etl/runs/run1"' in html
    assert 'title="failed: 1 of the last 1 runs"' in html
    # the latest run's tasks by state, the state in words beside the colour
    for state in ("success", "failed", "upstream_failed"):
        assert f'title="{state}: 1 tasks in the latest run"' in html
        assert f'<span class="sr"> {state}</span>' in html
    assert "1 DAG file failed to import" in html and 'href="/importerrors"' in html
    assert "viewer (Viewer)" in html
    assert "Trigger</a>" not in html, "a Viewer is not offered the trigger button"
    assert "Trigger</a>" in browser(client, tokens, "User").page("/")


def test_the_dags_page_filters_by_id_tag_and_state(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    viewer = browser(client, tokens, "Viewer")
    assert 'data-dag-id="etl"' not in viewer.page("/?search=oth")
    assert 'data-dag-id="other"' in viewer.page("/?search=oth")
    tagged = viewer.page("/?tag=finance")
    assert 'data-dag-id="etl"' in tagged and 'data-dag-id="other"' not in tagged
    paused = viewer.page("/?state=paused")
    assert 'data-dag-id="etl"' in paused and 'data-dag-id="other"' not in paused
    active = viewer.page("/?state=active")
    assert 'data-dag-id="other"' in active and 'data-dag-id="etl"' not in active


def _paused(factory: SessionFactory, dag_id: str) -> bool:
    with factory() as session:
        row = session.get(Dag, dag_id)
        assert row is not None
        return row.is_paused


def test_pausing_needs_the_csrf_token_and_flips_the_flag(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = browser(client, tokens, "User")
    refused = user.post("/dags/etl/pause", {"paused": "false"}, csrf=False)
    assert refused.status_code == 400 and _paused(factory, "etl")
    done = user.post("/dags/etl/pause", {"paused": "false", "next": "/?tag=finance"})
    assert done.status_code == 302 and done.headers["Location"] == "/?tag=finance"
    assert not _paused(factory, "etl")
    assert "DAG etl unpaused." in user.page("/")
    assert browser(client, tokens, "Viewer").post("/dags/etl/pause").status_code == 403
    with factory() as session:
        events = session.scalars(select(AuditLog.event).where(AuditLog.dag_id == "etl")).all()
    assert "web.dags.unpause" in events


def test_the_trigger_form_shows_params_with_defaults(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    html = browser(client, tokens).page("/dags/etl/trigger")
    assert 'name="param.rows"' in html and 'value="10"' in html and 'type="number"' in html


def test_triggering_queues_a_run_with_the_validated_conf(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = browser(client, tokens)
    assert user.post("/dags/etl/trigger", {"param.rows": "5"}, csrf=False).status_code == 400
    response = user.post(
        "/dags/etl/trigger",
        {"param.rows": "5", "run_id": "by_hand", "conf": '{"note": "hi"}'},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/dags/etl"
    with factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "by_hand"))
    assert run is not None and run.state == "queued" and run.run_type == "manual"
    assert run.conf == {"rows": 5, "note": "hi"}


def test_a_conf_that_breaks_the_params_is_shown_in_the_form(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = browser(client, tokens)
    response = user.post("/dags/etl/trigger", {"param.rows": "-1", "run_id": "bad"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="trigger-error"' in html and "rows" in html and "minimum" in html
    assert 'value="-1"' in html, "the form keeps what the user typed"
    not_a_number = user.post("/dags/etl/trigger", {"param.rows": "ten"})
    assert "not a whole number" in not_a_number.get_data(as_text=True)
    with factory() as session:
        assert session.scalar(select(DagRun).where(DagRun.run_id == "bad")) is None


def test_deleting_a_dag_asks_first_then_removes_its_records(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    op = browser(client, tokens, "Op")
    assert "with its 1 runs" in op.page("/dags/etl/delete")
    assert browser(client, tokens, "Viewer").get("/dags/etl/delete").status_code == 403
    assert op.post("/dags/etl/delete", csrf=False).status_code == 400
    assert op.post("/dags/etl/delete").status_code == 302
    with factory() as session:
        assert session.get(Dag, "etl") is None
        assert session.scalars(select(DagRun).where(DagRun.dag_id == "etl")).all() == []


def test_the_dags_page_costs_a_bounded_number_of_queries_for_100_dags(
    app: Flask, client: FlaskClient, tokens: dict[str, str], factory: SessionFactory
) -> None:
    with factory.begin() as session:
        for i in range(100):
            dag_id = f"dag_{i:03d}"
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py", tags=["bulk"]))
            for n in range(27):
                state = "success" if n % 3 else "failed"
                session.add(
                    DagRun(
                        dag_id=dag_id,
                        run_id=f"scheduled__{n:02d}",
                        logical_date=T0 + timedelta(days=n),
                        run_type="scheduled",
                        state=state,
                    )
                )
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    viewer = browser(client, tokens, "Viewer")
    event.listen(context_of(app).engine, "before_cursor_execute", count)
    try:
        html = viewer.page("/")
        built = list(statements)
        statements.clear()
        again = viewer.page("/")
    finally:
        event.remove(context_of(app).engine, "before_cursor_execute", count)
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart sparkline"') == 100
    assert html.count('<rect class="state-') == 100 * 25, "the last 25 runs of each DAG"
    assert "<title>scheduled__26: success, not finished</title>" in html
    assert "<title>scheduled__01: " not in html, "older runs are left out"
    # two more than before: the latest runs' task counts, and a page read with LIMIT
    # plus its count and the distinct tags instead of every DAG
    assert len(built) <= 14, built
    assert again.count('<rect class="state-') == 100 * 25
    reads = [s for s in statements if "dag" in s or "import_error" in s or "change_counter" in s]
    assert reads[0] == "SELECT name, changes FROM change_counter"
    # reused: besides the counters, only the latest runs' task counts (not counted)
    assert len(reads) == 2 and "FROM task_instance" in reads[1], reads


def test_the_dags_list_sorts_by_a_column_and_pages_keep_the_order(
    client: FlaskClient, tokens: dict[str, str], factory: SessionFactory
) -> None:
    with factory.begin() as session:
        for i in range(120):
            dag_id = f"s_{i:03d}"
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py", owners=f"o{i % 7}"))
        for i in (5, 50):  # s_050 ran last, s_005 before it; the others never ran
            session.add(
                DagRun(
                    dag_id=f"s_{i:03d}",
                    run_id="r",
                    logical_date=T0 + timedelta(days=i),
                    run_type="manual",
                    state="success",
                )
            )
    viewer = browser(client, tokens, "Viewer")

    def order(html: str) -> list[str]:
        return re.findall(r'<tr data-dag-id="([^"]+)">', html)

    by_last_run = viewer.page("/?sort=last_run&order=desc")
    assert order(by_last_run)[:3] == ["s_050", "s_005", "s_119"], "never-run DAGs come last"
    assert 'aria-sort="descending"' in by_last_run
    by_owner = viewer.page("/?sort=owner")
    owners = order(by_owner)
    assert owners[:2] == ["s_000", "s_007"] and len(owners) == 100
    assert "page 1 of 2" in by_owner
    assert 'href="/?sort=owner&amp;page=2"' in by_owner
    second = order(viewer.page("/?sort=owner&page=2"))
    assert len(second) == 20 and not set(second) & set(owners)
    assert order(viewer.page("/?sort=nonsense"))[:2] == ["s_000", "s_001"]
