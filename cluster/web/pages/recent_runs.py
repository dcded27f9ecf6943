"""The last runs of each listed DAG (the dots of the DAGs page), read along an index.

Each DAG's last :data:`RECENT_RUNS` runs by logical date are read in two short
statements rather than one branch per DAG: first each DAG's *cutoff*, the logical date
of its N-th newest run (one index dive per DAG: :func:`cutoffs_statement`), then every
run on or after its DAG's cutoff (one range of the ``(dag_id, logical_date)`` index per
DAG, OR-ed in one statement: :func:`window_statement`). Python keeps the newest N of
each range (ties at the cutoff may add a few). A ``UNION ALL`` of one ``LIMIT`` branch
per DAG, the previous form, cost MariaDB some 19 ms of CPU per 100 DAGs (a derived
table each, and the optimizer's work on a hundred of them); this costs a third of that.

What can go wrong: the metastore reads at READ COMMITTED, so a run deleted between the
two statements can leave a range short of N runs; such ranges are read again whole
(:func:`read_window`), never shown short.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from cluster.metastore.index_hints import along_index
from cluster.metastore.models import Dag, DagRun
from cluster.metastore.sql_functions import seconds_between
from cluster.web.prepared import AnySelect, execute

#: runs per DAG on the list (its sparkline and its counts by state)
RECENT_RUNS = 25
#: DAGs per statement (SQLite's expression depth allows 1,000; a hundred ranges parse fast)
RUNS_QUERY_CHUNK = 100
#: the index the ranges run along (MariaDB weighing every index cost more than the reads)
DATE_INDEX = "idx_dag_run_dag_id_logical_date"
#: how a run with no logical date sorts: before every dated one, as NULL does in SQL
_NO_DATE = datetime.min.replace(tzinfo=UTC)


class RecentRun(NamedTuple):
    run_id: str
    state: str
    logical_date: datetime | None = None
    #: seconds from start to end, computed by the database; ``None`` until it has both
    duration: float | None = None
    #: the run's primary key (``dag_run.id``): what the page counts its task instances by
    id: int | None = None


@dataclass(frozen=True, slots=True)
class RunWindow:
    """Which runs a recent-runs list read: per DAG, the runs on or after its cutoff
    (``None``: every run of the DAG)."""

    dag_ids: tuple[str, ...]
    cutoffs: tuple[datetime | None, ...]


@dataclass(frozen=True, slots=True)
class RecentRuns:
    """The last runs of each DAG, oldest first, with the ranges they were read from."""

    runs: dict[str, list[RecentRun]]
    window: RunWindow


def recent_runs(
    session: Session, dag_ids: Sequence[str], *, per_dag: int = RECENT_RUNS
) -> RecentRuns:
    """The last ``per_dag`` runs of each of ``dag_ids`` by logical date, oldest first."""
    if per_dag < 1:
        raise ValueError(f"per_dag must be at least 1, not {per_dag}")
    window = RunWindow(tuple(dag_ids), read_cutoffs(session, dag_ids, per_dag))
    rows = read_window(session, window)
    short = {d for d, c in zip(window.dag_ids, window.cutoffs, strict=True) if c is not None}
    short -= {d for d, found in rows.items() if len(found) >= per_dag}
    if short:  # a run was deleted between the statements: read those DAGs whole
        cutoffs = tuple(
            None if d in short else c for d, c in zip(window.dag_ids, window.cutoffs, strict=True)
        )
        window = RunWindow(window.dag_ids, cutoffs)
        rows = read_window(session, window)
    runs = {dag_id: _newest(rows.get(dag_id, []), per_dag) for dag_id in window.dag_ids}
    return RecentRuns(runs, window)


def read_cutoffs(
    session: Session, dag_ids: Sequence[str], per_dag: int
) -> tuple[datetime | None, ...]:
    """Per DAG, the logical date of its ``per_dag``-th newest run, or ``None`` when it
    has fewer runs (or that run has no date, or the DAG has no ``dag`` row)."""
    found: dict[str, datetime | None] = {}
    connection = session.connection()
    for start in range(0, len(dag_ids), RUNS_QUERY_CHUNK):
        chunk = list(dag_ids[start : start + RUNS_QUERY_CHUNK])
        params = {"dag_ids": chunk, "skip": per_dag - 1}
        found.update(
            (dag_id, cutoff) for dag_id, cutoff in connection.execute(cutoffs_statement(), params)
        )
    return tuple(found.get(dag_id) for dag_id in dag_ids)


_Row = tuple[str, str, str, datetime | None, int, float | None]


def read_window(session: Session, window: RunWindow) -> dict[str, list[_Row]]:
    """Every run in ``window`` by DAG:
    ``(dag_id, run_id, state, logical_date, id, duration)``."""
    rows: dict[str, list[_Row]] = {}
    for shape, params in _window_chunks(window):
        for row in execute(session, window_statement(shape), params):
            rows.setdefault(row[0], []).append(tuple(row))
    return rows


def _newest(rows: list[_Row], per_dag: int) -> list[RecentRun]:
    """The last ``per_dag`` of ``rows`` by (logical date, id), oldest first."""
    ordered = sorted(rows, key=lambda r: (r[3] is not None, r[3] or _NO_DATE, r[4]))
    return [
        RecentRun(r[1], r[2], r[3], None if r[5] is None else float(r[5]), r[4])
        for r in ordered[-per_dag:]
    ]


def _window_chunks(window: RunWindow) -> Iterator[tuple[tuple[bool, ...], dict[str, Any]]]:
    """Per statement of at most :data:`RUNS_QUERY_CHUNK` DAGs: its shape (see
    :func:`window_statement`) and parameters."""
    for start in range(0, len(window.dag_ids), RUNS_QUERY_CHUNK):
        dag_ids = window.dag_ids[start : start + RUNS_QUERY_CHUNK]
        cutoffs = window.cutoffs[start : start + RUNS_QUERY_CHUNK]
        params: dict[str, Any] = {f"dag_id_{i}": dag_id for i, dag_id in enumerate(dag_ids)}
        params.update({f"cutoff_{i}": c for i, c in enumerate(cutoffs) if c is not None})
        yield tuple(c is not None for c in cutoffs), params


@lru_cache(maxsize=1)
def cutoffs_statement() -> AnySelect:
    """Each listed DAG's ``skip+1``-th newest logical date, one index dive per DAG
    (bound parameters: ``dag_ids``, expanding, and ``skip``)."""
    nth = (
        select(DagRun.logical_date)
        .where(DagRun.dag_id == Dag.dag_id)
        .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
        .limit(1)
        .offset(bindparam("skip"))
        .scalar_subquery()
    )
    return select(Dag.dag_id, nth).where(Dag.dag_id.in_(bindparam("dag_ids", expanding=True)))


@lru_cache(maxsize=64)
def window_statement(has_cutoff: tuple[bool, ...]) -> AnySelect:
    """The runs of one range per DAG; DAG ``i`` is bound as
    ``dag_id_<i>`` and, where ``has_cutoff[i]``, its cutoff as ``cutoff_<i>``. Built once
    per shape: building a statement of a hundred ranges costs more than running it."""
    ranges: list[ColumnElement[bool]] = []
    for i, bounded in enumerate(has_cutoff):
        same_dag = DagRun.dag_id == bindparam(f"dag_id_{i}")
        ranges.append(
            and_(same_dag, DagRun.logical_date >= bindparam(f"cutoff_{i}")) if bounded else same_dag
        )
    columns = (
        DagRun.dag_id,
        DagRun.run_id,
        DagRun.state,
        DagRun.logical_date,
        DagRun.id,
        # a float from the database: two datetimes per run cost more to read than the rest
        seconds_between(DagRun.start_date, DagRun.end_date),
    )
    statement = select(*columns).where(or_(*ranges))
    return along_index(statement, DagRun.__table__, DATE_INDEX)
