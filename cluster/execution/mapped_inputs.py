"""The values mapped instances expand over, read with their claim instead of by each try.

Every instance of a task mapped over an upstream result reads that result to pick its
share: 1,000 instances read the same value 1,000 times, each in a session of its own
from its pool process (a checkout, the query, the rollback: the pool process's
largest cost per mapped try, and a round trip it waits for). The claim transaction
already runs once for several tries at a time; it reads the values the run's mapping
producers pushed (the unmapped tasks that wrote a ``task_map`` row) in one query per
run, and the try's ``ti`` answers pulls of them from there (see
:class:`~cluster.execution.handle.MetastoreTaskInstance`). Read in the claim's
transaction, they are the values the try would have read: a producer cleared and run
again deletes its old value when its own new try is claimed, before any mapped
instance can be claimed again.

Values pulled otherwise (a mapped task's results, other keys, XComArgs in fixed
arguments) still come from the metastore when used.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from cluster.metastore.models import TASK_MAP, XCOM
from cluster.sdk.xcom_arg import XCOM_RETURN_KEY

#: ``(task_id, JSON text)`` of every unmapped producer of the run that pushed a length
_PRODUCER_VALUES = (
    select(XCOM.c.task_id, XCOM.c.value)
    .join(
        TASK_MAP,
        and_(
            TASK_MAP.c.dag_id == XCOM.c.dag_id,
            TASK_MAP.c.run_id == XCOM.c.run_id,
            TASK_MAP.c.task_id == XCOM.c.task_id,
            TASK_MAP.c.map_index == XCOM.c.map_index,
        ),
    )
    .where(
        XCOM.c.dag_id == bindparam("dag_id"),
        XCOM.c.run_id == bindparam("run_id"),
        XCOM.c.map_index == -1,
        XCOM.c.key == XCOM_RETURN_KEY,
    )
)

#: ``task_id → JSON text`` of the return values a run's mapped tasks expand over
MappedInputs = tuple[tuple[str, str | None], ...]


def read_mapped_inputs(session: Session, dag_id: str, run_id: str) -> MappedInputs:
    """The return values of ``run_id``'s unmapped mapping producers, as stored (one query).

    Empty while no producer of the run has pushed (a mapping over literals only).
    """
    rows = session.connection().execute(_PRODUCER_VALUES, {"dag_id": dag_id, "run_id": run_id})
    return tuple((task_id, value) for task_id, value in rows)
