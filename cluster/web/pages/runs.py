"""One DAG run: its page, and marking, clearing or deleting it after a confirmation.

Each action is a GET that shows what will happen and a POST (CSRF-checked) that does
it through :mod:`cluster.actions`, which writes the audit log.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from cluster import actions
from cluster.errors import UsageError
from cluster.metastore.models import CallbackRequest, TaskInstance
from cluster.states import DagRunState
from cluster.web.context import db_session
from cluster.web.pages.lookups import require_run
from cluster.web.pages.requests import checked, web_actor
from cluster.web.run_rows import instances_html, load_instances

bp = Blueprint("runs", __name__)

_RUN = "/dags/<dag_id>/runs/<dag_run_id>"
MARKABLE = {"success": DagRunState.SUCCESS, "failed": DagRunState.FAILED}


@bp.get(_RUN)
def show(dag_id: str, dag_run_id: str) -> str:
    """The run's dates, conf, every task instance and its DAG-level callbacks (their
    outcome is in the metastore; their output is in callbacks.log on the scheduler)."""
    session = db_session()
    run = require_run(session, dag_id, dag_run_id)
    instances = instances_html(dag_id, dag_run_id, load_instances(session, dag_id, dag_run_id))
    requests = session.scalars(
        select(CallbackRequest)
        .where(CallbackRequest.dag_id == dag_id, CallbackRequest.run_id == dag_run_id)
        .order_by(CallbackRequest.id)
    ).all()
    return render_template("dag_run.html", run=run, instances=instances, callbacks=requests)


@bp.route(_RUN + "/mark", methods=["GET", "POST"])
def mark(dag_id: str, dag_run_id: str) -> BaseResponse | str:
    """Mark the run (and its unfinished task instances) ``?state=success`` or ``failed``."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    name = request.values.get("state", "")
    if name not in MARKABLE:
        raise UsageError("a run can only be marked success or failed")
    here = url_for("runs.show", dag_id=dag_id, dag_run_id=dag_run_id)
    if request.method == "GET":
        unfinished = _unfinished(dag_id, dag_run_id)
        return render_template(
            "confirm.html",
            title=f"Mark run {dag_run_id} {name}?",
            message=f"The run and these unfinished task instances will be marked {name}:"
            if unfinished
            else f"The run will be marked {name}; all its task instances are finished.",
            items=unfinished,
            action=url_for("runs.mark", dag_id=dag_id, dag_run_id=dag_run_id),
            fields={"state": name},
            button=f"Mark {name}",
            danger=name == "failed",
            cancel=here,
        )
    actions.mark_run(session, dag_id, dag_run_id, MARKABLE[name], actor=web_actor())
    flash(f"Run {dag_run_id} marked {name}.", "info")
    return redirect(here)


def _unfinished(dag_id: str, run_id: str) -> list[str]:
    rows = db_session().execute(
        select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
        )
    )
    finished = {"success", "failed", "skipped", "upstream_failed", "removed"}
    return sorted(f"{task_id} ({state})" for task_id, state in rows if state not in finished)


@bp.route(_RUN + "/clear", methods=["GET", "POST"])
def clear(dag_id: str, dag_run_id: str) -> BaseResponse | str:
    """Clear the run's task instances (all, or ``only_failed``) so they run again."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    dag = actions.load_dag(session, dag_id)
    only_failed = checked("only_failed")
    keys = actions.clear(
        session,
        dag_id,
        [dag_run_id],
        set(dag.tasks),
        actor=web_actor(),
        only_failed=only_failed,
        dry_run=request.method == "GET",
    )
    here = url_for("runs.show", dag_id=dag_id, dag_run_id=dag_run_id)
    if request.method == "GET":
        return render_template(
            "confirm.html",
            title=f"Clear run {dag_run_id}?",
            message=f"These {len(keys)} task instances will be cleared and run again:"
            if keys
            else "Nothing to clear.",
            items=sorted(k.task_id for k in keys),
            action=url_for("runs.clear", dag_id=dag_id, dag_run_id=dag_run_id),
            fields={"only_failed": "1"} if only_failed else {},
            options=[("only_failed", "Only failed", only_failed)],
            preview=url_for("runs.clear", dag_id=dag_id, dag_run_id=dag_run_id),
            button="Clear",
            danger=False,
            cancel=here,
        )
    flash(f"Cleared {len(keys)} task instances of run {dag_run_id}.", "info")
    return redirect(here)


@bp.route(_RUN + "/delete", methods=["GET", "POST"])
def delete(dag_id: str, dag_run_id: str) -> BaseResponse | str:
    """Delete the run with its task instances, their history and XComs."""
    session = db_session()
    require_run(session, dag_id, dag_run_id)
    if request.method == "GET":
        return render_template(
            "confirm.html",
            title=f"Delete run {dag_run_id}?",
            message="The run, its task instances, their history and XComs will be deleted.",
            items=[],
            action=url_for("runs.delete", dag_id=dag_id, dag_run_id=dag_run_id),
            fields={},
            button="Delete run",
            danger=True,
            cancel=url_for("runs.show", dag_id=dag_id, dag_run_id=dag_run_id),
        )
    actions.delete_run(session, dag_id, dag_run_id, actor=web_actor())
    flash(f"Deleted run {dag_run_id}.", "info")
    return redirect(url_for("dag.grid", dag_id=dag_id))
