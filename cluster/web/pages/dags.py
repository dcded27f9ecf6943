"""The DAGs page (``/``) and the DAG-level actions: pause, trigger, delete.

The list costs a fixed number of queries whatever the number of DAGs: the DAG rows,
the tag names, the last runs of every listed DAG in one windowed query, and the count
of import errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from cluster import actions
from cluster.errors import AlreadyExistsError, ParamValidationError, UsageError
from cluster.metastore.models import Dag, DagRun, ImportErrorRow
from cluster.web.context import db_session, web_context
from cluster.web.pages.lookups import require_dag
from cluster.web.pages.params_form import conf_from_form, fields_for
from cluster.web.pages.requests import back_to, text, web_actor

bp = Blueprint("dags", __name__)

#: dots per DAG on the list
RECENT_RUNS = 10
#: DAGs per page of the list
DAGS_PER_PAGE = 100


@dataclass(frozen=True)
class RecentRun:
    run_id: str
    state: str
    logical_date: datetime | None


@dataclass(frozen=True)
class DagFilter:
    search: str | None
    tag: str | None
    state: str | None  # "active" (unpaused) or "paused"


def list_dags(session: Session, wanted: DagFilter) -> list[Dag]:
    """The active DAGs matching ``wanted``, by id (tags are JSON text: filtered here)."""
    statement = select(Dag).where(Dag.is_active.is_(True)).order_by(Dag.dag_id)
    if wanted.search:
        statement = statement.where(Dag.dag_id.contains(wanted.search, autoescape=True))
    if wanted.state in ("active", "paused"):
        statement = statement.where(Dag.is_paused.is_(wanted.state == "paused"))
    rows = list(session.scalars(statement))
    if wanted.tag:
        rows = [r for r in rows if wanted.tag in (r.tags or [])]
    return rows


def all_tags(session: Session) -> list[str]:
    tags: set[str] = set()
    for value in session.scalars(select(Dag.tags).where(Dag.is_active.is_(True))):
        tags.update(str(t) for t in value or [])
    return sorted(tags)


def recent_runs(
    session: Session, dag_ids: Sequence[str], *, per_dag: int = RECENT_RUNS
) -> dict[str, list[RecentRun]]:
    """The last ``per_dag`` runs of each DAG, oldest first, in one query (a window)."""
    if not dag_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=DagRun.dag_id,
            order_by=(DagRun.logical_date.desc(), DagRun.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.logical_date, rank)
        .where(DagRun.dag_id.in_(list(dag_ids)))
        .subquery()
    )
    statement = (
        select(ranked.c.dag_id, ranked.c.run_id, ranked.c.state, ranked.c.logical_date)
        .where(ranked.c.rank <= per_dag)
        .order_by(ranked.c.dag_id, ranked.c.rank.desc())
    )
    result: dict[str, list[RecentRun]] = {dag_id: [] for dag_id in dag_ids}
    for dag_id, run_id, state, logical_date in session.execute(statement):
        result[dag_id].append(RecentRun(run_id, state, logical_date))
    return result


@bp.get("/")
def index() -> str:
    """Every DAG with its schedule, owner, next run and last runs; search and filters."""
    session = db_session()
    wanted = DagFilter(text("search"), text("tag"), text("state"))
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page = 1
    rows = list_dags(session, wanted)
    shown = rows[(page - 1) * DAGS_PER_PAGE : page * DAGS_PER_PAGE]
    return render_template(
        "dags.html",
        dags=shown,
        total=len(rows),
        page=page,
        has_next=len(rows) > page * DAGS_PER_PAGE,
        wanted=wanted,
        tags=all_tags(session),
        runs=recent_runs(session, [r.dag_id for r in shown]),
        import_errors=session.scalar(select(func.count()).select_from(ImportErrorRow)) or 0,
    )


@bp.post("/dags/<dag_id>/pause")
def pause(dag_id: str) -> BaseResponse:
    """Pause (``paused=true``) or unpause (``paused=false``) a DAG."""
    paused = request.form.get("paused", "true").lower() == "true"
    actions.set_paused(db_session(), dag_id, paused, actor=web_actor())
    flash(f"DAG {dag_id} {'paused' if paused else 'unpaused'}.", "info")
    return redirect(back_to(url_for("dag.grid", dag_id=dag_id)))


@bp.route("/dags/<dag_id>/trigger", methods=["GET", "POST"])
def trigger(dag_id: str) -> BaseResponse | str | tuple[str, int]:
    """The trigger form with the DAG's params; the run is created by :func:`actions.trigger`."""
    session = db_session()
    row = require_dag(session, dag_id)
    dag = actions.load_dag(session, dag_id)
    if request.method == "GET":
        return render_template("trigger.html", dag=row, fields=fields_for(dag.params), error=None)
    try:
        run = actions.trigger(
            session,
            dag_id,
            actor=web_actor(),
            conf=conf_from_form(dag.params, request.form),
            run_id=text("run_id"),
            logical_date=parse_logical_date(text("logical_date")),
            now=web_context().clock(),
        )
    except (ParamValidationError, UsageError, AlreadyExistsError) as exc:
        fields = fields_for(dag.params, request.form)
        return render_template("trigger.html", dag=row, fields=fields, error=str(exc)), 400
    flash(f"Triggered {dag_id}: run {run.run_id} is queued.", "info")
    return redirect(url_for("dag.grid", dag_id=dag_id))


def parse_logical_date(value: str | None) -> datetime | None:
    """A date from the form (``2024-01-01T06:00``, read as UTC, or ISO with an offset).

    :raises UsageError: for text that is not a date.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"logical date {value!r} is not a date like 2024-01-01T06:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@bp.route("/dags/<dag_id>/delete", methods=["GET", "POST"])
def delete(dag_id: str) -> BaseResponse | str:
    """Ask, then delete every record of a DAG (the next parse of its file brings it back)."""
    session = db_session()
    require_dag(session, dag_id)
    if request.method == "GET":
        runs = session.scalar(select(func.count()).where(DagRun.dag_id == dag_id)) or 0
        return render_template(
            "confirm.html",
            title=f"Delete DAG {dag_id}?",
            message=(
                f"This deletes the DAG {dag_id} with its {runs} runs, their task instances, "
                "XComs and history. The DAG file stays: the next parse brings the DAG back."
            ),
            items=[],
            action=url_for("dags.delete", dag_id=dag_id),
            fields={},
            button="Delete DAG",
            danger=True,
            cancel=url_for("dag.grid", dag_id=dag_id),
        )
    count = actions.delete_dag(session, dag_id, actor=web_actor())
    flash(f"Deleted DAG {dag_id} and its {count} runs.", "info")
    return redirect(url_for("dags.index"))
