"""Finding a run by id or logical date inside an ORM session, for the commands that
change it (``tasks clear``, ``tasks run``); the commands that only read use the
driver-only :func:`cluster.metastore.status_reads.find_run`, which parses the argument
and words the error the same way."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.models import DagRun
from cluster.metastore.status_reads import logical_date_of, run_not_found


def find_run(session: Session, dag_id: str, run_id_or_date: str) -> DagRun:
    """A run by its id, or by its logical date given as ISO text.

    :raises NotFoundError: when neither finds one.
    """
    query = select(DagRun).where(DagRun.dag_id == dag_id)
    run = session.scalars(query.where(DagRun.run_id == run_id_or_date)).first()
    when = logical_date_of(run_id_or_date) if run is None else None
    if when is not None:
        run = session.scalars(query.where(DagRun.logical_date == when)).first()
    if run is None:
        raise run_not_found(dag_id, run_id_or_date)
    return run
