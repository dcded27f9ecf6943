"""Reused views are never stale: the DAG list and the DAGs page see every change at once.

The app runs in this process against a real metastore (SQLite, MariaDB, PostgreSQL); changes
are written through a second engine, as another webserver or the scheduler would.
Each test first makes sure the view is in the cache, then changes the rows under it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, event, select, text, update
from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.metastore import users
from cluster.metastore.change_counters import COUNTED, read_changes
from cluster.metastore.engine import SessionFactory, create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import Dag, DagRun, ImportErrorRow, TaskInstance
from cluster.web import create_app
from cluster.web.api.dags import list_statements, stamp_of_rows
from cluster.web.context import EXTENSION, WebContext
from cluster.web.stamps import read_stamp

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def app(metastore_settings: Settings) -> Iterator[Flask]:
    app = create_app(metastore_settings.replace("webserver", secret_key="view-cache-test"))
    migrate(web_context(app).engine)
    yield app
    web_context(app).engine.dispose()


@pytest.fixture
def elsewhere(metastore_settings: Settings) -> Iterator[SessionFactory]:
    """Sessions of another process: the scheduler, another webserver."""
    engine = create_engine_for(metastore_settings.metastore)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def token(elsewhere: SessionFactory) -> str:
    return seed_world(elsewhere)


def seed_world(factory: SessionFactory) -> str:
    """Three DAGs with one run each, and an Admin; returns the Admin's API token."""
    with factory.begin() as session:
        for number in range(3):
            session.add(Dag(dag_id=f"d{number}", fileloc=f"/dags/d{number}.py", tags=["t"]))
        session.flush()
        for number in range(3):
            session.add(run(f"d{number}", "r1", "success", T0))
        users.create_user("admin", "admin-password-1", role="Admin", session=session)
        return users.create_api_token("admin", "tests", session=session)[1]


def web_context(app: Flask) -> WebContext:
    context: WebContext = app.extensions[EXTENSION]
    return context


def run(dag_id: str, run_id: str, state: str, when: datetime) -> DagRun:
    return DagRun(
        dag_id=dag_id, run_id=run_id, logical_date=when, run_type="manual", state=state, conf={}
    )


def dags_of(client: FlaskClient, token: str, query: str = "") -> list[dict[str, object]]:
    response = client.get(f"/api/v1/dags{query}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data[:300]
    dags: list[dict[str, object]] = response.json["dags"]  # type: ignore[index]
    return dags


def page(client: FlaskClient, token: str) -> str:
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data[:300]
    return response.get_data(as_text=True)


def change(factory: SessionFactory, statement: object) -> None:
    with factory.begin() as session:
        session.execute(statement)  # type: ignore[call-overload]


def test_the_dag_list_shows_changes_made_elsewhere_at_once(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    client = app.test_client()
    first = dags_of(client, token)
    statements: list[str] = []
    event.listen(
        web_context(app).engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    assert dags_of(client, token) == first and len(web_context(app).dag_list_views) == 1
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "AS coded" in selects[0], "reused: only the stamp was read"
    assert [d["is_paused"] for d in first] == [False, False, False]

    change(elsewhere, update(Dag).where(Dag.dag_id == "d1").values(is_paused=True))
    assert [d["is_paused"] for d in dags_of(client, token)] == [False, True, False]
    # back to the state the cache was first built from (A -> B -> A)
    change(elsewhere, update(Dag).where(Dag.dag_id == "d1").values(is_paused=False))
    assert [d["is_paused"] for d in dags_of(client, token)] == [False, False, False]

    change(elsewhere, update(Dag).where(Dag.dag_id == "d2").values(description=""))
    assert [d["description"] for d in dags_of(client, token)] == [None, None, ""]
    later = T0 + timedelta(days=1)
    change(elsewhere, update(Dag).where(Dag.dag_id == "d0").values(next_dagrun=later))
    assert dags_of(client, token)[0]["next_dagrun"] == "2024-01-02T00:00:00Z"

    with elsewhere.begin() as session:
        session.add(Dag(dag_id="d3", fileloc="/dags/d3.py", tags=["u"]))
    assert [d["dag_id"] for d in dags_of(client, token, "?limit=2&offset=2")] == ["d2", "d3"]
    assert [d["dag_id"] for d in dags_of(client, token, "?tags=u")] == ["d3"]
    change(elsewhere, update(Dag).where(Dag.dag_id == "d3").values(tags=["t"]))
    assert dags_of(client, token, "?tags=u") == []


def test_the_dags_page_shows_run_states_changed_elsewhere_at_once(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    client = app.test_client()
    assert 'title="r1: success"' in page(client, token)
    assert len(web_context(app).dags_page_views) == 1

    change(elsewhere, update(DagRun).where(DagRun.dag_id == "d1").values(state="failed"))
    html = page(client, token)
    assert html.count('title="r1: success"') == 2 and 'title="r1: failed"' in html

    with elsewhere.begin() as session:
        session.add(run("d0", "r2", "running", T0 + timedelta(days=1)))
    assert 'title="r2: running"' in page(client, token)
    change(elsewhere, update(Dag).where(Dag.dag_id == "d2").values(is_paused=True))
    assert re.search(r'data-dag-id="d2">.*?Unpause', page(client, token), re.S)


def instance(dag_id: str, run_id: str, task_id: str, state: str) -> TaskInstance:
    return TaskInstance(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1, state=state)


def test_the_dags_page_counts_the_latest_runs_tasks_as_they_change_elsewhere(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    """Task instances bump no counter: a reused page still counts them per request, by
    the latest runs' primary keys (a new latest run is a new run row, which does count)."""
    with elsewhere.begin() as session:
        session.add_all(instance("d0", "r1", f"t{n}", "success") for n in range(3))
        session.add(instance("d1", "r1", "t0", "running"))
    client = app.test_client()
    html = page(client, token)
    assert 'title="success: 3 tasks in the latest run"' in html
    assert 'title="running: 1 tasks in the latest run"' in html
    assert html.count('<span class="muted">no tasks</span>') == 1, "d2's run has none"

    change(
        elsewhere, update(TaskInstance).where(TaskInstance.task_id == "t2").values(state="failed")
    )
    html = page(client, token)
    assert len(web_context(app).dags_page_views) == 1, "the rows were reused"
    assert 'title="success: 2 tasks in the latest run"' in html
    assert 'title="failed: 1 tasks in the latest run"' in html

    with elsewhere.begin() as session:
        session.add(run("d0", "r2", "running", T0 + timedelta(days=1)))
        session.flush()
        session.add(instance("d0", "r2", "t0", "queued"))
    html = page(client, token)
    assert 'title="queued: 1 tasks in the latest run"' in html
    assert 'title="success: 2 tasks in the latest run"' not in html, "r1 is no longer the latest"


def test_the_dags_page_shows_import_errors_and_dags_changed_elsewhere_at_once(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    client = app.test_client()
    assert "failed to import" not in page(client, token)
    with elsewhere.begin() as session:
        session.add(ImportErrorRow(filename="/dags/bad.py", filename_hash="h", message="boom"))
    assert "1 DAG file failed to import" in page(client, token)
    change(elsewhere, delete(ImportErrorRow))
    assert "failed to import" not in page(client, token)

    with elsewhere.begin() as session:
        session.add(Dag(dag_id="d3", fileloc="/dags/d3.py", tags=["t"]))
    assert 'data-dag-id="d3"' in page(client, token)
    change(elsewhere, update(Dag).where(Dag.dag_id == "d3").values(tags=["T"]))
    assert '<option value="T"' in page(client, token), "a change of case is a change"
    change(elsewhere, update(Dag).where(Dag.dag_id == "d3").values(is_active=False))
    assert 'data-dag-id="d3"' not in page(client, token)


def test_change_counters_count_only_changes_the_dags_page_shows(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    def counted() -> dict[str, int]:
        with elsewhere() as session:
            changes = read_changes(session)
            session.rollback()
        assert changes is not None
        return dict(zip(COUNTED, changes, strict=True))

    before = counted()
    change(elsewhere, update(Dag).values(last_parsed_at=T0, description="unshown"))
    change(elsewhere, update(DagRun).values(last_scheduling_decision=T0, conf={"a": 1}))
    with elsewhere.begin() as session:
        session.add(ImportErrorRow(filename="/dags/x.py", filename_hash="x", message="m"))
    change(elsewhere, update(ImportErrorRow).values(message="other"))
    assert counted() == {**before, "import_error": before["import_error"] + 1}

    change(elsewhere, update(Dag).where(Dag.dag_id == "d0").values(owners="me"))
    change(elsewhere, update(DagRun).where(DagRun.dag_id == "d1").values(state="failed"))
    change(elsewhere, update(DagRun).where(DagRun.dag_id == "d2").values(logical_date=None))
    change(elsewhere, delete(ImportErrorRow))
    after = counted()
    assert after["dag"] == before["dag"] + 1
    assert after["dag_run"] == before["dag_run"] + 2
    assert after["import_error"] == before["import_error"] + 2


def test_without_its_counter_rows_the_dags_page_is_rebuilt_every_time(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    change(elsewhere, text("DELETE FROM change_counter WHERE name = 'dag_run'"))
    client = app.test_client()
    assert 'title="r1: success"' in page(client, token)
    change(elsewhere, update(DagRun).where(DagRun.dag_id == "d1").values(state="failed"))
    assert 'title="r1: failed"' in page(client, token)
    assert len(web_context(app).dags_page_views) == 0, "nothing kept without counters"


def test_reused_rows_carry_each_sessions_own_csrf_token(app: Flask, token: str) -> None:
    pages = []
    for _ in range(2):  # two browsers: two sessions, two tokens
        client = app.test_client()
        html = page(client, token)
        with client.session_transaction() as session:
            own = session["csrf_token"]
        forms = re.findall(r'name="csrf_token" value="([^"]+)"', html)
        assert len(forms) >= 4 and set(forms) == {own}, "every form has this session's token"
        assert '"csrf-token"' not in html
        pages.append(own)
    assert pages[0] != pages[1]


def test_a_stamp_read_alone_equals_the_stamp_of_the_rows(
    app: Flask, token: str, elsewhere: SessionFactory
) -> None:
    statement, stamp_query = list_statements(
        only_active=True, paused=None, pattern=None, paged=True
    )
    params = {"limit": 100, "offset": 0}
    with elsewhere() as session:
        rows = session.execute(statement, params).all()
        assert len(rows) == 3
        assert read_stamp(session, stamp_query, params) == stamp_of_rows(rows, paged=True)
        session.rollback()


def test_a_stamp_cut_short_by_the_database_counts_as_changed(elsewhere: SessionFactory) -> None:
    # what group_concat returns when group_concat_max_len cut it: shorter than its parts
    cut = select(text("'4142,43' AS joined"), text("9 AS length"), text("2 AS count"))
    with elsewhere() as session:
        assert read_stamp(session, cut) is None
        whole = select(text("'4142,43' AS joined"), text("6 AS length"), text("2 AS count"))
        assert read_stamp(session, whole) == ("4142", "43")


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_requests_leave_no_transaction_open(
    settings: Settings, server: str, request: pytest.FixtureRequest
) -> None:
    """The web engine skips the pool's ROLLBACK on check-in: every request must end its
    own transaction, on success and on error alike."""
    on_server = settings.replace("metastore", url=request.getfixturevalue(f"{server}_url"))
    app = create_app(on_server.replace("webserver", secret_key="view-cache-test"))
    migrate(web_context(app).engine)
    engine = create_engine_for(on_server.metastore)
    try:
        elsewhere = make_session_factory(engine)
        key = seed_world(elsewhere)
        client = app.test_client()
        assert len(dags_of(client, key)) == 3
        assert "d1" in page(client, key)
        missing = client.get("/api/v1/dags/nope", headers={"Authorization": f"Bearer {key}"})
        assert missing.status_code == 404
        with elsewhere() as session:
            assert open_transactions(session) == 0
    finally:
        engine.dispose()
        web_context(app).engine.dispose()


def open_transactions(session: Session) -> int:
    """Transactions the server holds open, from any connection but this one's read."""
    if session.get_bind().dialect.name == "postgresql":
        query = (
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
        )
    else:
        query = "SELECT COUNT(*) FROM information_schema.innodb_trx"
    return int(session.scalar(text(query)) or 0)
