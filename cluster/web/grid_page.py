"""What the grid page draws: run columns with their bars and dates, rows of cells.

The body rows are written here in plain Python as one escaped string, and the template
only places it: 200 tasks by 25 runs is 5,000 cells, and a template loop (each piece
passed up through every block around it) or a ``url_for`` per cell cost more than the
queries. Links come from a :class:`~cluster.web.pages.paths.PathPattern` built once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from cluster.dagfiles.serialized import SerializedDag
from cluster.web.grid import MARKS, Grid, GridRun, bar_fraction, longest, summary_text
from cluster.web.grid_rows import GridRow, grid_rows, group_states
from cluster.web.pages.formatting import duration, when
from cluster.web.pages.paths import PathPattern, quote_segment

#: the tallest run bar, in pixels
BAR_HEIGHT = 48


@dataclass(frozen=True)
class RunView:
    run_id: str
    state: str
    run_type: str
    href: str
    label: str
    #: the bar's height in pixels, and where its top is (SVG y)
    height: int
    top: int
    short_date: str


@dataclass(frozen=True)
class GridView:
    runs: list[RunView]
    #: the table's body rows, already escaped (see :func:`rows_html`)
    body: Markup
    active: bool
    bar_height: int = BAR_HEIGHT


def build_view(dag_id: str, dag: SerializedDag | None, grid: Grid, now: datetime) -> GridView:
    """The grid page's runs and rows for ``grid`` (see the module's docstring)."""
    rows = grid_rows(dag, grid.task_ids)
    run_ids = [run.run_id for run in grid.runs]
    groups = group_states(rows, grid.states, run_ids)
    return GridView(
        runs=_run_views(grid, now, PathPattern("runs.show", "dag_run_id", dag_id=dag_id)),
        body=rows_html(dag_id, rows, grid, groups),
        active=grid.active,
    )


def _run_views(grid: Grid, now: datetime, link: PathPattern) -> list[RunView]:
    durations = grid.durations(now)
    scale = longest(durations.values())
    views = []
    for run in grid.runs:
        spent = durations[run.run_id]
        height = max(round(bar_fraction(spent, scale) * BAR_HEIGHT), 2)
        views.append(
            RunView(
                run_id=run.run_id,
                state=run.state,
                run_type=run.run_type,
                href=link(run.run_id),
                label=run_label(run, spent),
                height=height,
                top=BAR_HEIGHT - height,
                short_date=run.logical_date.strftime("%m-%d") if run.logical_date else "—",
            )
        )
    return views


def run_label(run: GridRun, spent: float | None) -> str:
    """What a run's column head says to a screen reader and in its tooltip."""
    took = f"took {duration(spent)}" if spent is not None else "not started"
    return f"{run.run_id}: {run.state}, {run.run_type} run of {when(run.logical_date)}, {took}"


def rows_html(
    dag_id: str, rows: list[GridRow], grid: Grid, groups: dict[str, dict[str, str]]
) -> Markup:
    """The body rows as one string: written here rather than by a template loop, which
    passes each of some 40,000 pieces up through every template block around it.

    A cell links to ``task_instances.show``, whose path is the run's (``runs.show``)
    plus ``/tasks/<task_id>``: quoting each run and task once, not per cell, halves the
    time of the page.
    """
    run_ids = [run.run_id for run in grid.runs]
    run_link = PathPattern("runs.show", "dag_run_id", dag_id=dag_id)
    columns = [(run_id, str(escape(run_id)), run_link(run_id) + "/tasks/") for run_id in run_ids]
    out: list[str] = []
    for row in rows:
        depth = f'<th class="task depth-{row.depth}" scope="row"'
        within = escape(" ".join(row.groups))
        if row.is_group:
            out.append(_group_row(row, depth, within, columns, groups.get(row.row_id, {})))
            continue
        task_id = row.row_id
        task = escape(task_id)
        segment = quote_segment(task_id)
        title = f' title="{escape(row.title)}"' if row.title else ""
        mark = _ROLE_MARKS.get(row.role or "", "")
        out.append(f'<tr data-task-id="{task}" data-groups="{within}">{depth}{title}>')
        out.append(f"{mark}{escape(row.label)}</th>")
        for run_id, run, tasks_path in columns:
            state = grid.states.get((task_id, run_id))
            if state is None:
                out.append("<td></td>")
                continue
            counts = grid.mapped.get((task_id, run_id))
            safe = _safe(state)
            text = escape(summary_text(counts)) if counts else safe
            extra = f'<span class="count">{sum(counts.values())}</span>' if counts else ""
            out.append(
                f'<td><a class="cell state-{safe}{" mapped" if counts else ""}" '
                f'data-task-id="{task}" data-run-id="{run}" href="{tasks_path}{segment}" '
                f'title="{task} · {run}: {text}"><span class="mark" aria-hidden="true">'
                f"{MARKS.get(state, '?')}</span>{extra}</a></td>"
            )
        out.append("</tr>\n")
    return Markup("".join(out))


_SAFE_STATES = {state: str(escape(state)) for state in MARKS}


def _safe(state: str) -> str:
    """``state`` escaped for HTML (the known states without a call)."""
    return _SAFE_STATES.get(state) or str(escape(state))


_ROLE_MARKS = {
    "setup": '<span class="role-mark" title="setup task">↑</span> ',
    "teardown": '<span class="role-mark" title="teardown task">↓</span> ',
}


def _group_row(
    row: GridRow, depth: str, within: str, columns: list[tuple[str, str, str]],
    states: dict[str, str],
) -> str:  # fmt: skip
    group = escape(row.row_id)
    out = [
        f'<tr class="group" data-group-id="{group}" data-groups="{within}">{depth}>'
        f'<button type="button" class="fold" aria-expanded="true" data-group="{group}" '
        f'title="Fold or unfold {group}">▾</button> <span class="group-label">'
        f'{escape(row.label)}</span> <span class="muted count-label">({len(row.members)})'
        "</span></th>"
    ]
    for run_id, run, _ in columns:
        state = states.get(run_id)
        if state is None:
            out.append("<td></td>")
            continue
        out.append(
            f'<td><span class="cell group-cell state-{_safe(state)}" data-group-id="{group}" '
            f'data-run-id="{run}" title="group {group} · {run}: {_safe(state)}" role="img">'
            f'<span class="mark" aria-hidden="true">{MARKS.get(state, "?")}</span></span></td>'
        )
    out.append("</tr>\n")
    return "".join(out)


def grid_json(dag: SerializedDag | None, grid: Grid, now: datetime) -> dict[str, Any]:
    """``grid.json``: the grid's data with the task groups' summaries."""
    rows = grid_rows(dag, grid.task_ids)
    groups = group_states(rows, grid.states, [run.run_id for run in grid.runs])
    data = grid.to_json(now, groups)
    for run, entry in zip(grid.runs, data["runs"], strict=True):
        entry["label"] = run_label(run, entry["duration"])
    return data
