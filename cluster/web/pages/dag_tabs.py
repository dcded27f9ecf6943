"""The DAG page's tabs: grid, graph, code, runs and details, and the grid's JSON.

Every tab works from the metastore and the serialized DAG; none imports DAG files.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, jsonify, render_template, url_for
from sqlalchemy import select

from cluster.metastore.models import DagCode, DagRun, TaskInstance
from cluster.states import DagRunState
from cluster.web.context import db_session
from cluster.web.graph import layout_dag, render_svg, task_order
from cluster.web.grid import Grid, load_grid
from cluster.web.markdown import render_markdown
from cluster.web.pages.lookups import require_dag, serialized_or_none
from cluster.web.pages.requests import Pager, text

bp = Blueprint("dag", __name__)

RUN_STATES = [s.value for s in DagRunState]


def _grid(dag_id: str) -> Grid:
    session = db_session()
    require_dag(session, dag_id)
    dag = serialized_or_none(session, dag_id)
    return load_grid(session, dag_id, task_order(dag) if dag else [])


@bp.get("/dags/<dag_id>")
def grid(dag_id: str) -> str:
    """Runs by tasks, coloured by state; a script refreshes it while a run is active."""
    session = db_session()
    row = require_dag(session, dag_id)
    return render_template(
        "dag_grid.html",
        dag=row,
        tab="grid",
        serialized=serialized_or_none(session, dag_id),
        grid=_grid(dag_id),
    )


@bp.get("/dags/<dag_id>/grid.json")
def grid_json(dag_id: str) -> Response:
    """The grid's data, polled by ``grid.js`` every few seconds while a run is active."""
    return jsonify(_grid(dag_id).to_json())


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
