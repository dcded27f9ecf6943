"""What the DAGs page shows: the matching DAGs, every tag, and each DAG's last runs.

The page costs a fixed number of queries whatever the number of DAGs, and each reads
only what it shows: the DAG columns of the list (not whole ORM objects), and the last
:data:`RECENT_RUNS` runs of each listed DAG through the ``(dag_id, logical_date)``
index, never every run of the table. Each query also reads its rows' codes, and has
a stamp query beside it (:mod:`cluster.web.stamps`), so the page can tell whether
what it showed a moment ago is still what the metastore holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, select, union_all
from sqlalchemy.orm import Session

from cluster.metastore.models import Dag, DagRun
from cluster.web.stamps import AnySelect, Stamp, read_stamp, row_code, stamp_of, stamp_statement

#: dots per DAG on the list
RECENT_RUNS = 10
#: DAGs per branch of the recent-runs query (SQLite allows 500 terms in a compound select)
RUNS_QUERY_CHUNK = 100


class RecentRun(NamedTuple):
    run_id: str
    state: str


@dataclass(frozen=True)
class DagFilter:
    search: str | None
    tag: str | None
    state: str | None  # "active" (unpaused) or "paused"

    @property
    def narrows_in_sql(self) -> bool:
        return bool(self.search) or self.state in ("active", "paused")


@dataclass(frozen=True, slots=True)
class DagSummary:
    """The columns of one DAG that the list shows."""

    dag_id: str
    is_paused: bool
    tags: list[str]
    owners: str | None
    timetable_summary: str | None
    next_dagrun: datetime | None


_COLUMNS = (Dag.dag_id, Dag.is_paused, Dag.tags, Dag.owners, Dag.timetable_summary, Dag.next_dagrun)


@dataclass(frozen=True)
class DagListing:
    """What :func:`list_dags` found, with the stamps of the rows it was made of."""

    dags: list[DagSummary]
    tags: list[str]
    stamps: tuple[Stamp, ...]


def list_dags(session: Session, wanted: DagFilter) -> DagListing:
    """The active DAGs matching ``wanted`` by id, and the sorted tags of all active DAGs.

    Tags are JSON text, so the tag filter runs here rather than in SQL (nothing
    dialect-specific outside the metastore). When no SQL filter applies, the tags come
    from the same rows instead of a second query.
    """
    statements = listing_statements(wanted.search, wanted.state)
    connection = session.connection()
    found = connection.execute(statements[0]).all()
    rows = [
        DagSummary(dag_id, bool(paused), [str(t) for t in tags or []], owners, summary, next_run)
        for dag_id, paused, tags, owners, summary, next_run, _ in found
    ]
    stamps = [stamp_of(r.row_code for r in found)]
    if wanted.narrows_in_sql:
        every = connection.execute(statements[1]).all()
        tags = sorted_tags([str(t) for t in value or []] for value, _ in every)
        stamps.append(stamp_of(r.row_code for r in every))
    else:
        tags = sorted_tags(r.tags for r in rows)
    if wanted.tag:
        rows = [r for r in rows if wanted.tag in r.tags]
    return DagListing(rows, tags, tuple(stamps))


def listing_stamps(session: Session, wanted: DagFilter) -> tuple[Stamp | None, ...]:
    """The current stamps of what :func:`list_dags` reads for ``wanted``."""
    statements = listing_statements(wanted.search, wanted.state)
    count = 2 if wanted.narrows_in_sql else 1
    return tuple(read_stamp(session, stamp_statement(s)) for s in statements[:count])


@lru_cache(maxsize=64)
def listing_statements(search: str | None, state: str | None) -> tuple[AnySelect, AnySelect]:
    """The active DAGs matching ``search`` and ``state``, and every active DAG's tags,
    each with its rows' codes (:mod:`cluster.web.stamps`)."""
    statement = (
        select(*_COLUMNS, row_code(*_COLUMNS)).where(Dag.is_active.is_(True)).order_by(Dag.dag_id)
    )
    if search:
        statement = statement.where(Dag.dag_id.contains(search, autoescape=True))
    if state in ("active", "paused"):
        statement = statement.where(Dag.is_paused.is_(state == "paused"))
    tags = select(Dag.tags, row_code(Dag.dag_id, Dag.tags)).where(Dag.is_active.is_(True))
    return statement, tags


def sorted_tags(tag_lists: Iterable[list[str]]) -> list[str]:
    return sorted({tag for tags in tag_lists for tag in tags})


def recent_runs(
    session: Session, dag_ids: Sequence[str], *, per_dag: int = RECENT_RUNS
) -> tuple[dict[str, list[RecentRun]], Stamp]:
    """The last ``per_dag`` runs of each DAG (by logical date), oldest first.

    One branch per DAG, glued with ``UNION ALL``: each branch reads only the DAG's
    newest runs along the ``(dag_id, logical_date)`` index. A window function over the
    listed DAGs' runs, the obvious single query, had to read and sort every one of
    them (51 ms of a 140 ms page with 100 runs per DAG, growing with history). The
    outer query puts them in display order, so the dates never travel. Returns the
    runs with their stamp (:mod:`cluster.web.stamps`).
    """
    found: dict[str, list[RecentRun]] = {dag_id: [] for dag_id in dag_ids}
    codes: list[str] = []
    connection = session.connection()
    for chunk, params in _chunks(dag_ids, per_dag):
        for dag_id, run_id, state, code in connection.execute(recent_runs_statement(chunk), params):
            found[dag_id].append(RecentRun(run_id, state))
            codes.append(code)
    return found, stamp_of(codes)


def recent_runs_stamp(
    session: Session, dag_ids: Sequence[str], *, per_dag: int = RECENT_RUNS
) -> Stamp | None:
    """The current stamp of what :func:`recent_runs` reads; ``None``: treat as changed."""
    stamps: list[str] = []
    for chunk, params in _chunks(dag_ids, per_dag):
        stamp = read_stamp(session, recent_runs_stamp_statement(chunk), params)
        if stamp is None:
            return None
        stamps += stamp
    return tuple(sorted(stamps))


def _chunks(dag_ids: Sequence[str], per_dag: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Per query of at most :data:`RUNS_QUERY_CHUNK` DAGs: its size and parameters."""
    for start in range(0, len(dag_ids), RUNS_QUERY_CHUNK):
        chunk = dag_ids[start : start + RUNS_QUERY_CHUNK]
        params: dict[str, Any] = {f"dag_id_{i}": dag_id for i, dag_id in enumerate(chunk)}
        params["per_dag"] = per_dag
        yield len(chunk), params


@lru_cache(maxsize=RUNS_QUERY_CHUNK)
def recent_runs_statement(branches: int) -> Select[Any]:
    """The recent-runs query for ``branches`` DAGs, with bound parameters ``dag_id_<i>``
    and ``per_dag``; built once per size, as building and keying a statement of a
    hundred branches cost more than running it."""
    runs = union_all(*(_newest_runs(bindparam(f"dag_id_{i}")) for i in range(branches)))
    ranked = runs.subquery("recent_runs")
    c = ranked.c
    code = row_code(c.id, c.dag_id, c.run_id, c.state, c.logical_date)
    return select(c.dag_id, c.run_id, c.state, code).order_by(c.dag_id, c.logical_date, c.id)


@lru_cache(maxsize=RUNS_QUERY_CHUNK)
def recent_runs_stamp_statement(branches: int) -> AnySelect:
    return stamp_statement(recent_runs_statement(branches))


def _newest_runs(dag_id: Any) -> Select[Any]:
    newest = (
        select(DagRun.id, DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.logical_date)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
        .limit(bindparam("per_dag"))
        .subquery()
    )
    return select(newest)
