"""The task instance page (tries, fields, XComs, logs) and the run and task actions."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_harness import Browser, seed_history

from cluster.config import Settings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import AuditLog, DagRun, TaskInstance

TI = "/dags/etl/runs/run1/tasks"


@pytest.fixture
def history(seeded: None, factory: SessionFactory, web_settings: Settings) -> None:
    with factory.begin() as session:
        seed_history(session, web_settings)


def states(factory: SessionFactory, run_id: str = "run1") -> dict[str, str]:
    with factory() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(TaskInstance.run_id == run_id)
        )
        return dict(rows.all())


def test_the_page_lists_every_try_fields_xcoms_and_the_local_log(
    client: FlaskClient, tokens: dict[str, str], history: None
) -> None:
    html = Browser(client, tokens["Viewer"]).page(f"{TI}/transform")
    assert "worker-9" in html and html.count('class="state state-failed"') >= 3
    assert "bash_command" in html and "echo rows=10" in html
    assert "Log of try 2" in html and "transform try 2: KeyError &#39;rows&#39;" in html
    assert 'data-live="false"' in html
    assert "Clear…" not in html, "a Viewer is not offered the actions"
    xcoms = Browser(client, tokens["Viewer"]).page(f"{TI}/extract")
    assert "return_value" in xcoms and "[1, 2]" in xcoms


def test_a_try_that_ran_on_another_host_says_where_its_log_is(
    client: FlaskClient, tokens: dict[str, str], history: None
) -> None:
    html = Browser(client, tokens["Viewer"]).page(f"{TI}/transform?try_number=1")
    assert "Log of try 1" in html
    assert "is on host worker-9, whose log server" in html and "cannot be reached" in html


def test_the_live_log_endpoint_reads_from_the_offset(
    client: FlaskClient, tokens: dict[str, str], history: None
) -> None:
    viewer = Browser(client, tokens["Viewer"])
    page = viewer.page("/dags/etl/runs/run2/tasks/extract")
    assert 'data-live="true"' in page and "extracting… rows 1-100" in page
    whole = viewer.get("/dags/etl/runs/run2/tasks/extract/log.json").get_json()
    assert whole["text"] == "extracting… rows 1-100\n" and whole["live"] is True
    assert whole["next_offset"] == len("extracting… rows 1-100\n".encode())
    rest = viewer.get("/dags/etl/runs/run2/tasks/extract/log.json?offset=14").get_json()
    assert rest["offset"] == 14 and rest["text"] == "rows 1-100\n"
    end = viewer.get(f"/dags/etl/runs/run2/tasks/extract/log.json?offset={whole['next_offset']}")
    assert end.get_json()["text"] == ""
    remote = viewer.get(f"{TI}/transform/log.json?try_number=1").get_json()
    assert remote["source"] == "unreachable" and remote["host"] == "worker-9"
    assert "worker-9" in remote["message"]


def test_clearing_shows_what_it_will_clear_then_clears_to_none(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    confirm = user.page(f"{TI}/transform/clear?downstream=1")
    assert "These 2 task instances will be cleared" in confirm
    assert "<li>load</li>" in confirm and "<li>transform</li>" in confirm
    assert states(factory)["transform"] == "failed", "the confirmation changes nothing"
    assert user.post(f"{TI}/transform/clear", {"downstream": "1"}, csrf=False).status_code == 400
    assert user.post(f"{TI}/transform/clear", {"downstream": "1"}).status_code == 302
    assert states(factory) == {"extract": "success", "transform": "none", "load": "none"}
    with factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "run1"))
        assert run is not None and run.state == "queued"
        assert session.scalar(select(AuditLog.event).where(AuditLog.event == "web.tasks.clear"))


def test_clearing_with_upstream_and_only_failed(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    confirm = user.page(f"{TI}/load/clear?upstream=1&only_failed=1")
    assert "<li>extract</li>" not in confirm and "<li>transform</li>" in confirm
    user.post(f"{TI}/load/clear", {"upstream": "1", "only_failed": "1"})
    assert states(factory) == {"extract": "success", "transform": "none", "load": "none"}


def test_marking_a_task_instance(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    assert "it will be marked success" in user.page(f"{TI}/transform/mark?state=success")
    assert (
        Browser(client, tokens["Viewer"]).get(f"{TI}/transform/mark?state=success").status_code
        == 403
    )
    assert user.post(f"{TI}/transform/mark", {"state": "success"}, csrf=False).status_code == 400
    assert states(factory)["transform"] == "failed"
    assert user.post(f"{TI}/transform/mark", {"state": "success"}).status_code == 302
    assert states(factory)["transform"] == "success"
    assert states(factory)["load"] == "none", "the failed downstream is cleared, as Airflow"
    assert user.post(f"{TI}/transform/mark", {"state": "running"}).status_code == 400


def test_marking_clearing_and_deleting_a_run(
    client: FlaskClient, tokens: dict[str, str], history: None, factory: SessionFactory
) -> None:
    user = Browser(client, tokens["User"])
    assert "extract (running)" in user.page("/dags/etl/runs/run2/mark?state=failed")
    assert user.post("/dags/etl/runs/run2/mark", {"state": "failed"}, csrf=False).status_code == 400
    assert user.post("/dags/etl/runs/run2/mark", {"state": "failed"}).status_code == 302
    assert states(factory, "run2") == {"extract": "failed"}
    with factory() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == "run2"))
        assert run is not None and run.state == "failed"

    assert "These 1 task instances" in user.page("/dags/etl/runs/run2/clear")
    assert user.post("/dags/etl/runs/run2/clear").status_code == 302
    assert states(factory, "run2") == {"extract": "none"}

    assert "will be deleted" in user.page("/dags/etl/runs/run2/delete")
    assert user.post("/dags/etl/runs/run2/delete", csrf=False).status_code == 400
    assert user.post("/dags/etl/runs/run2/delete").status_code == 302
    with factory() as session:
        assert session.scalar(select(DagRun).where(DagRun.run_id == "run2")) is None


def test_the_run_page_lists_its_task_instances_and_conf(
    client: FlaskClient, tokens: dict[str, str], history: None
) -> None:
    html = Browser(client, tokens["Viewer"]).page("/dags/etl/runs/run2")
    assert "&#34;rows&#34;: 3" in html or '"rows": 3' in html
    assert 'href="/dags/etl/runs/run2/tasks/extract"' in html and "Mark success" not in html


def test_a_missing_task_instance_is_an_html_404(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    response = Browser(client, tokens["Viewer"]).get(f"{TI}/nope")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "task instance &#39;nope&#39;" in response.get_data(as_text=True)
