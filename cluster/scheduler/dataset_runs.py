"""The loop's dataset step: create one ``dataset_triggered`` run per consumer whose
condition holds, consuming its queue rows in the same fenced transaction.

One query finds every consumer with queued events (idle dataset-scheduled DAGs cost
nothing); only those are looked at. The run, its links to the events it saw and the
deletion of the queue rows commit together or not at all, under the epoch lease: a
leader that lost its lease writes nothing, and its successor finds the rows still
queued, so no consumer run is lost or created twice.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from cluster.metastore.dataset_models import (
    DagRunDatasetEvent,
    DagScheduleDatasetAliasReference,
    DagScheduleDatasetReference,
    DatasetAliasDataset,
    DatasetEvent,
)
from cluster.metastore.datasets import (
    QueuedConsumer,
    alias_resolutions,
    consume_queue,
    inserted_id,
    queued_consumers,
)
from cluster.metastore.models import DagRun
from cluster.policy.datasets import RUN_TYPE, DatasetRun, condition_of, plan_dataset_run
from cluster.scheduler.dagcache import DagCache
from cluster.sdk.datasets import condition_aliases
from cluster.states import DagRunState

log = logging.getLogger(__name__)

#: how long after its stamp a producing try's event may still commit and be seen
LATE_COMMIT = timedelta(minutes=10)


def create_dataset_triggered_runs(
    session: Session,
    dags: DagCache,
    *,
    now: datetime,
    epoch: int,
    waiting: dict[str, Hashable] | None = None,
) -> int:
    """Create the runs of every consumer whose dataset condition holds; returns how many.

    :param waiting: the caller's memory of consumers found waiting (half of an ``&``
        condition queued, say), by what they waited on: the DAG's version, their queue
        rows and how many alias resolutions exist. One whose key is unchanged is not
        looked at again, so many waiting consumers cost one query, not a condition
        each. Updated in place; a new leader starts with an empty one.
    """
    created = 0
    consumers = queued_consumers(session)
    keys: dict[str, Hashable] = {}
    if waiting is not None and consumers:
        resolutions = session.scalar(select(func.count()).select_from(DatasetAliasDataset))
        keys = {
            c.dag_id: (c.fingerprint, tuple(sorted(c.queued.items())), resolutions)
            for c in consumers
        }
        still = {d: k for d, k in waiting.items() if keys.get(d) == k}
        consumers = [c for c in consumers if c.dag_id not in still]
        waiting.clear()
        waiting.update(still)
    for consumer in consumers:
        dag = dags.get(session, consumer.dag_id, consumer.fingerprint)
        condition = condition_of(dag.timetable) if dag is not None else None
        if condition is None:
            # no longer scheduled on datasets: its stale rows would wait forever
            consume_queue(session, consumer.dag_id, consumer.dataset_ids.values())
            continue
        aliases = alias_resolutions(session, condition_aliases(condition))
        run = plan_dataset_run(consumer.dag_id, condition, consumer.queued, aliases)
        if run is None:
            if waiting is not None:
                waiting[consumer.dag_id] = keys[consumer.dag_id]
            continue
        _create(session, consumer, run, now=now, epoch=epoch, fingerprint=consumer.fingerprint)
        created += 1
    return created


def _create(
    session: Session,
    consumer: QueuedConsumer,
    run: DatasetRun,
    *,
    now: datetime,
    epoch: int,
    fingerprint: str | None,
) -> None:
    consume_queue(session, consumer.dag_id, consumer.dataset_ids.values())
    exists = session.scalar(
        select(DagRun.id).where(DagRun.dag_id == consumer.dag_id, DagRun.run_id == run.run_id)
    )
    if exists is not None:
        return  # Airflow too skips a run for a logical date that already has one
    events = _events_seen(session, consumer.dag_id, run.logical_date)
    stamps = [ts for _, ts in events] or [run.logical_date]
    result = session.execute(
        insert(DagRun).values(
            dag_id=consumer.dag_id,
            run_id=run.run_id,
            logical_date=run.logical_date,
            data_interval_start=min(stamps),
            data_interval_end=max(stamps),
            run_type=RUN_TYPE,
            state=DagRunState.QUEUED,
            conf={},
            queued_at=now,
            fingerprint=fingerprint,
            created_by_epoch=epoch,
        )
    )
    run_pk = inserted_id(result)
    if events:
        session.execute(
            insert(DagRunDatasetEvent), [{"dag_run_id": run_pk, "event_id": e} for e, _ in events]
        )
    log.info("Created %s for %d dataset events", run.run_id, len(events))


def _events_seen(
    session: Session, dag_id: str, logical_date: datetime
) -> list[tuple[int, datetime]]:
    """The events of the consumer's datasets that no earlier run of it has seen.

    Airflow takes the events stamped between the previous dataset-triggered run's
    logical date and this one's. Stamps and commits do not come in the same order
    (a producing try stamps its event, then commits), so an event committed just
    after a run was created but stamped before it would belong to no run, and one
    committed between the queue read and this query would be lost with its consumed
    queue row. Every committed event not yet linked to a run of this consumer is taken
    instead (read committed: the queue rows were deleted, waiting for any producer
    holding them, before this query). The lower bound ``LATE_COMMIT`` before the
    previous run keeps the scan short.
    """
    previous = session.scalar(
        select(DagRun.logical_date)
        .where(
            DagRun.dag_id == dag_id,
            DagRun.run_type == RUN_TYPE,
            DagRun.logical_date < logical_date,
        )
        .order_by(DagRun.logical_date.desc())
        .limit(1)
    )
    watched = select(DagScheduleDatasetReference.dataset_id).where(
        DagScheduleDatasetReference.dag_id == dag_id
    )
    seen_before = (
        select(DagRunDatasetEvent.event_id)
        .join(DagRun, DagRun.id == DagRunDatasetEvent.dag_run_id)
        .where(DagRunDatasetEvent.event_id == DatasetEvent.id, DagRun.dag_id == dag_id)
    )
    query = select(DatasetEvent.id, DatasetEvent.timestamp).where(
        DatasetEvent.dataset_id.in_(watched.union(_alias_datasets(dag_id))),
        ~seen_before.exists(),
    )
    if previous is not None:
        query = query.where(DatasetEvent.timestamp > previous - LATE_COMMIT)
    return [(int(i), ts) for i, ts in session.execute(query.order_by(DatasetEvent.id)).all()]


def _alias_datasets(dag_id: str) -> Select[Any]:
    """The dataset ids the consumer's aliases resolved to."""
    alias_ids = select(DagScheduleDatasetAliasReference.alias_id).where(
        DagScheduleDatasetAliasReference.dag_id == dag_id
    )
    return select(DatasetAliasDataset.dataset_id).where(DatasetAliasDataset.alias_id.in_(alias_ids))
