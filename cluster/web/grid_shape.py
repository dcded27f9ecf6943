"""The grid's rows for one version of a DAG, built once per webserver process.

What the grid draws of a DAG's structure (its tasks in display order, the group rows,
each row's label, escaped id and link segment) changes only when the DAG does, that
is when its fingerprint does. For a 10,000-task DAG, reading its 5 MB serialized form,
decoding it and ordering its tasks cost most of the grid page's server time; so the
view reads only the fingerprint and reuses the shape built for it (so do the task
pages, for a task's display name). A shape is built
from one row (data and fingerprint read together), so it never pairs a structure with
another version's fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore.models import SerializedDagRow
from cluster.web.grid_rows import GridRow, display_order, grid_rows
from cluster.web.pages.paths import quote_segment
from cluster.web.view_cache import ViewCache

#: a mark before a setup or teardown task's label
ROLE_MARKS = {
    "setup": '<span class="role-mark" title="setup task">↑</span> ',
    "teardown": '<span class="role-mark" title="teardown task">↓</span> ',
}


@dataclass(frozen=True, slots=True)
class RowHtml:
    """One row's fixed pieces: the opening ``<tr>`` and its header cell, the row's id
    escaped for attributes, and (tasks) the id quoted as a path segment."""

    row: GridRow
    head: str
    key: str
    segment: str = ""


@dataclass(frozen=True)
class GridShape:
    """The rows of one DAG version; ``serialized`` is false for a DAG not parsed yet."""

    serialized: bool
    #: the DAG's ``dag_display_name``, which the page's heading shows
    display_name: str | None
    #: task ids in display order
    task_ids: tuple[str, ...]
    known: frozenset[str]
    rows: tuple[RowHtml, ...]
    #: ``task_display_name`` of the tasks that have one (the task pages show it)
    display_names: Mapping[str, str] = field(default_factory=dict)

    def task_display_name(self, task_id: str) -> str:
        """What the UI shows for ``task_id``, as :meth:`SerializedDag.task_display_name`."""
        return self.display_names.get(task_id, task_id)


#: the shape of a DAG without a serialized form: every task it had is an extra row
UNSERIALIZED = GridShape(False, None, (), frozenset(), ())


def shape_of(dag: SerializedDag | None) -> GridShape:
    """The grid's rows for ``dag`` (see the module's docstring)."""
    if dag is None:
        return UNSERIALIZED
    order = display_order(dag)
    return GridShape(
        serialized=True,
        display_name=dag.display_name,
        task_ids=tuple(order),
        known=frozenset(order),
        rows=tuple(prepare_rows(grid_rows(dag, order))),
        display_names={
            task_id: shown
            for task_id in dag.tasks
            if (shown := dag.task_display_name(task_id)) != task_id
        },
    )


def load_shape(session: Session, dag_id: str, cache: ViewCache[GridShape]) -> GridShape:
    """``dag_id``'s shape: reused while its fingerprint is the one it was built from."""
    fingerprint = session.scalar(
        select(SerializedDagRow.fingerprint).where(SerializedDagRow.dag_id == dag_id)
    )
    if fingerprint is None:
        return UNSERIALIZED
    cached = cache.get(dag_id)
    if cached is not None and cached.stamps == ((fingerprint,),):
        return cached.value
    row = session.get(SerializedDagRow, dag_id)
    if row is None:  # deleted since the first read
        return UNSERIALIZED
    shape = shape_of(SerializedDag.from_json(row.data))
    cache.put(dag_id, ((row.fingerprint,),), shape)
    return shape


def extra_rows(task_ids: Iterable[str]) -> list[RowHtml]:
    """Rows of tasks the DAG no longer has (their instances remain): plain, at depth 0."""
    return prepare_rows(grid_rows(None, task_ids))


def prepare_rows(rows: Iterable[GridRow]) -> list[RowHtml]:
    """The fixed HTML of each row (its cells are added per request)."""
    return [_group_head(row) if row.is_group else _task_head(row) for row in rows]


def _task_head(row: GridRow) -> RowHtml:
    task = str(escape(row.row_id))
    within = escape(" ".join(row.groups))
    title = f' title="{escape(row.title)}"' if row.title else ""
    mark = ROLE_MARKS.get(row.role or "", "")
    head = (
        f'<tr data-task-id="{task}" data-groups="{within}">'
        f'<th class="task depth-{row.depth}" scope="row"{title}>{mark}{escape(row.label)}</th>'
    )
    return RowHtml(row, head, task, quote_segment(row.row_id))


def _group_head(row: GridRow) -> RowHtml:
    group = str(escape(row.row_id))
    within = escape(" ".join(row.groups))
    head = (
        f'<tr class="group" data-group-id="{group}" data-groups="{within}">'
        f'<th class="task depth-{row.depth}" scope="row">'
        f'<button type="button" class="fold" aria-expanded="true" data-group="{group}" '
        f'title="Fold or unfold {group}">▾</button> <span class="group-label">'
        f'{escape(row.label)}</span> <span class="muted count-label">({len(row.members)})'
        "</span></th>"
    )
    return RowHtml(row, head, group)
