"""One task instance: its tries, rendered fields, XComs and logs; clearing and marking it.

The log of the chosen try is read by :func:`cluster.web.logs.fetch_log`; while the try
runs, ``log.js`` asks ``log.json`` for what was written after the last byte it has.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from cluster import actions
from cluster.errors import UsageError
from cluster.metastore.models import TaskInstance, XCom
from cluster.states import TaskState
from cluster.web.context import db_session, web_context
from cluster.web.grid_shape import load_shape
from cluster.web.logs import LogChunk, fetch_log
from cluster.web.pages.lookups import require_task_instance
from cluster.web.pages.requests import checked, web_actor
from cluster.web.tries import Try, find_try, is_live, list_tries, try_ref

bp = Blueprint("task_instances", __name__)

_TASK = "/dags/<dag_id>/runs/<dag_run_id>/tasks/<task_id>"
MARKABLE = {"success": TaskState.SUCCESS, "failed": TaskState.FAILED}
#: longest XCom value shown on the page
XCOM_PREVIEW = 4000
#: mapped instances the grid's panel lists (the task page lists them all)
PANEL_INSTANCES = 100


def _from_panel() -> bool:
    """Whether the grid's panel sent the action: it wants JSON, not a page and a flash."""
    return request.values.get("via") == "panel"


def _map_index() -> int:
    try:
        return int(request.args.get("map_index", "-1"))
    except ValueError:
        raise UsageError("map_index must be a whole number") from None


def _chosen_try(tries: list[Try]) -> Try | None:
    wanted = request.args.get("try_number")
    chosen = find_try(tries, int(wanted)) if wanted is not None and wanted.isdigit() else None
    return chosen or find_try(tries, None)


def _log(row: TaskInstance, attempt: Try, offset: int = 0) -> LogChunk:
    return fetch_log(web_context().settings, try_ref(row, attempt), offset=offset)


def _mapped_instances(
    session: Session, dag_id: str, dag_run_id: str, task_id: str, limit: int | None = None
) -> list[TaskInstance]:
    return list(
        session.scalars(
            select(TaskInstance)
            .where(*_mapped_of(dag_id, dag_run_id, task_id))
            .order_by(TaskInstance.map_index)
            .limit(limit)
        )
    )


def _mapped_of(dag_id: str, dag_run_id: str, task_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        TaskInstance.dag_id == dag_id,
        TaskInstance.run_id == dag_run_id,
        TaskInstance.task_id == task_id,
        TaskInstance.map_index >= 0,
    )


def _mapped_counts(
    session: Session, dag_id: str, dag_run_id: str, task_id: str
) -> list[tuple[str, int]]:
    """``[(state, instances)]`` of a mapped task, by state; empty when it is not mapped."""
    rows = session.execute(
        select(TaskInstance.state, func.count())
        .where(*_mapped_of(dag_id, dag_run_id, task_id))
        .group_by(TaskInstance.state)
    ).all()
    return sorted((state, count) for state, count in rows)


@bp.get(_TASK)
def show(dag_id: str, dag_run_id: str, task_id: str) -> str:
    """Tries, rendered template fields, XComs and the chosen try's log; for a mapped task
    without ``map_index``, the list of its instances with their rendered names."""
    session = db_session()
    if "map_index" not in request.args:
        instances = _mapped_instances(session, dag_id, dag_run_id, task_id)
        if instances:
            return render_template(
                "mapped_instances.html",
                dag_id=dag_id,
                run_id=dag_run_id,
                task_id=task_id,
                instances=instances,
                display_name=_display_name(session, dag_id, task_id),
            )
    row = require_task_instance(session, dag_id, dag_run_id, task_id, _map_index())
    return render_template("task_instance.html", **_instance_context(session, row))


@bp.get(_TASK + "/panel")
def panel(dag_id: str, dag_run_id: str, task_id: str) -> str:
    """The grid's side panel: what the task instance page shows, as a fragment of HTML
    the grid inserts beside itself (a mapped task without ``map_index``: its instances,
    the first :data:`PANEL_INSTANCES` of them)."""
    session = db_session()
    if "map_index" not in request.args:
        counts = _mapped_counts(session, dag_id, dag_run_id, task_id)
        if counts:
            return render_template(
                "grid_panel_mapped.html",
                dag_id=dag_id,
                run_id=dag_run_id,
                task_id=task_id,
                instances=_mapped_instances(
                    session, dag_id, dag_run_id, task_id, limit=PANEL_INSTANCES
                ),
                total=sum(n for _, n in counts),
                counts=counts,
                display_name=_display_name(session, dag_id, task_id),
            )
    row = require_task_instance(session, dag_id, dag_run_id, task_id, _map_index())
    return render_template("grid_panel.html", **_instance_context(session, row))


def _instance_context(session: Session, row: TaskInstance) -> dict[str, object]:
    """What the task instance page and the grid's panel show of ``row``."""
    tries = list_tries(session, row)
    attempt = _chosen_try(tries)
    xcoms = session.scalars(
        select(XCom)
        .where(
            XCom.dag_id == row.dag_id,
            XCom.run_id == row.run_id,
            XCom.task_id == row.task_id,
            XCom.map_index == row.map_index,
        )
        .order_by(XCom.key)
    ).all()
    return {
        "ti": row,
        "tries": tries,
        "attempt": attempt,
        "log": _log(row, attempt) if attempt else None,
        "live": attempt is not None and is_live(row, attempt),
        "rendered": row.rendered_fields if isinstance(row.rendered_fields, dict) else {},
        "xcoms": xcoms,
        "xcom_preview": XCOM_PREVIEW,
        "display_name": _display_name(session, row.dag_id, row.task_id),
        "triggered": _triggered_run(row, xcoms),
    }


def _triggered_run(row: TaskInstance, xcoms: Sequence[XCom]) -> tuple[str, str] | None:
    """The run a TriggerDagRunOperator try triggered: ``(dag_id, run_id)``, for a link."""
    rendered = row.rendered_fields if isinstance(row.rendered_fields, dict) else {}
    dag_id = rendered.get("trigger_dag_id")
    value = next((x.value for x in xcoms if x.key == "trigger_run_id"), None)
    if not isinstance(dag_id, str) or value is None:
        return None
    try:
        run_id = json.loads(value)
    except ValueError:
        return None
    return (dag_id, run_id) if isinstance(run_id, str) else None


def _display_name(session: Session, dag_id: str, task_id: str) -> str:
    """The task's display name, from the DAG's grid shape: parsing the serialized form of
    a 10,000-task DAG for it cost 0.2-0.3 s of CPU per panel opened from the grid."""
    return load_shape(session, dag_id, web_context().grid_shapes).task_display_name(task_id)


@bp.get(_TASK + "/log.json")
def log_json(dag_id: str, dag_run_id: str, task_id: str) -> Response:
    """The chosen try's log from byte ``offset`` on, and whether it is still being written."""
    row = require_task_instance(db_session(), dag_id, dag_run_id, task_id, _map_index())
    attempt = _chosen_try(list_tries(db_session(), row))
    if attempt is None:
        raise UsageError(f"task instance '{task_id}' has not started a try yet")
    try:
        offset = max(int(request.args.get("offset", "0")), 0)
    except ValueError:
        raise UsageError("offset must be a whole number of bytes") from None
    chunk = _log(row, attempt, offset)
    return jsonify(
        {
            "try_number": attempt.try_number,
            "offset": chunk.offset,
            "next_offset": chunk.next_offset,
            "text": chunk.text,
            "source": chunk.source,
            "message": chunk.message,
            "host": chunk.host,
            "live": is_live(row, attempt),
        }
    )


@bp.route(_TASK + "/clear", methods=["GET", "POST"])
def clear(dag_id: str, dag_run_id: str, task_id: str) -> BaseResponse | str:
    """Clear this task instance, and its ``upstream`` / ``downstream`` ones if ticked."""
    session = db_session()
    require_task_instance(session, dag_id, dag_run_id, task_id)
    dag = actions.load_dag(session, dag_id)
    names = ("upstream", "downstream", "only_failed", "recursive")
    options = {name: checked(name) for name in names}
    task_ids = actions.select_task_ids(
        dag, task_ids=[task_id], upstream=options["upstream"], downstream=options["downstream"]
    )
    keys = actions.clear(
        session,
        dag_id,
        [dag_run_id],
        task_ids,
        actor=web_actor(),
        only_failed=options["only_failed"],
        dry_run=request.method == "GET",
        recursive=options["recursive"],
    )
    items = sorted(k.task_id if k.dag_id == dag_id else f"{k.dag_id}.{k.task_id}" for k in keys)
    if _from_panel():
        return jsonify({"dry_run": request.method == "GET", "task_instances": items})
    here = url_for("task_instances.show", dag_id=dag_id, dag_run_id=dag_run_id, task_id=task_id)
    if request.method == "POST":
        flash(f"Cleared {len(keys)} task instances.", "info")
        return redirect(here)
    action = url_for("task_instances.clear", dag_id=dag_id, dag_run_id=dag_run_id, task_id=task_id)
    return render_template(
        "confirm.html",
        title=f"Clear {task_id} in run {dag_run_id}?",
        message=f"These {len(keys)} task instances will be cleared and run again:"
        if keys
        else "Nothing to clear with these options.",
        items=items,
        action=action,
        fields={name: "1" for name, on in options.items() if on},
        options=[
            ("upstream", "Upstream", options["upstream"]),
            ("downstream", "Downstream", options["downstream"]),
            ("only_failed", "Only failed", options["only_failed"]),
            ("recursive", "Recursive (ExternalTaskMarker)", options["recursive"]),
        ],
        preview=action,
        button="Clear",
        danger=False,
        cancel=here,
    )


@bp.route(_TASK + "/mark", methods=["GET", "POST"])
def mark(dag_id: str, dag_run_id: str, task_id: str) -> BaseResponse | str:
    """Mark this task instance ``?state=success`` or ``failed`` (a running try is stopped);
    failed instances downstream are cleared so the run resumes, as Airflow's marking."""
    session = db_session()
    row = require_task_instance(session, dag_id, dag_run_id, task_id)
    name = request.values.get("state", "")
    if name not in MARKABLE:
        raise UsageError("a task instance can only be marked success or failed here")
    here = url_for("task_instances.show", dag_id=dag_id, dag_run_id=dag_run_id, task_id=task_id)
    if request.method == "GET":
        return render_template(
            "confirm.html",
            title=f"Mark {task_id} {name}?",
            message=f"{task_id} in run {dag_run_id} is {row.state}; it will be marked {name}, "
            "and failed instances downstream cleared so the run resumes.",
            items=[],
            action=url_for(
                "task_instances.mark", dag_id=dag_id, dag_run_id=dag_run_id, task_id=task_id
            ),
            fields={"state": name},
            button=f"Mark {name}",
            danger=name == "failed",
            cancel=here,
        )
    actions.set_task_instances_state(
        session,
        actions.load_dag(session, dag_id),
        [dag_run_id],
        {task_id},
        MARKABLE[name],
        origin=task_id,
        actor=web_actor(),
        now=web_context().clock(),
    )
    if _from_panel():
        return jsonify({"marked": name})
    flash(f"{task_id} marked {name}.", "info")
    return redirect(here)
