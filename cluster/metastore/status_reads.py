"""The reads that scripts poll, in plain SQL on a :class:`~cluster.metastore.dbapi.Reader`.

``tradewind dags list``, ``dags state``, ``tasks state`` and ``tasks states-for-dag-run``
read a few columns of ``dag``, ``serialized_dag``, ``dag_run`` and ``task_instance``
and end; through the driver alone they cost a fraction of a second instead of the
second SQLAlchemy's ORM and the models take to import (see :mod:`.dbapi`). The SQL is
the ORM queries the commands ran before, column for column; how a run is found by id or
by logical date (:func:`logical_date_of`, :func:`run_not_found`) is shared with the
ORM lookup the commands that write use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cluster.errors import NotFoundError
from cluster.metastore.dbapi import Reader


@dataclass(frozen=True)
class RunRef:
    """What the polled commands need of one ``dag_run`` row."""

    run_id: str
    state: str
    logical_date: datetime | None


@dataclass(frozen=True)
class DagListing:
    """One active DAG's row with its serialized form (JSON text)."""

    dag_id: str
    fileloc: str
    owners: str | None
    is_paused: bool | None
    next_dagrun: datetime | None
    serialized: str


def logical_date_of(run_id_or_date: str) -> datetime | None:
    """``EXECUTION_DATE_OR_RUN_ID`` read as a logical date (ISO text, UTC when no zone
    is given), or ``None`` when it is not one (then it can only be a run id)."""
    try:
        when = datetime.fromisoformat(run_id_or_date)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def run_not_found(dag_id: str, run_id_or_date: str) -> NotFoundError:
    return NotFoundError(
        f"DAG run '{run_id_or_date}' of '{dag_id}' not found (tradewind dags list-runs {dag_id})"
    )


_RUN = "SELECT run_id, state, logical_date FROM dag_run WHERE dag_id = :dag_id"


def find_run(reader: Reader, dag_id: str, run_id_or_date: str) -> RunRef:
    """A run by its id, or by its logical date given as ISO text.

    :raises NotFoundError: when neither finds one.
    """
    row = reader.first(f"{_RUN} AND run_id = :run_id", dag_id=dag_id, run_id=run_id_or_date)
    when = logical_date_of(run_id_or_date) if row is None else None
    if when is not None:
        row = reader.first(f"{_RUN} AND logical_date = :when", dag_id=dag_id, when=when)
    if row is None:
        raise run_not_found(dag_id, run_id_or_date)
    return RunRef(run_id=row[0], state=row[1], logical_date=reader.utc(row[2]))


def active_dags(reader: Reader) -> list[DagListing]:
    """Every active DAG that has a serialized form, by DAG id."""
    rows = reader.rows(
        "SELECT dag.dag_id, dag.fileloc, dag.owners, dag.is_paused, dag.next_dagrun,"
        " serialized_dag.data FROM dag"
        " JOIN serialized_dag ON serialized_dag.dag_id = dag.dag_id"
        " WHERE dag.is_active = :active ORDER BY dag.dag_id",
        active=True,
    )
    return [
        DagListing(
            dag_id=r[0],
            fileloc=r[1],
            owners=r[2],
            is_paused=reader.flag(r[3]),
            next_dagrun=reader.utc(r[4]),
            serialized=r[5],
        )
        for r in rows
    ]


def task_instances_of(reader: Reader, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of one run, by task id (then map index), as plain values."""
    rows = reader.rows(
        "SELECT task_id, state, start_date, end_date, try_number, hostname"
        " FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id"
        " ORDER BY task_id, map_index",
        dag_id=dag_id,
        run_id=run_id,
    )
    return [
        {
            "task_id": r[0],
            "state": r[1],
            "start_date": reader.utc(r[2]),
            "end_date": reader.utc(r[3]),
            "try_number": r[4],
            "hostname": r[5],
        }
        for r in rows
    ]


def task_instance_state(
    reader: Reader, dag_id: str, run_id: str, task_id: str, map_index: int
) -> str | None:
    """One instance's state, or ``None`` when the run has no such instance."""
    row = reader.first(
        "SELECT state FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id"
        " AND task_id = :task_id AND map_index = :map_index",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
    )
    return None if row is None else row[0]
