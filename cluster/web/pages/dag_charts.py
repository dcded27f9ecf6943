"""The DAG page's chart tabs: Gantt, task durations, tries, landing times, calendar.

Each tab loads its rows (:mod:`cluster.web.chart_data`), draws them as SVG on the
server (:mod:`cluster.web.charts`) and needs no JavaScript. The permission table
gives every tab the same role as the other DAG tabs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from flask import Blueprint, render_template, request
from markupsafe import Markup
from sqlalchemy import select

from cluster.metastore.models import SerializedDagRow
from cluster.web.chart_data import (
    MAX_RUNS,
    load_across_runs,
    load_attempts,
    load_calendar,
    recent_run_ids,
    years_with_runs,
)
from cluster.web.charts.across_runs import Series, draw_across_runs
from cluster.web.charts.calendar import draw_calendar
from cluster.web.charts.gantt import draw_gantt
from cluster.web.charts.svg import duration_text
from cluster.web.context import db_session, web_context
from cluster.web.graph import task_order
from cluster.web.pages.lookups import require_dag, serialized_or_none
from cluster.web.pages.paths import PathPattern
from cluster.web.pages.requests import text

bp = Blueprint("dag_charts", __name__)

#: runs the across-runs charts show unless ``?runs=`` says otherwise
DEFAULT_RUNS = 25
#: lines an across-runs chart draws unless ``?lines=all``: the tasks with the highest
#: values (a thousand lines read as one blot and cost a second to draw)
MAX_LINES = 40
#: the across-runs tabs: endpoint → (heading, which series, how a value reads)
ACROSS_RUNS: dict[str, tuple[str, str, Callable[[float], str]]] = {
    "duration": ("Task duration", "durations", duration_text),
    "tries": ("Tries", "tries", lambda v: f"{v:g}"),
    "landing": ("Landing times", "landing", duration_text),
}


#: the task order of each (dag_id, fingerprint) seen lately: parsing the serialized form
#: of a 1,000-task DAG costs more than drawing its Gantt chart
_ORDERS: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
_ORDERS_KEPT = 64


def _order(dag_id: str) -> list[str]:
    """The DAG's tasks in the grid's order, parsed once per version of the DAG."""
    session = db_session()
    fingerprint = session.scalar(
        select(SerializedDagRow.fingerprint).where(SerializedDagRow.dag_id == dag_id)
    )
    if fingerprint is None:
        return []
    key = (dag_id, fingerprint)
    if key not in _ORDERS:
        dag = serialized_or_none(session, dag_id)
        _ORDERS[key] = task_order(dag) if dag else []
        while len(_ORDERS) > _ORDERS_KEPT:
            _ORDERS.popitem(last=False)
    return _ORDERS[key]


@bp.get("/dags/<dag_id>/gantt")
def gantt(dag_id: str) -> str:
    """Each try's queued and running spans in one run (``?run_id=``, default the newest)."""
    session = db_session()
    row = require_dag(session, dag_id)
    run_ids = recent_run_ids(session, dag_id)
    run_id = text("run_id") or (run_ids[0] if run_ids else None)
    svg = None
    if run_id is not None:
        task_page = PathPattern("task_instances.show", "task_id", dag_id=dag_id, dag_run_id=run_id)

        def link(task_id: str, map_index: int) -> str:
            page = task_page(task_id)
            return page if map_index < 0 else f"{page}?map_index={map_index}"

        attempts = load_attempts(session, dag_id, run_id)
        now = web_context().clock()
        svg = Markup(draw_gantt(attempts, order=_order(dag_id), now=now, link=link))
    return render_template(
        "dag_chart.html",
        dag=row,
        heading="Gantt",
        svg=svg,
        run_ids=run_ids,
        run_id=run_id,
        empty="This DAG has no runs yet.",
    )


def _runs_wanted() -> int:
    try:
        return max(1, min(int(request.args.get("runs", DEFAULT_RUNS)), MAX_RUNS))
    except ValueError:
        return DEFAULT_RUNS


def _across_runs(dag_id: str, tab: str) -> str:
    session = db_session()
    row = require_dag(session, dag_id)
    heading, field, value_text = ACROSS_RUNS[tab]
    count = _runs_wanted()
    data = load_across_runs(session, dag_id, count, _order(dag_id))
    series: list[Series] = getattr(data, field)
    total = len(series)
    if request.args.get("lines") != "all" and total > MAX_LINES:
        top = sorted(series, key=lambda s: max((v for v in s.values if v is not None), default=0))
        kept = {s.name for s in top[-MAX_LINES:]}
        series = [s for s in series if s.name in kept]
    svg = draw_across_runs(data.runs, series, kind=tab, label=heading, value_text=value_text)
    return render_template(
        "dag_chart.html",
        dag=row,
        heading=heading,
        svg=Markup(svg),
        runs=count,
        run_choices=(10, 25, 50, 100, 365),
        lines=(len(series), total),
        empty="This DAG has no runs yet.",
    )


@bp.get("/dags/<dag_id>/duration")
def duration(dag_id: str) -> str:
    """How long each task ran in each of the last runs (``?runs=``, default 25)."""
    return _across_runs(dag_id, "duration")


@bp.get("/dags/<dag_id>/tries")
def tries(dag_id: str) -> str:
    """How many tries each task took in each of the last runs."""
    return _across_runs(dag_id, "tries")


@bp.get("/dags/<dag_id>/landing")
def landing(dag_id: str) -> str:
    """How long after its data interval ended each task finished, per run."""
    return _across_runs(dag_id, "landing")


@bp.get("/dags/<dag_id>/calendar")
def calendar(dag_id: str) -> str:
    """A year of days coloured by their runs' states (``?year=``, default the latest run's)."""
    session = db_session()
    row = require_dag(session, dag_id)
    span = years_with_runs(session, dag_id)
    default = span[1] if span else web_context().clock().year
    try:
        year = int(request.args.get("year", default))
    except ValueError:
        year = default
    year = max(1, min(year, 9998))
    svg = draw_calendar(year, load_calendar(session, dag_id, year))
    return render_template(
        "dag_chart.html",
        dag=row,
        heading=f"Calendar {year}",
        svg=Markup(svg),
        year=year,
        years=span,
    )
