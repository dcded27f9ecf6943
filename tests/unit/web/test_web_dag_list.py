"""The DAGs page's building blocks: its last-runs query and its links built once per page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import delete, event, update
from web_harness import T0, Browser, context_of

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun
from cluster.web.pages.paths import PathPattern
from cluster.web.pages.recent_runs import read_cutoffs, recent_runs

ODD_VALUES = [
    "plain_id",
    "scheduled__2024-01-01T00:00:00+00:00",
    "with space/and slash",
    "percent%25 and ? and # and &amp;",
    "ünïcödé ✓",
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_path_patterns_build_the_same_paths_as_url_for(app: Flask, value: str) -> None:
    with app.test_request_context("/"):
        run_page = PathPattern("runs.show", "dag_id", "dag_run_id")
        assert run_page(value, value) == url_for("runs.show", dag_id=value, dag_run_id=value)
        assert run_page("etl", value) == url_for("runs.show", dag_id="etl", dag_run_id=value)
        grid = PathPattern("dag.grid", "dag_id")
        assert grid(value) == url_for("dag.grid", dag_id=value)


def test_path_patterns_keep_the_application_root(app: Flask) -> None:
    with app.test_request_context("/", base_url="http://example.test/tradewind"):
        path = PathPattern("dag.grid", "dag_id")("a b")
        assert path == url_for("dag.grid", dag_id="a b") and path.startswith("/tradewind/dags/")


def test_path_patterns_refuse_arguments_quoted_otherwise(app: Flask) -> None:
    with app.test_request_context("/"):
        with pytest.raises(ValueError, match="import_error_id"):
            PathPattern("browse.import_errors", "import_error_id")  # a query argument
        with pytest.raises(ValueError, match=r"api\.get_import_error"):
            PathPattern("api.get_import_error", "import_error_id")  # an int converter
        with pytest.raises(TypeError):
            PathPattern("dag.grid", "dag_id")()


def test_recent_runs_are_the_last_by_logical_date_oldest_first(factory: SessionFactory) -> None:
    with factory.begin() as session:
        for dag_id in ("a", "b", "idle"):
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py"))
        # created out of date order: a backfill adds old dates late
        for n in (5, 1, 4, 2, 3):
            session.add(_run("a", f"a{n}", n))
        session.add(_run("b", "b_no_date", None))
        session.add(_run("b", "b1", 1))
    with factory() as session:
        runs = recent_runs(session, ["a", "b", "idle"], per_dag=3).runs
    assert [r.run_id for r in runs["a"]] == ["a3", "a4", "a5"]
    assert [r.run_id for r in runs["b"]] == ["b_no_date", "b1"], "no date sorts as oldest"
    assert runs["b"][1].state == "success"
    assert runs["idle"] == []


def test_recent_runs_of_more_dags_than_one_query_takes(factory: SessionFactory) -> None:
    dag_ids = [f"dag_{n:03d}" for n in range(250)]
    with factory.begin() as session:
        for dag_id in dag_ids:
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py"))
            session.add(_run(dag_id, f"{dag_id}_run", 1))
    with factory() as session:
        runs = recent_runs(session, dag_ids).runs
    assert [r.run_id for r in runs["dag_249"]] == ["dag_249_run"]
    assert all(len(runs[dag_id]) == 1 for dag_id in dag_ids)


def test_recent_runs_read_each_dag_from_its_cutoff_on(factory: SessionFactory) -> None:
    with factory.begin() as session:
        for dag_id in ("busy", "new", "undated"):
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py"))
        for n in range(1, 9):
            session.add(_run("busy", f"busy{n}", n))
        session.add(_run("new", "new1", 1))
        for n in range(3):
            session.add(_run("undated", f"undated{n}", None))
    with factory() as session:
        recent = recent_runs(session, ["busy", "new", "undated", "no_row"], per_dag=3)
        cutoffs = read_cutoffs(session, ["busy", "new"], 3)
    assert cutoffs == (T0 + timedelta(days=6), None), "the 3rd newest date; none with 1 run"
    assert recent.window.cutoffs[2:] == (None, None), "no date, no dag row: read whole"
    assert [r.run_id for r in recent.runs["busy"]] == ["busy6", "busy7", "busy8"]
    assert [r.run_id for r in recent.runs["undated"]] == ["undated0", "undated1", "undated2"]
    assert recent.runs["no_row"] == []


def test_runs_tied_at_the_cutoff_are_ranked_by_id(factory: SessionFactory) -> None:
    with factory.begin() as session:
        session.add(Dag(dag_id="a", fileloc="/dags/a.py"))
        for run_id, day in (("old", 1), ("tie1", 2), ("tie2", 2), ("tie3", 2), ("new", 3)):
            session.add(_run("a", run_id, day))
            session.flush()  # ids in this order
    with factory() as session:
        recent = recent_runs(session, ["a"], per_dag=3)
    assert [r.run_id for r in recent.runs["a"]] == ["tie2", "tie3", "new"]


@pytest.mark.parametrize("how", ["new run", "state", "deleted", "backfill", "other dag"])
def test_a_reused_dags_page_shows_every_run_change_at_the_next_request(
    app: Flask, client: FlaskClient, tokens: dict[str, str], factory: SessionFactory, how: str
) -> None:
    with factory.begin() as session:
        for dag_id in ("a", "b"):
            session.add(Dag(dag_id=dag_id, fileloc=f"/dags/{dag_id}.py"))
            for n in range(1, 31):  # more than the 25 a row shows
                session.add(_run(dag_id, f"{dag_id}{n:02d}", n))
    viewer = Browser(client, tokens["Viewer"])
    viewer.page("/")
    before = viewer.page("/")  # from the cache
    assert len(context_of(app).dags_page_views) == 1
    with factory.begin() as session:
        if how == "new run":
            session.add(_run("a", "a31", 31))
        elif how == "state":
            session.execute(update(DagRun).where(DagRun.run_id == "a24").values(state="failed"))
        elif how == "deleted":
            session.execute(delete(DagRun).where(DagRun.run_id == "a29"))
        elif how == "backfill":  # older than every shown run: the dots stay as they are
            session.add(_run("a", "a00", 0))
        else:
            session.execute(update(DagRun).where(DagRun.dag_id == "b").values(state="failed"))
    after = viewer.page("/")
    with factory() as session:
        fresh = {d: recent_runs(session, [d]).runs[d] for d in ("a", "b")}
    for dag_id, runs in fresh.items():
        shown = re.findall(r"<title>([^<:]+): ", dots_of(after, dag_id))
        assert shown == [r.run_id for r in runs]
    assert ("<title>a31: success, not finished</title>" in after) == (how == "new run")
    assert (after != before) == (how != "backfill")


def dots_of(html: str, dag_id: str) -> str:
    """The sparkline of ``dag_id``'s row on the DAGs page (a bar titled by each run)."""
    row = re.search(rf'<tr data-dag-id="{dag_id}">(.*?)</tr>', html, re.S)
    assert row is not None, f"no row for {dag_id}"
    line = re.search(r'<svg [^>]*class="chart sparkline".*?</svg>', row.group(1), re.S)
    assert line is not None, f"no sparkline for {dag_id}"
    return line.group(0)


def test_a_range_left_short_is_read_whole(factory: SessionFactory) -> None:
    """A run deleted after the cutoffs were read (READ COMMITTED) never shows a DAG short."""
    with factory.begin() as session:
        session.add(Dag(dag_id="a", fileloc="/dags/a.py"))
        for n in range(1, 6):
            session.add(_run("a", f"a{n}", n))
    with factory() as session:
        connection = session.connection()

        statements: list[object] = []

        def delete_after_cutoffs(*_: object) -> None:
            statements.append(_)
            if len(statements) == 1:  # the cutoffs were read; the ranges are next
                connection.execute(delete(DagRun).where(DagRun.run_id == "a4"))

        event.listen(connection, "after_execute", delete_after_cutoffs)
        recent = recent_runs(session, ["a"], per_dag=3)
        session.rollback()
    assert [r.run_id for r in recent.runs["a"]] == ["a2", "a3", "a5"]
    assert recent.window.cutoffs == (None,)


def _run(dag_id: str, run_id: str, day: int | None) -> DagRun:
    return DagRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=None if day is None else T0 + timedelta(days=day),
        run_type="manual",
        state="success",
    )


def test_run_dots_escape_what_they_show(
    client: FlaskClient, tokens: dict[str, str], factory: SessionFactory
) -> None:
    with factory.begin() as session:
        session.add(Dag(dag_id="a", fileloc="/dags/a.py"))
        session.add(_run("a", 'x"><script>alert(1)</script>&', 1))
    html = Browser(client, tokens["Viewer"]).page("/")
    assert "<script>alert" not in html
    assert (
        "<title>x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;: success, not finished"
        in html
    )
    assert 'href="/dags/a/runs/x%22%3E%3Cscript%3Ealert(1)%3C/script%3E&amp;"' in html
