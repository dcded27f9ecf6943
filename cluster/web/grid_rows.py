"""The grid's rows: tasks in display order inside the task groups that fold them.

Tasks come in the graph's layer order (:func:`cluster.web.graph.task_order`) with every
group's members kept together (:func:`cluster.web.taskgroups.cluster_column`); a group
row precedes its members and shows, per run, the most urgent state among them. Each
row knows its chain of groups, so the page can hide a folded group's rows. Pure
functions over the serialized DAG and the grid's states, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cluster.dagfiles.serialized import SerializedDag
from cluster.web.graph import task_order
from cluster.web.grid import most_urgent
from cluster.web.taskgroups import GroupPath, cluster_column, group_paths, short_label


@dataclass(frozen=True)
class GridRow:
    """One row: a task, or the header of a task group (``is_group``)."""

    row_id: str
    label: str
    #: the groups around this row, outermost first (a group row's own id excluded)
    groups: GroupPath
    is_group: bool = False
    #: ``"setup"`` or ``"teardown"`` for those tasks
    role: str | None = None
    #: the full task id when the label shows something else (display name, short name)
    title: str | None = None
    #: a group row: its member tasks (at any depth)
    members: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        return len(self.groups)


def display_order(dag: SerializedDag | None) -> list[str]:
    """Task ids in the grid's order: by layer, a group's members kept together."""
    if dag is None:
        return []
    return cluster_column(task_order(dag), group_paths(dag))


def grid_rows(dag: SerializedDag | None, task_ids: Iterable[str]) -> list[GridRow]:
    """Rows for ``task_ids`` (in that order), with a group row before each group's first
    member; ids the DAG no longer has are plain rows at depth 0."""
    paths = group_paths(dag) if dag is not None else {}
    rows: list[GridRow] = []
    open_groups: GroupPath = ()
    group_rows: dict[str, int] = {}
    members: dict[str, list[str]] = {}
    for task_id in task_ids:
        path = paths.get(task_id, ())
        shared = _common_prefix(open_groups, path)
        for level in range(shared, len(path)):
            group_id = path[level]
            group_rows[group_id] = len(rows)
            rows.append(
                GridRow(
                    row_id=group_id,
                    label=short_label(group_id, path[:level]),
                    groups=path[:level],
                    is_group=True,
                )
            )
        open_groups = path
        for group_id in path:
            members.setdefault(group_id, []).append(task_id)
        rows.append(_task_row(dag, task_id, path))
    for group_id, index in group_rows.items():
        row = rows[index]
        rows[index] = GridRow(
            row.row_id, row.label, row.groups, True, members=tuple(members.get(group_id, ()))
        )
    return rows


def _task_row(dag: SerializedDag | None, task_id: str, path: GroupPath) -> GridRow:
    task = dag.tasks.get(task_id) if dag is not None else None
    shown = dag.task_display_name(task_id) if dag is not None else task_id
    label = shown if shown != task_id else short_label(task_id, path)
    role = None
    if task is not None and task.is_setup:
        role = "setup"
    elif task is not None and task.is_teardown:
        role = "teardown"
    return GridRow(
        row_id=task_id,
        label=label,
        groups=path,
        role=role,
        title=task_id if label != task_id else None,
    )


def _common_prefix(a: GroupPath, b: GroupPath) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def group_states(
    rows: list[GridRow], states: dict[tuple[str, str], str], run_ids: list[str]
) -> dict[str, dict[str, str]]:
    """``{group_id: {run_id: state}}``: the most urgent state of a group's tasks per run."""
    result: dict[str, dict[str, str]] = {}
    for row in rows:
        if not row.is_group:
            continue
        by_run: dict[str, str] = {}
        for run_id in run_ids:
            found = [s for t in row.members if (s := states.get((t, run_id))) is not None]
            if found:
                by_run[run_id] = most_urgent(found)
        result[row.row_id] = by_run
    return result
