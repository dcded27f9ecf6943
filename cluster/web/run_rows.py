"""The run page's list of task instances, read as plain columns and written in Python.

A run of a 10,000-task fan-out lists 10,000 instances. Loaded as ORM objects (every
column, JSON ones included) and drawn by a template loop (a ``url_for``, a macro and
three filters per row), the page cost 0.9 s of CPU; here only the shown columns are
read, the links come from a :class:`~cluster.web.pages.paths.PathPattern` built once,
and each row is one f-string, as the grid's rows are (:mod:`cluster.web.grid_page`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.models import TaskInstance
from cluster.web.pages.formatting import duration, when
from cluster.web.pages.paths import PathPattern

#: one instance: task_id, map_index, state, try_number, start, end, duration, hostname
InstanceRow = tuple[
    str, int, str | None, int, datetime | None, datetime | None, float | None, str | None
]


def load_instances(session: Session, dag_id: str, run_id: str) -> Sequence[Any]:
    """The run's instances by task id, then map index: only the columns the page shows."""
    ti = TaskInstance
    return session.execute(
        select(
            ti.task_id,
            ti.map_index,
            ti.state,
            ti.try_number,
            ti.start_date,
            ti.end_date,
            ti.duration,
            ti.hostname,
        )
        .where(ti.dag_id == dag_id, ti.run_id == run_id)
        .order_by(ti.task_id, ti.map_index)
    ).all()


def instances_html(dag_id: str, run_id: str, rows: Sequence[InstanceRow]) -> Markup:
    """The table body's rows: each instance's link (``?map_index=`` for a mapped one),
    state badge (as the ``state`` macro draws it), try, dates, duration and host."""
    link = PathPattern("task_instances.show", "task_id", dag_id=dag_id, dag_run_id=run_id)
    out = []
    for task_id, map_index, state, try_number, start, end, took, hostname in rows:
        mapped = map_index >= 0
        href = link(task_id) + (f"?map_index={map_index}" if mapped else "")
        name = escape(task_id) + (f"[{map_index}]" if mapped else "")
        shown = escape(state or "none")
        out.append(
            f'<tr><td><a href="{escape(href)}">{name}</a></td>'
            f'<td><span class="state state-{shown}">{shown}</span></td><td>{try_number}</td>'
            f"<td>{when(start)}</td><td>{when(end)}</td><td>{duration(took)}</td>"
            f"<td>{escape(hostname or '—')}</td></tr>\n"
        )
    return Markup("".join(out))
