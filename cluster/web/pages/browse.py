"""Browse pages across DAGs: runs, task instances, SLA misses, the audit log and import errors.

Lists page with ``LIMIT n + 1`` rather than ``COUNT(*)``, and the task-instance list
filters on ``state`` first, the leading column of the ``(state, …)`` indexes, so a
page costs the same with a million finished task instances in the table.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from cluster.metastore import audit
from cluster.metastore.datasets import list_datasets, read_events
from cluster.metastore.models import DagRun, ImportErrorRow, TaskInstance
from cluster.metastore.slas import list_misses
from cluster.states import DagRunState, TaskState
from cluster.web.context import db_session
from cluster.web.pages.requests import Pager, text

bp = Blueprint("browse", __name__)

RUN_STATES = [s.value for s in DagRunState]
TASK_STATES = [s.value for s in TaskState]
AUDIT_PAGE = 100


@bp.get("/dagruns")
def runs() -> str:
    """Every DAG's runs, newest first; filter by DAG and state."""
    dag_id, state = text("dag_id"), text("state")
    pager = Pager.from_request()
    statement = select(DagRun).order_by(DagRun.id.desc())
    if dag_id:
        statement = statement.where(DagRun.dag_id == dag_id)
    if state in RUN_STATES:
        statement = statement.where(DagRun.state == state)
    found = list(db_session().scalars(statement.offset(pager.offset).limit(pager.fetch)))
    shown, pager = pager.trim(found)
    return render_template(
        "browse_runs.html", runs=shown, pager=pager, dag_id=dag_id, state=state, states=RUN_STATES
    )


@bp.get("/taskinstances")
def task_instances() -> str:
    """Task instances filtered by state and DAG.

    With a state, rows come in ``(state, queued_at)`` index order; with a DAG only, in
    primary-key order read backwards (newest run ids first): both avoid sorting the table.
    """
    dag_id, state = text("dag_id"), text("state")
    pager = Pager.from_request()
    statement = select(TaskInstance)
    if state in TASK_STATES:
        statement = statement.where(TaskInstance.state == state).order_by(
            TaskInstance.queued_at.desc()
        )
    else:
        statement = statement.order_by(
            TaskInstance.dag_id.desc(),
            TaskInstance.run_id.desc(),
            TaskInstance.task_id.desc(),
            TaskInstance.map_index.desc(),
        )
    if dag_id:
        statement = statement.where(TaskInstance.dag_id == dag_id)
    found = list(db_session().scalars(statement.offset(pager.offset).limit(pager.fetch)))
    shown, pager = pager.trim(found)
    return render_template(
        "browse_task_instances.html",
        instances=shown,
        pager=pager,
        dag_id=dag_id,
        state=state,
        states=TASK_STATES,
    )


@bp.get("/slamisses")
def sla_misses() -> str:
    """Tasks that missed their SLA, newest logical date first (Airflow's Browse > SLA Misses)."""
    dag_id = text("dag_id")
    pager = Pager.from_request()
    found, _ = list_misses(db_session(), dag_id=dag_id, limit=pager.fetch, offset=pager.offset)
    shown, pager = pager.trim(found)
    return render_template("sla_misses.html", misses=shown, pager=pager, dag_id=dag_id)


@bp.get("/auditlog")
def audit_log() -> str:
    """Who triggered, paused, cleared, marked or deleted what; newest first (Op and Admin)."""
    before = request.args.get("before_id", "")
    events = audit.list_events(
        session=db_session(),
        limit=AUDIT_PAGE,
        dag_id=text("dag_id"),
        event=text("event"),
        before_id=int(before) if before.isdigit() else None,
    )
    older = events[-1].id if len(events) == AUDIT_PAGE else None
    return render_template(
        "audit_log.html", events=events, older=older, dag_id=text("dag_id"), event=text("event")
    )


@bp.get("/importerrors")
def import_errors() -> str:
    """DAG files that failed to import, with their stack traces."""
    rows = db_session().scalars(select(ImportErrorRow).order_by(ImportErrorRow.filename)).all()
    return render_template("import_errors.html", errors=rows)


#: how many of the latest dataset events the datasets page shows
RECENT_EVENTS = 50


@bp.get("/datasets")
def datasets() -> str:
    """Every dataset between its producing tasks and its consuming DAGs, and recent events."""
    session = db_session()
    return render_template(
        "datasets.html",
        datasets=list_datasets(session),
        events=read_events(session, limit=RECENT_EVENTS, newest_first=True),
    )
