"""What a new leader does about the instances an older leader queued.

They stay ``queued``: their messages are in the broker, and the runner's claim decides
who runs them. But the old leader may have committed ``queued`` and died before its
messages left, so the new leader sends each such try once more. A try already
delivered is then claimed once and its duplicate is dropped at the claim.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.executors.base import Dispatch
from cluster.messages import TaskMessage
from cluster.metastore.models import TaskInstance
from cluster.scheduler.dagcache import DagCache
from cluster.states import TaskState


def orphaned_dispatches(session: Session, dags: DagCache, *, epoch: int) -> list[Dispatch]:
    """Dispatches for every try queued by an epoch older than ``epoch``."""
    rows = session.execute(
        select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.try_number,
            TaskInstance.queue,
            TaskInstance.priority_weight,
        ).where(
            TaskInstance.state == TaskState.QUEUED,
            TaskInstance.queued_by_epoch < epoch,
        )
    ).all()
    dispatches = []
    for row in rows:
        dags.get(session, row.dag_id)
        message = TaskMessage(
            row.dag_id,
            row.run_id,
            row.task_id,
            row.map_index,
            row.try_number,
            dags.fingerprint(row.dag_id) or "",
        )
        dispatches.append(Dispatch(message, queue=row.queue, priority=row.priority_weight))
    return dispatches
