"""The DAG page's tabs: grid, graph, code, runs and details, and the grid's JSON.

Every tab works from the metastore and the serialized DAG; none imports DAG files.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, jsonify, render_template, url_for
from sqlalchemy import select

from cluster.metastore.models import Dag, DagCode, DagRun, TaskInstance
from cluster.states import DagRunState
from cluster.web.context import db_session, web_context
from cluster.web.graph import layout_dag, render_svg
from cluster.web.grid import MARKS, Grid, load_grid
from cluster.web.grid_page import build_view
from cluster.web.grid_page import grid_json as build_json
from cluster.web.grid_shape import GridShape, load_shape
from cluster.web.markdown import render_markdown
from cluster.web.pages.lookups import require_dag, serialized_or_none
from cluster.web.pages.requests import Pager, text

bp = Blueprint("dag", __name__)

RUN_STATES = [s.value for s in DagRunState]


def _grid(dag_id: str) -> tuple[Dag, GridShape, Grid]:
    """The DAG's row, its grid rows (parsed once per version: :mod:`cluster.web.grid_shape`)
    and the grid's runs and states."""
    session = db_session()
    row = require_dag(session, dag_id)
    shape = load_shape(session, dag_id, web_context().grid_shapes)
    return row, shape, load_grid(session, dag_id, shape.task_ids)


@bp.get("/dags/<dag_id>")
def grid(dag_id: str) -> str:
    """Runs by tasks, coloured by state; ``grid.js`` keeps it live and opens the panel.

    ``?fragment=table`` answers only the table, which the script swaps in when runs or
    tasks came or went (the cells themselves it updates from ``grid.json``).
    """
    row, shape, data = _grid(dag_id)
    view = build_view(dag_id, shape, data, web_context().clock())
    # the templates read only whether the DAG is serialized and its display name
    serialized = shape if shape.serialized else None
    if text("fragment") == "table":
        return render_template("grid_table.html", dag=row, serialized=serialized, view=view)
    return render_template(
        "dag_grid.html", dag=row, tab="grid", serialized=serialized, view=view, marks=MARKS
    )


@bp.get("/dags/<dag_id>/grid.json")
def grid_json(dag_id: str) -> Response:
    """The grid's data, polled by ``grid.js`` every few seconds while a run is active."""
    _, shape, data = _grid(dag_id)
    return jsonify(build_json(shape, data, web_context().clock()))


@bp.get("/dags/<dag_id>/graph")
def graph(dag_id: str) -> str:
    """The DAG as a layered SVG graph, coloured by the states of one run (``?run_id=``)."""
    session = db_session()
    row = require_dag(session, dag_id)
    dag = serialized_or_none(session, dag_id)
    run_ids = list(
        session.scalars(
            select(DagRun.run_id)
            .where(DagRun.dag_id == dag_id)
            .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
            .limit(50)
        )
    )
    run_id = text("run_id") or (run_ids[0] if run_ids else None)
    states: dict[str, str] = {}
    if run_id is not None:
        states = dict(
            session.execute(
                select(TaskInstance.task_id, TaskInstance.state).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            ).all()
        )

    def link(task_id: str) -> str | None:
        if run_id is None or task_id not in states:
            return None
        return url_for("task_instances.show", dag_id=dag_id, dag_run_id=run_id, task_id=task_id)

    svg = render_svg(layout_dag(dag), states, link) if dag else None
    return render_template(
        "dag_graph.html",
        dag=row,
        tab="graph",
        serialized=dag,
        svg=svg,
        run_ids=run_ids,
        run_id=run_id,
    )


@bp.get("/dags/<dag_id>/code")
def code(dag_id: str) -> str:
    """The source of the DAG's file, as the DAG processor last stored it."""
    session = db_session()
    row = require_dag(session, dag_id)
    # dag_code is keyed by the sha256 of the file's path (cluster.dagfiles.processor)
    stored = session.get(DagCode, hashlib.sha256(row.fileloc.encode()).hexdigest())
    return render_template(
        "dag_code.html",
        dag=row,
        tab="code",
        source=stored.source_code if stored else None,
    )


@bp.get("/dags/<dag_id>/runs")
def runs(dag_id: str) -> str:
    """The DAG's runs, newest first, filtered by state, a page at a time."""
    session = db_session()
    row = require_dag(session, dag_id)
    state = text("state")
    pager = Pager.from_request()
    statement = (
        select(DagRun)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
    )
    if state in RUN_STATES:
        statement = statement.where(DagRun.state == state)
    found = list(session.scalars(statement.offset(pager.offset).limit(pager.fetch)))
    shown, pager = pager.trim(found)
    return render_template(
        "dag_runs.html",
        dag=row,
        tab="runs",
        runs=shown,
        pager=pager,
        state=state,
        states=RUN_STATES,
    )


@bp.get("/dags/<dag_id>/details")
def details(dag_id: str) -> str:
    """Schedule, params, tags, owners, limits and the DAG's documentation."""
    session = db_session()
    row = require_dag(session, dag_id)
    dag = serialized_or_none(session, dag_id)
    return render_template(
        "dag_details.html",
        dag=row,
        tab="details",
        serialized=dag,
        doc=render_markdown(dag.doc_md) if dag else None,
    )
