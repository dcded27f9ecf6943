"""What the grid page draws: run columns with their bars and dates, rows of cells.

The cells are built here in plain Python (state, link, label, mark, count) so the
template only writes them out: 200 tasks by 25 runs is 5,000 cells, and a ``url_for`` or
a few filters per cell would cost more than the queries. Links come from a
:class:`~cluster.web.pages.paths.PathPattern` built once per page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cluster.dagfiles.serialized import SerializedDag
from cluster.web.grid import MARKS, Grid, GridRun, bar_fraction, longest, summary_text
from cluster.web.grid_rows import GridRow, grid_rows, group_states
from cluster.web.pages.formatting import duration, when
from cluster.web.pages.paths import PathPattern

#: the tallest run bar, in pixels
BAR_HEIGHT = 48


@dataclass(frozen=True)
class CellView:
    run_id: str
    state: str
    href: str | None
    label: str
    mark: str
    count: int = 0


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
class RowView:
    row: GridRow
    cells: list[CellView | None]


@dataclass(frozen=True)
class GridView:
    runs: list[RunView]
    rows: list[RowView]
    active: bool
    groups: dict[str, dict[str, str]]
    bar_height: int = BAR_HEIGHT


def build_view(dag_id: str, dag: SerializedDag | None, grid: Grid, now: datetime) -> GridView:
    """The grid page's runs and rows for ``grid`` (see the module's docstring)."""
    rows = grid_rows(dag, grid.task_ids)
    run_ids = [run.run_id for run in grid.runs]
    groups = group_states(rows, grid.states, run_ids)
    task_link = PathPattern("task_instances.show", "dag_run_id", "task_id", dag_id=dag_id)
    run_link = PathPattern("runs.show", "dag_run_id", dag_id=dag_id)
    return GridView(
        runs=_run_views(grid, now, run_link),
        rows=[
            RowView(row, _group_cells(row, groups, run_ids))
            if row.is_group
            else RowView(row, _task_cells(row.row_id, grid, run_ids, task_link))
            for row in rows
        ],
        active=grid.active,
        groups=groups,
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


def _task_cells(
    task_id: str, grid: Grid, run_ids: list[str], link: PathPattern
) -> list[CellView | None]:
    cells: list[CellView | None] = []
    for run_id in run_ids:
        state = grid.states.get((task_id, run_id))
        if state is None:
            cells.append(None)
            continue
        counts = grid.mapped.get((task_id, run_id))
        text = summary_text(counts) if counts else state
        cells.append(
            CellView(
                run_id=run_id,
                state=state,
                href=link(run_id, task_id),
                label=f"{task_id} · {run_id}: {text}",
                mark=MARKS.get(state, "?"),
                count=sum(counts.values()) if counts else 0,
            )
        )
    return cells


def _group_cells(
    row: GridRow, groups: dict[str, dict[str, str]], run_ids: list[str]
) -> list[CellView | None]:
    by_run = groups.get(row.row_id, {})
    cells: list[CellView | None] = []
    for run_id in run_ids:
        state = by_run.get(run_id)
        cells.append(
            None
            if state is None
            else CellView(
                run_id,
                state,
                None,
                f"group {row.row_id} · {run_id}: {state}",
                MARKS.get(state, "?"),
            )
        )
    return cells


def grid_json(dag: SerializedDag | None, grid: Grid, now: datetime) -> dict[str, Any]:
    """``grid.json``: the grid's data with the task groups' summaries."""
    rows = grid_rows(dag, grid.task_ids)
    groups = group_states(rows, grid.states, [run.run_id for run in grid.runs])
    data = grid.to_json(now, groups)
    for run, entry in zip(grid.runs, data["runs"], strict=True):
        entry["label"] = run_label(run, entry["duration"])
    return data
