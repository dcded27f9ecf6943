"""The DAGs page (``/``) and the DAG-level actions: pause, trigger, delete.

The list costs a fixed number of queries whatever the number of DAGs
(:mod:`cluster.web.pages.dag_list`), and its links are built once per page with
:class:`cluster.web.pages.paths.PathPattern` and filled per row: the page has some
1,400 of them, and one ``url_for`` each cost half of its rendering time. The rendered
rows are kept per filter, page and role (:mod:`cluster.web.view_cache`) and reused
while the metastore's change counters (:mod:`cluster.metastore.change_counters`,
bumped by triggers whenever a shown column of ``dag``, ``dag_run`` or ``import_error``
changes) read as when they were built: one read of three tiny rows instead of
re-reading the codes of a thousand runs, which cost MariaDB as much as the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from cluster import actions
from cluster.errors import AlreadyExistsError, ParamValidationError, UsageError
from cluster.metastore.change_counters import COUNTED, Changes, read_changes
from cluster.metastore.datasets import readiness_of
from cluster.metastore.models import DagRun, ImportErrorRow
from cluster.web.context import db_session, require_user, web_context
from cluster.web.csrf import csrf_token
from cluster.web.pages.dag_health import (
    fill_task_slots,
    run_counts_html,
    sparkline_html,
    tasks_slot,
)
from cluster.web.pages.dag_list import SORTS, DagFilter, DagSummary, list_dags
from cluster.web.pages.lookups import require_dag
from cluster.web.pages.params_form import conf_from_form, fields_for
from cluster.web.pages.paths import PathPattern
from cluster.web.pages.recent_runs import RecentRun, recent_runs
from cluster.web.pages.requests import back_to, text, web_actor
from cluster.web.permissions import allows
from cluster.web.stamps import Stamp

bp = Blueprint("dags", __name__)

#: DAGs per page of the list
DAGS_PER_PAGE = 100
#: the schedule summaries of data-aware DAGs (see cluster.sdk.timetable_datasets)
DATASET_SUMMARIES = ("Dataset", "Unresolved DatasetAlias")
#: where the session's CSRF token goes in a cached table: raw markup that no escaped
#: value can contain (escaping turns ``<`` and ``"`` into entities)
FORM_TOKEN_SLOT = '<"csrf-token">'


_HTML_SPECIAL = re.compile(r"[&<>\"']")


@dataclass(frozen=True, slots=True)
class DagEntry:
    """One row of the list, with its links and run summaries already built."""

    dag: DagSummary
    url: str
    pause_url: str
    trigger_url: str
    #: the recent runs counted by state, as HTML
    run_counts: Markup
    #: the recent runs' durations, oldest first, as an SVG linking to the DAG's runs
    sparkline: Markup
    #: the newest run and its page, if the DAG has run
    last_run: RecentRun | None = None
    last_run_url: str | None = None


def entries(dags: Sequence[DagSummary], runs: dict[str, list[RecentRun]]) -> list[DagEntry]:
    """The rows of the list: each DAG with its links, run counts and sparkline."""
    grid = PathPattern("dag.grid", "dag_id")
    pause = PathPattern("dags.pause", "dag_id")
    trigger = PathPattern("dags.trigger", "dag_id")
    run_page = PathPattern("runs.show", "dag_id", "dag_run_id")
    runs_tab = PathPattern("dag.runs", "dag_id")
    rows = []
    for dag in dags:
        recent = runs[dag.dag_id]
        last = recent[-1] if recent else None
        rows.append(
            DagEntry(
                dag=dag,
                url=grid(dag.dag_id),
                pause_url=pause(dag.dag_id),
                trigger_url=trigger(dag.dag_id),
                run_counts=Markup(run_counts_html(recent)),
                sparkline=Markup(sparkline_html(recent, runs_tab(dag.dag_id))),
                last_run=last,
                last_run_url=run_page(dag.dag_id, last.run_id) if last else None,
            )
        )
    return rows


def html(text: str) -> str:
    """``text`` escaped for HTML (as Jinja's autoescape does), quickly when it need not be."""
    return str(escape(text)) if _HTML_SPECIAL.search(text) else text


@dataclass(frozen=True, slots=True)
class DagsTable:
    """The list part of the DAGs page, reusable while the change counters are unchanged.

    ``rows`` holds :data:`FORM_TOKEN_SLOT` where each form's CSRF token goes: the token
    is the session's, the rows are everyone's.
    """

    total: int
    has_next: bool
    tags: list[str]
    rows: str
    #: how many DAG files failed to import (the page's banner)
    import_errors: int
    #: ``(dag_id, schedule summary)`` of the data-aware DAGs shown: their schedule cell
    #: is a slot filled per request, since dataset queues change no change counter
    consumers: tuple[tuple[str, str], ...] = ()
    #: ``(dag_id, dag_run.id)`` of each shown DAG's latest run: their task counts are a
    #: slot filled per request, since task instances change no change counter
    latest: tuple[tuple[str, int], ...] = ()


@bp.get("/")
def index() -> str:
    """Every DAG with its schedule, owner, next run and last runs; search and filters."""
    session = db_session()
    changes = read_changes(session)  # before any shown row: see change_counters
    sort = text("sort")
    wanted = DagFilter(
        text("search"),
        text("tag"),
        text("state"),
        sort if sort in SORTS else "dag_id",
        text("order") == "desc",
    )
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page = 1
    role = require_user().role
    may_pause, may_trigger = allows(role, "dags.pause"), allows(role, "dags.trigger")
    back = request.full_path
    key = (wanted, page, may_pause, may_trigger, back, request.script_root)
    views = web_context().dags_page_views
    cached = views.get(key)
    stamp = changes_stamp(changes)
    if cached is not None and stamp is not None and cached.stamps == (stamp,):
        table = cached.value
    else:
        table = build_table(session, wanted, page, may_pause, may_trigger, back)
        if stamp is not None:
            views.put(key, (stamp,), table)
    rows = table.rows.replace(FORM_TOKEN_SLOT, html(csrf_token()))
    for dag_id, label in dataset_schedules(session, table.consumers).items():
        rows = rows.replace(schedule_slot(dag_id), html(label))
    rows = fill_task_slots(rows, session, table.latest)
    return render_template(
        "dags.html",
        rows=Markup(rows),
        total=table.total,
        page=page,
        has_next=table.has_next,
        wanted=wanted,
        tags=table.tags,
        import_errors=table.import_errors,
        per_page=DAGS_PER_PAGE,
    )


def schedule_slot(dag_id: str) -> str:
    """Where a data-aware DAG's readiness goes in a cached table."""
    return f'<"datasets:{html(dag_id)}">'


def dataset_schedules(session: Session, consumers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """``dag_id → "on datasets (2 of 3 ready)"``; no query when none is shown."""
    if not consumers:
        return {}
    counts = readiness_of(session, [dag_id for dag_id, _ in consumers])
    labels = {}
    for dag_id, summary in consumers:
        ready, total = counts.get(dag_id, (0, 0))
        label = f"on datasets ({ready} of {total} ready)"
        if summary.startswith("Dataset or "):
            label += summary.removeprefix("Dataset")
        labels[dag_id] = label
    return labels


def changes_stamp(changes: Changes | None) -> Stamp | None:
    """The change counters as a view-cache stamp; ``None`` (counters unknown): never reuse."""
    return (
        None
        if changes is None
        else tuple(f"{n}={c}" for n, c in zip(COUNTED, changes, strict=True))
    )


def build_table(
    session: Session, wanted: DagFilter, page: int, may_pause: bool, may_trigger: bool, back: str
) -> DagsTable:
    """The list part of the page, read after the change counters it will be kept under."""
    listing = list_dags(session, wanted, page=page, per_page=DAGS_PER_PAGE)
    shown = listing.dags
    recent = recent_runs(session, [r.dag_id for r in shown])
    consumers = [d for d in shown if (d.timetable_summary or "").startswith(DATASET_SUMMARIES)]
    rows = render_template(
        "dag_rows.html",
        dags=entries(shown, recent.runs),
        schedules={d.dag_id: Markup(schedule_slot(d.dag_id)) for d in consumers},
        task_slots={d.dag_id: Markup(tasks_slot(d.dag_id)) for d in shown},
        tag_urls={t: url_for("dags.index", tag=t) for r in shown for t in r.tags},
        may_pause=may_pause,
        may_trigger=may_trigger,
        form_token=Markup(FORM_TOKEN_SLOT),
        back=back,
    )
    return DagsTable(
        total=listing.total,
        has_next=listing.total > page * DAGS_PER_PAGE,
        tags=listing.tags,
        rows=rows,
        import_errors=session.scalar(select(func.count()).select_from(ImportErrorRow)) or 0,
        consumers=tuple((d.dag_id, d.timetable_summary or "") for d in consumers),
        latest=latest_runs(shown, recent.runs),
    )


def latest_runs(
    shown: Sequence[DagSummary], runs: dict[str, list[RecentRun]]
) -> tuple[tuple[str, int], ...]:
    """``(dag_id, dag_run.id)`` of each shown DAG's newest run (none for a DAG never run)."""
    latest = ((d.dag_id, runs[d.dag_id][-1].id) for d in shown if runs[d.dag_id])
    return tuple((dag_id, run_pk) for dag_id, run_pk in latest if run_pk is not None)


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
