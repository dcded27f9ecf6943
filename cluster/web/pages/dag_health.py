"""A DAG's health at a glance on the DAGs list: its recent runs and its latest run's tasks.

From the runs :mod:`cluster.web.pages.recent_runs` read (the last
:data:`~cluster.web.pages.recent_runs.RECENT_RUNS` per DAG, so nothing here grows
with history): counts by state, the last run, and a sparkline of durations whose bars
link to the DAG's runs. The latest run's task instances are counted by state in one grouped
statement over the shown DAGs' latest runs (``idx_ti_dag_run_state``): task instances
change no change counter, so the page fills these per request into slots of the
cached table. All of it is written as strings here (a page has a hundred rows, and
Jinja's per-value work costs a quarter of the page); every value is escaped.

The runs are named by their primary keys (``dag_run.id IN (...)``, joined to their
instances), not by a hundred OR-ed ``(dag_id, run_id)`` pairs: PostgreSQL spent some
15 ms planning that OR on every request (its 10 kB of text is past what psycopg caches
or prepares), more than the whole page cost it otherwise. A list of integers plans in
well under a millisecond and its text is short enough to be prepared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import ARRAY, ColumnElement, Integer, and_, any_, bindparam, func, select
from sqlalchemy.orm import Session

from cluster.metastore.models import DagRun, TaskInstance
from cluster.web.charts.sparkline import RunBar, draw_sparkline
from cluster.web.pages.recent_runs import RecentRun
from cluster.web.prepared import AnySelect, execute

#: the order counts are shown in (others follow by name)
STATE_ORDER = (
    "success",
    "running",
    "deferred",
    "failed",
    "queued",
    "up_for_retry",
    "upstream_failed",
    "scheduled",
    "skipped",
    "none",
)
#: DAGs per grouped count statement
COUNT_CHUNK = 100
COUNT = (
    '<span class="count state-{state}" title="{state}: {n} {what}">{n}'
    '<span class="sr"> {state}</span></span>'
)


#: badge strings kept per process: a page's hundred rows mostly repeat a few counts
COUNTS_HTML_CACHE = 1024
_RANK = {state: i for i, state in enumerate(STATE_ORDER)}


def counts_html(counts: dict[str, int], what: str) -> str:
    """Badges ``7 success``, ``1 failed``: a number, a colour, and the state in words.

    Built once per distinct counts: formatting and escaping them anew was two thirds
    of a reused DAGs page's CPU (a hundred latest runs on every request)."""
    return _badges(tuple(sorted(counts.items())), what)


@lru_cache(maxsize=COUNTS_HTML_CACHE)
def _badges(counts: tuple[tuple[str, int], ...], what: str) -> str:
    ordered = sorted(counts, key=lambda item: (_RANK.get(item[0], len(_RANK)), item[0]))
    return "".join(
        COUNT.format(state=escape(state), n=n, what=escape(what)) for state, n in ordered if n
    )


def run_counts_html(runs: Sequence[RecentRun]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    return counts_html(counts, f"of the last {len(runs)} runs")


def sparkline_html(runs: Sequence[RecentRun], href: str) -> str:
    """The runs' durations as bars, the line linking to ``href`` (the DAG's runs)."""
    return draw_sparkline([RunBar(r.run_id, r.state, r.duration) for r in runs], href)


#: a slot as :func:`tasks_slot` writes it
_SLOT = re.compile(r'<"tasks:([^"]*)">')


def tasks_slot(dag_id: str) -> str:
    """Where the latest run's task counts go in a cached table."""
    return f'<"tasks:{escape(dag_id)}">'


def latest_task_counts(
    session: Session, latest: Sequence[tuple[str, int]]
) -> dict[str, dict[str, int]]:
    """``dag_id → {state: instances}`` of each ``(dag_id, dag_run.id)`` latest run.

    PostgreSQL gets the keys as one array parameter: psycopg converts the text of a
    statement with over 50 parameters anew on every run (some 2 ms for a hundred), and
    the statement stays one, whatever the number of runs. The others get one parameter
    per run, :data:`COUNT_CHUNK` runs a statement.
    """
    found: dict[str, dict[str, int]] = {}
    batches: list[tuple[AnySelect, dict[str, Any]]]
    if session.get_bind().dialect.name == "postgresql":
        batches = [(counts_by_array(), {"runs": [run_pk for _, run_pk in latest]})]
    else:
        batches = [
            (counts_statement(len(chunk)), {f"run_{i}": pk for i, (_, pk) in enumerate(chunk)})
            for chunk in (latest[s : s + COUNT_CHUNK] for s in range(0, len(latest), COUNT_CHUNK))
        ]
    for statement, params in batches:
        # all(): one fetch, not a fetchone per row (a third of this function's time)
        for dag_id, state, n in execute(session, statement, params).all():
            found.setdefault(dag_id, {})[state or "none"] = int(n)
    return found


def _counts_of(runs: ColumnElement[bool]) -> AnySelect:
    """Task instances by DAG and state of the runs that ``runs`` selects by ``dag_run.id``."""
    return (
        select(TaskInstance.dag_id, TaskInstance.state, func.count())
        .join(
            DagRun,
            and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id),
        )
        .where(runs)
        .group_by(TaskInstance.dag_id, TaskInstance.state)
    )


@lru_cache(maxsize=16)
def counts_statement(runs: int) -> AnySelect:
    """Task instances by DAG and state in ``runs`` runs, bound by primary key as ``run_<i>``
    (one parameter each, not an expanding list: :func:`~cluster.web.prepared.prepared`
    compiles it once)."""
    return _counts_of(DagRun.id.in_([bindparam(f"run_{i}") for i in range(runs)]))


@lru_cache(maxsize=1)
def counts_by_array() -> AnySelect:
    """:func:`counts_statement` for PostgreSQL: the primary keys as one array, ``runs``."""
    return _counts_of(DagRun.id == any_(bindparam("runs", type_=ARRAY(Integer))))


def fill_task_slots(rows: str, session: Session, latest: Sequence[tuple[str, int]]) -> str:
    """``rows`` with each latest run's task counts in its slot (empty for no tasks)."""
    if not latest:
        return rows
    counts = latest_task_counts(session, latest)
    filled = {
        str(escape(dag_id)): counts_html(counts.get(dag_id, {}), "tasks in the latest run")
        or '<span class="muted">no tasks</span>'
        for dag_id, _ in latest
    }
    # one pass over the page: a replace per DAG would read the whole page a hundred times
    return Markup(_SLOT.sub(lambda m: filled.get(m.group(1), ""), rows))
