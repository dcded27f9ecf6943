"""Reads and writes of the dataset tables, for the DAG processor, the runner, the scheduler
and the web.

Every write runs in the caller's transaction. Rows that many writers may add at once
(a dataset, an alias, a queue row for a consumer) are inserted with the dialect's
"insert unless present" (``INSERT IGNORE``, ``ON CONFLICT DO NOTHING``, ``INSERT OR
IGNORE``), so two workers recording events of one dataset at the same moment neither
fail nor duplicate a queue row.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from cluster.errors import MetastoreError
from cluster.metastore.dataset_models import (
    DagRunDatasetEvent,
    DagScheduleDatasetAliasReference,
    DagScheduleDatasetReference,
    DatasetAliasDataset,
    DatasetAliasRow,
    DatasetDagRunQueue,
    DatasetEvent,
    DatasetRow,
    TaskOutletDatasetReference,
)
from cluster.metastore.models import Dag, DagRun, table_of


def key_hash(text: str) -> str:
    """The unique key of a URI or alias name (any length fits the index)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EventSpec:
    """One dataset event to record: from a task's outlet, an alias, or the REST API."""

    uri: str
    extra: dict[str, Any] = field(default_factory=dict)
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = -1
    #: the alias the task emitted it through: the alias now resolves to ``uri`` too
    alias: str | None = None


def _insert_ignoring(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose key is already present (concurrent writers)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif dialect in ("mysql", "mariadb"):
        session.execute(insert(table).prefix_with("IGNORE"), rows)
    else:
        session.execute(insert(table).prefix_with("OR IGNORE"), rows)


def inserted_id(result: Result[Any]) -> int:
    """The id a single-row INSERT gave its row."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    if key is None:
        raise MetastoreError("the database returned no id for an inserted row")
    return int(key[0])


def ensure_datasets(session: Session, uris: Iterable[str], *, now: datetime) -> dict[str, int]:
    """``uri → id``, adding the datasets not known yet."""
    wanted = sorted(set(uris))
    if not wanted:
        return {}
    hashes = {key_hash(u): u for u in wanted}
    _insert_ignoring(
        session,
        table_of(DatasetRow),
        [
            {
                "uri": u,
                "uri_hash": h,
                "extra": {},
                "created_at": now,
                "updated_at": now,
                "is_orphaned": False,
            }
            for h, u in hashes.items()
        ],
    )
    rows = session.execute(
        select(DatasetRow.uri_hash, DatasetRow.id).where(DatasetRow.uri_hash.in_(list(hashes)))
    ).all()
    return {hashes[h]: i for h, i in rows}


def ensure_aliases(session: Session, names: Iterable[str]) -> dict[str, int]:
    """``name → id``, adding the aliases not known yet."""
    hashes = {key_hash(n): n for n in sorted(set(names))}
    if not hashes:
        return {}
    _insert_ignoring(
        session,
        table_of(DatasetAliasRow),
        [{"name": n, "name_hash": h} for h, n in hashes.items()],
    )
    rows = session.execute(
        select(DatasetAliasRow.name_hash, DatasetAliasRow.id).where(
            DatasetAliasRow.name_hash.in_(list(hashes))
        )
    ).all()
    return {hashes[h]: i for h, i in rows}


def sync_references(
    session: Session,
    dag_id: str,
    *,
    uris: Sequence[str],
    aliases: Sequence[str],
    outlets: dict[str, list[str]],
    now: datetime,
) -> None:
    """Make the DAG's consumer and producer references what its latest parse says."""
    outlet_uris = {u for us in outlets.values() for u in us}
    ids = ensure_datasets(session, [*uris, *outlet_uris], now=now)
    alias_ids = ensure_aliases(session, aliases)
    for model in (
        DagScheduleDatasetReference,
        DagScheduleDatasetAliasReference,
        TaskOutletDatasetReference,
    ):
        session.execute(delete(model).where(model.dag_id == dag_id))
    refs = [{"dataset_id": ids[u], "dag_id": dag_id, "created_at": now} for u in uris]
    alias_refs = [{"alias_id": alias_ids[a], "dag_id": dag_id, "created_at": now} for a in aliases]
    producers = [
        {"dataset_id": ids[u], "dag_id": dag_id, "task_id": task_id, "created_at": now}
        for task_id, task_uris in outlets.items()
        for u in task_uris
    ]
    for model, rows in (
        (DagScheduleDatasetReference, refs),
        (DagScheduleDatasetAliasReference, alias_refs),
        (TaskOutletDatasetReference, producers),
    ):
        if rows:
            session.execute(insert(model), rows)


def record_events(session: Session, events: Sequence[EventSpec], *, now: datetime) -> list[int]:
    """Write ``events`` and queue them for every consumer; returns the events' ids.

    A consumer is a DAG scheduled on the dataset, or on an alias that resolves to it.
    Its queue row is keyed by (dataset, consumer): a second event before the
    consumer's run adds no row, as in Airflow.
    """
    if not events:
        return []
    ids = ensure_datasets(session, [e.uri for e in events], now=now)
    alias_ids = ensure_aliases(session, [e.alias for e in events if e.alias])
    _insert_ignoring(
        session,
        table_of(DatasetAliasDataset),
        [{"alias_id": alias_ids[e.alias], "dataset_id": ids[e.uri]} for e in events if e.alias],
    )
    event_ids = []
    for e in events:
        result = session.execute(
            insert(DatasetEvent).values(
                dataset_id=ids[e.uri],
                extra=e.extra,
                source_dag_id=e.source_dag_id,
                source_task_id=e.source_task_id,
                source_run_id=e.source_run_id,
                source_map_index=e.source_map_index,
                source_alias_name=e.alias,
                timestamp=now,
            )
        )
        event_ids.append(inserted_id(result))
    _queue_for_consumers(session, sorted(set(ids.values())), now)
    return event_ids


def _queue_for_consumers(session: Session, dataset_ids: list[int], now: datetime) -> None:
    direct = select(DagScheduleDatasetReference.dataset_id, DagScheduleDatasetReference.dag_id)
    direct = direct.where(DagScheduleDatasetReference.dataset_id.in_(dataset_ids))
    through_alias = (
        select(DatasetAliasDataset.dataset_id, DagScheduleDatasetAliasReference.dag_id)
        .join(
            DagScheduleDatasetAliasReference,
            DagScheduleDatasetAliasReference.alias_id == DatasetAliasDataset.alias_id,
        )
        .where(DatasetAliasDataset.dataset_id.in_(dataset_ids))
    )
    pairs = set(session.execute(direct).all()) | set(session.execute(through_alias).all())
    rows = [
        {"dataset_id": d, "target_dag_id": dag_id, "created_at": now} for d, dag_id in sorted(pairs)
    ]
    table = table_of(DatasetDagRunQueue)
    if rows and session.get_bind().dialect.name == "postgresql":
        # ON CONFLICT DO NOTHING would not lock a row the scheduler is consuming: a
        # no-op update does, so the scheduler's delete waits for this event's commit
        # and its run sees the event (InnoDB's INSERT IGNORE locks the duplicate itself)
        keep = postgresql.insert(table).on_conflict_do_update(
            index_elements=["dataset_id", "target_dag_id"],
            set_={"created_at": table.c.created_at},
        )
        session.execute(keep, rows)
    else:
        _insert_ignoring(session, table, rows)


@dataclass(frozen=True)
class QueuedConsumer:
    """A consumer with queued events: the URIs ready for it and when each was queued."""

    dag_id: str
    fingerprint: str | None
    queued: dict[str, datetime]
    dataset_ids: dict[str, int]


_QUEUED = (
    select(
        DatasetDagRunQueue.target_dag_id,
        Dag.fingerprint,
        DatasetRow.uri,
        DatasetRow.id,
        DatasetDagRunQueue.created_at,
    )
    .join(Dag, Dag.dag_id == DatasetDagRunQueue.target_dag_id)
    .join(DatasetRow, DatasetRow.id == DatasetDagRunQueue.dataset_id)
    .where(Dag.is_active, Dag.is_paused.is_(False))
)


def queued_consumers(session: Session) -> list[QueuedConsumer]:
    """Every unpaused consumer with queued events, in one query whatever the DAG count."""
    by_dag: dict[str, QueuedConsumer] = {}
    for dag_id, fingerprint, uri, dataset_id, created_at in session.execute(_QUEUED):
        consumer = by_dag.setdefault(dag_id, QueuedConsumer(dag_id, fingerprint, {}, {}))
        consumer.queued[uri] = created_at
        consumer.dataset_ids[uri] = dataset_id
    return list(by_dag.values())


def alias_resolutions(session: Session, names: Iterable[str]) -> dict[str, list[str]]:
    """``alias name → URIs`` it has resolved to."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = session.execute(
        select(DatasetAliasRow.name, DatasetRow.uri)
        .join(DatasetAliasDataset, DatasetAliasDataset.alias_id == DatasetAliasRow.id)
        .join(DatasetRow, DatasetRow.id == DatasetAliasDataset.dataset_id)
        .where(DatasetAliasRow.name_hash.in_([key_hash(n) for n in wanted]))
    ).all()
    out: dict[str, list[str]] = defaultdict(list)
    for name, uri in rows:
        out[name].append(uri)
    return dict(out)


def consume_queue(session: Session, dag_id: str, dataset_ids: Iterable[int]) -> int:
    """Delete the consumer's queue rows for ``dataset_ids``; returns how many were there."""
    result = session.execute(
        delete(DatasetDagRunQueue).where(
            DatasetDagRunQueue.target_dag_id == dag_id,
            DatasetDagRunQueue.dataset_id.in_(list(dataset_ids)),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def read_events(
    session: Session,
    *,
    uri: str | None = None,
    alias: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Events as plain dicts, oldest first: of a dataset, emitted through an alias, or
    that triggered run ``dag_id``/``run_id``."""
    query = select(DatasetEvent, DatasetRow.uri).join(
        DatasetRow, DatasetRow.id == DatasetEvent.dataset_id
    )
    if uri is not None:
        query = query.where(DatasetRow.uri_hash == key_hash(uri))
    if alias is not None:
        query = query.where(DatasetEvent.source_alias_name == alias)
    if dag_id is not None:
        query = (
            query.join(DagRunDatasetEvent, DagRunDatasetEvent.event_id == DatasetEvent.id)
            .join(DagRun, DagRun.id == DagRunDatasetEvent.dag_run_id)
            .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
    order = (
        (DatasetEvent.timestamp.desc(), DatasetEvent.id.desc())
        if newest_first
        else (
            DatasetEvent.timestamp,
            DatasetEvent.id,
        )
    )
    rows = session.execute(query.order_by(*order).limit(limit))
    return [event_dict(event, event_uri) for event, event_uri in rows]


def event_dict(event: DatasetEvent, uri: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "uri": uri,
        "extra": event.extra or {},
        "timestamp": event.timestamp,
        "source_dag_id": event.source_dag_id,
        "source_task_id": event.source_task_id,
        "source_run_id": event.source_run_id,
        "source_map_index": event.source_map_index,
    }


def list_datasets(session: Session) -> list[dict[str, Any]]:
    """Every dataset with its consumers, producers, event count and latest event."""
    consumers: dict[int, list[str]] = defaultdict(list)
    for dataset_id, dag_id in session.execute(
        select(DagScheduleDatasetReference.dataset_id, DagScheduleDatasetReference.dag_id)
    ):
        consumers[dataset_id].append(dag_id)
    producers: dict[int, list[str]] = defaultdict(list)
    for dataset_id, dag_id, task_id in session.execute(
        select(
            TaskOutletDatasetReference.dataset_id,
            TaskOutletDatasetReference.dag_id,
            TaskOutletDatasetReference.task_id,
        )
    ):
        producers[dataset_id].append(f"{dag_id}.{task_id}")
    stats = {
        dataset_id: (count, latest)
        for dataset_id, count, latest in session.execute(
            select(
                DatasetEvent.dataset_id, func.count(), func.max(DatasetEvent.timestamp)
            ).group_by(DatasetEvent.dataset_id)
        )
    }
    rows = session.execute(select(DatasetRow.id, DatasetRow.uri).order_by(DatasetRow.uri)).all()
    return [
        {
            "uri": uri,
            "consumers": sorted(consumers[i]),
            "producers": sorted(producers[i]),
            "events": stats.get(i, (0, None))[0],
            "last_event": stats.get(i, (0, None))[1],
        }
        for i, uri in rows
    ]


def readiness_of(session: Session, dag_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """``dag_id → (datasets with a queued event, datasets it is scheduled on)`` for the
    consumers among ``dag_ids``: two queries whatever their number."""
    if not dag_ids:
        return {}
    totals = dict(
        session.execute(
            select(DagScheduleDatasetReference.dag_id, func.count())
            .where(DagScheduleDatasetReference.dag_id.in_(list(dag_ids)))
            .group_by(DagScheduleDatasetReference.dag_id)
        ).all()
    )
    ready = dict(
        session.execute(
            select(DatasetDagRunQueue.target_dag_id, func.count())
            .where(DatasetDagRunQueue.target_dag_id.in_(list(totals)))
            .group_by(DatasetDagRunQueue.target_dag_id)
        ).all()
    )
    return {dag_id: (int(ready.get(dag_id, 0)), int(total)) for dag_id, total in totals.items()}
