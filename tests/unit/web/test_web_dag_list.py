"""The DAGs page's building blocks: its last-runs query and its links built once per page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from web_harness import T0, Browser

from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, DagRun
from cluster.web.pages.dag_list import recent_runs
from cluster.web.pages.paths import PathPattern

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
        runs, _ = recent_runs(session, ["a", "b", "idle"], per_dag=3)
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
        runs, _ = recent_runs(session, dag_ids)
    assert [r.run_id for r in runs["dag_249"]] == ["dag_249_run"]
    assert all(len(runs[dag_id]) == 1 for dag_id in dag_ids)


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
    assert 'title="x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;: success"' in html
    assert 'href="/dags/a/runs/x%22%3E%3Cscript%3Ealert(1)%3C/script%3E&amp;"' in html
