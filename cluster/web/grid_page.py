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

from cluster.web.grid import MARKS, Grid, GridRun, bar_fraction, longest, summary_text
from cluster.web.grid_rows import group_states
from cluster.web.grid_shape import GridShape, RowHtml, extra_rows
from cluster.web.pages.formatting import duration, when
from cluster.web.pages.paths import PathPattern

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


def build_view(dag_id: str, shape: GridShape, grid: Grid, now: datetime) -> GridView:
    """The grid page's runs and rows for ``grid`` (see the module's docstring)."""
    rows = all_rows(shape, grid)
    run_ids = [run.run_id for run in grid.runs]
    groups = group_states([r.row for r in rows], grid.states, run_ids)
    return GridView(
        runs=_run_views(grid, now, PathPattern("runs.show", "dag_run_id", dag_id=dag_id)),
        body=rows_html(dag_id, rows, grid, groups),
        active=grid.active,
    )


def all_rows(shape: GridShape, grid: Grid) -> list[RowHtml]:
    """The shape's rows, then those of tasks the DAG no longer has (``grid`` puts them
    after the DAG's own)."""
    extra = grid.task_ids[len(shape.task_ids) :]
    return [*shape.rows, *extra_rows(extra)] if extra else list(shape.rows)


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
    dag_id: str, rows: list[RowHtml], grid: Grid, groups: dict[str, dict[str, str]]
) -> Markup:
    """The body rows as one string: written here rather than by a template loop, which
    passes each of some 40,000 pieces up through every template block around it.

    A cell links to ``task_instances.show``, whose path is the run's (``runs.show``)
    plus ``/tasks/<task_id>``: quoting each run and task once, not per cell, halves the
    time of the page. Each row's own pieces come ready from its :class:`RowHtml`.
    """
    run_ids = [run.run_id for run in grid.runs]
    run_link = PathPattern("runs.show", "dag_run_id", dag_id=dag_id)
    columns = [(run_id, str(escape(run_id)), run_link(run_id) + "/tasks/") for run_id in run_ids]
    states, mapped = grid.states, grid.mapped
    out: list[str] = []
    for prepared in rows:
        if prepared.row.is_group:
            out.append(_group_row(prepared, columns, groups.get(prepared.row.row_id, {})))
            continue
        task_id, task, segment = prepared.row.row_id, prepared.key, prepared.segment
        out.append(prepared.head)
        for run_id, run, tasks_path in columns:
            state = states.get((task_id, run_id))
            if state is None:
                out.append("<td></td>")
                continue
            counts = mapped.get((task_id, run_id))
            if counts is None:
                safe = _safe(state)
                out.append(
                    f'<td><a class="cell state-{safe}" data-task-id="{task}" '
                    f'data-run-id="{run}" href="{tasks_path}{segment}" '
                    f'title="{task} · {run}: {safe}"><span class="mark" aria-hidden="true">'
                    f"{MARKS.get(state, '?')}</span></a></td>"
                )
                continue
            out.append(_mapped_cell(state, counts, task, run, tasks_path + segment))
        out.append("</tr>\n")
    return Markup("".join(out))


def _mapped_cell(state: str, counts: dict[str, int], task: str, run: str, href: str) -> str:
    """A mapped task's cell: its most urgent state, how many instances, and their states."""
    safe = _safe(state)
    return (
        f'<td><a class="cell state-{safe} mapped" data-task-id="{task}" data-run-id="{run}" '
        f'href="{href}" title="{task} · {run}: {escape(summary_text(counts))}">'
        f'<span class="mark" aria-hidden="true">{MARKS.get(state, "?")}</span>'
        f'<span class="count">{sum(counts.values())}</span></a></td>'
    )


_SAFE_STATES = {state: str(escape(state)) for state in MARKS}


def _safe(state: str) -> str:
    """``state`` escaped for HTML (the known states without a call)."""
    return _SAFE_STATES.get(state) or str(escape(state))


def _group_row(
    prepared: RowHtml, columns: list[tuple[str, str, str]], states: dict[str, str]
) -> str:
    group = prepared.key
    out = [prepared.head]
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


def grid_json(shape: GridShape, grid: Grid, now: datetime) -> dict[str, Any]:
    """``grid.json``: the grid's data with the task groups' summaries."""
    rows = [r.row for r in all_rows(shape, grid)]
    groups = group_states(rows, grid.states, [run.run_id for run in grid.runs])
    data = grid.to_json(now, groups)
    for run, entry in zip(grid.runs, data["runs"], strict=True):
        entry["label"] = run_label(run, entry["duration"])
    return data
