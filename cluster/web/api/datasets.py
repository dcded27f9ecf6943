"""``/datasets``: datasets, their events, posting an external event, and the queue of
events waiting for a consumer (the shapes of Airflow 2.10's v1 API)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Select, delete, select

from cluster.errors import NotFoundError, UsageError
from cluster.metastore.dataset_models import (
    DagRunDatasetEvent,
    DagScheduleDatasetReference,
    DatasetDagRunQueue,
    DatasetEvent,
    DatasetRow,
    TaskOutletDatasetReference,
)
from cluster.metastore.datasets import EventSpec, key_hash, record_events
from cluster.metastore.models import DagRun
from cluster.sdk.datasets import sanitize_uri
from cluster.web.api.lookups import audit_api, count_matches
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import Page
from cluster.web.context import db_session

routes = Routes("Dataset")


class BeforeQuery(BaseModel):
    before: AwareDatetime | None = Field(None, description="Only events queued before this time.")


class ConsumingDag(BaseModel):
    dag_id: str
    created_at: datetime
    updated_at: datetime


class ProducingTask(BaseModel):
    dag_id: str
    task_id: str
    created_at: datetime
    updated_at: datetime


class Dataset(BaseModel):
    id: int
    uri: str
    extra: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    consuming_dags: list[ConsumingDag] = []
    producing_tasks: list[ProducingTask] = []


class DatasetCollection(BaseModel):
    datasets: list[Dataset]
    total_entries: int


class BasicDagRun(BaseModel):
    run_id: str
    dag_id: str
    logical_date: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    state: str


class DatasetEventOut(BaseModel):
    id: int
    dataset_id: int
    dataset_uri: str
    extra: dict[str, Any] | None = None
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = None
    created_dagruns: list[BasicDagRun] = []
    timestamp: datetime


class DatasetEventCollection(BaseModel):
    dataset_events: list[DatasetEventOut]
    total_entries: int


class CreateDatasetEvent(BaseModel):
    dataset_uri: str
    extra: dict[str, Any] | None = None


class QueuedEvent(BaseModel):
    uri: str
    dag_id: str
    created_at: datetime


class QueuedEventCollection(BaseModel):
    datasets: list[QueuedEvent]
    total_entries: int


class DatasetQuery(Page):
    order_by: str = Field("id", description="id, uri, created_at or updated_at; '-' reverses.")
    uri_pattern: str | None = Field(None, description="Only URIs containing this text.")
    dag_ids: str | None = Field(None, description="Comma-separated consumers or producers.")


class EventQuery(Page):
    order_by: str = Field("timestamp", description="timestamp or id; '-' reverses.")
    dataset_id: int | None = None
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = None


def _order(column_of: dict[str, Any], order_by: str) -> Any:
    column = column_of.get(order_by.lstrip("-"), next(iter(column_of.values())))
    return column.desc() if order_by.startswith("-") else column


def _dataset(row: DatasetRow) -> Dataset:
    session = db_session()
    consumers = session.scalars(
        select(DagScheduleDatasetReference).where(DagScheduleDatasetReference.dataset_id == row.id)
    ).all()
    producers = session.scalars(
        select(TaskOutletDatasetReference).where(TaskOutletDatasetReference.dataset_id == row.id)
    ).all()
    return Dataset(
        id=row.id,
        uri=row.uri,
        extra=row.extra,
        created_at=row.created_at,
        updated_at=row.updated_at,
        consuming_dags=[
            ConsumingDag(dag_id=c.dag_id, created_at=c.created_at, updated_at=c.created_at)
            for c in consumers
        ],
        producing_tasks=[
            ProducingTask(
                dag_id=p.dag_id, task_id=p.task_id, created_at=p.created_at, updated_at=p.created_at
            )
            for p in producers
        ],
    )


@routes.operation("/datasets", "GET", query=DatasetQuery, response=DatasetCollection)
def get_datasets(*, query: DatasetQuery) -> DatasetCollection:
    """List datasets with their consumers and producers."""
    statement = select(DatasetRow)
    if query.uri_pattern:
        statement = statement.where(DatasetRow.uri.contains(query.uri_pattern))
    if query.dag_ids:
        dag_ids = [d.strip() for d in query.dag_ids.split(",") if d.strip()]
        statement = statement.where(
            DatasetRow.id.in_(
                select(DagScheduleDatasetReference.dataset_id)
                .where(DagScheduleDatasetReference.dag_id.in_(dag_ids))
                .union(
                    select(TaskOutletDatasetReference.dataset_id).where(
                        TaskOutletDatasetReference.dag_id.in_(dag_ids)
                    )
                )
            )
        )
    total = count_matches(db_session(), statement)
    columns = {
        "id": DatasetRow.id,
        "uri": DatasetRow.uri,
        "created_at": DatasetRow.created_at,
        "updated_at": DatasetRow.updated_at,
    }
    rows = db_session().scalars(
        statement.order_by(_order(columns, query.order_by)).limit(query.limit).offset(query.offset)
    )
    return DatasetCollection(datasets=[_dataset(r) for r in rows], total_entries=total)


def _find(uri: str) -> DatasetRow:
    row = db_session().scalar(select(DatasetRow).where(DatasetRow.uri_hash == key_hash(uri)))
    if row is None:
        raise NotFoundError(f"The Dataset with uri: `{uri}` was not found")
    return row


@routes.operation("/datasets/<path:uri>", "GET", response=Dataset)
def get_dataset(uri: str) -> Dataset:
    """One dataset by URI."""
    return _dataset(_find(uri))


def _runs_of(event_id: int) -> list[BasicDagRun]:
    runs = db_session().scalars(
        select(DagRun)
        .join(DagRunDatasetEvent, DagRunDatasetEvent.dag_run_id == DagRun.id)
        .where(DagRunDatasetEvent.event_id == event_id)
    )
    return [
        BasicDagRun(
            run_id=r.run_id,
            dag_id=r.dag_id,
            logical_date=r.logical_date,
            start_date=r.start_date,
            end_date=r.end_date,
            data_interval_start=r.data_interval_start,
            data_interval_end=r.data_interval_end,
            state=r.state,
        )
        for r in runs
    ]


def _event(event: DatasetEvent, uri: str) -> DatasetEventOut:
    return DatasetEventOut(
        id=event.id,
        dataset_id=event.dataset_id,
        dataset_uri=uri,
        extra=event.extra,
        source_dag_id=event.source_dag_id,
        source_task_id=event.source_task_id,
        source_run_id=event.source_run_id,
        source_map_index=event.source_map_index,
        created_dagruns=_runs_of(event.id),
        timestamp=event.timestamp,
    )


_EVENTS = cast(
    "Select[Any]",
    select(DatasetEvent, DatasetRow.uri).join(DatasetRow, DatasetRow.id == DatasetEvent.dataset_id),
)


@routes.operation("/datasets/events", "GET", query=EventQuery, response=DatasetEventCollection)
def get_dataset_events(*, query: EventQuery) -> DatasetEventCollection:
    """List dataset events, filtered by dataset or source."""
    statement = _EVENTS
    for name in ("dataset_id", "source_dag_id", "source_task_id", "source_run_id"):
        if getattr(query, name) is not None:
            statement = statement.where(getattr(DatasetEvent, name) == getattr(query, name))
    if query.source_map_index is not None:
        statement = statement.where(DatasetEvent.source_map_index == query.source_map_index)
    session = db_session()
    total = count_matches(session, statement)
    columns = {"timestamp": DatasetEvent.timestamp, "id": DatasetEvent.id}
    rows = session.execute(
        statement.order_by(_order(columns, query.order_by)).limit(query.limit).offset(query.offset)
    ).all()
    return DatasetEventCollection(
        dataset_events=[_event(e, uri) for e, uri in rows], total_entries=total
    )


@routes.operation("/datasets/events", "POST", body=CreateDatasetEvent, response=DatasetEventOut)
def create_dataset_event(*, body: CreateDatasetEvent) -> DatasetEventOut:
    """Record an external event of a known dataset; its consumers are queued as for a
    task's event (Airflow's ``from_rest_api`` extra marks it)."""
    try:
        uri = sanitize_uri(body.dataset_uri)
    except ValueError as exc:  # an empty, blank or non-ASCII URI: the client's mistake
        raise UsageError(f"dataset_uri: {exc}") from exc
    _find(uri)
    session = db_session()
    extra = {**(body.extra or {}), "from_rest_api": True}
    (event_id,) = record_events(session, [EventSpec(uri=uri, extra=extra)], now=datetime.now(UTC))
    audit_api("datasets.create_event", session=session, uri=uri)
    event = session.get(DatasetEvent, event_id)
    if event is None:
        raise NotFoundError(f"dataset event {event_id} vanished")
    return _event(event, uri)


@routes.operation(
    "/dags/<dag_id>/dagRuns/<dag_run_id>/upstreamDatasetEvents",
    "GET",
    response=DatasetEventCollection,
)
def get_upstream_dataset_events(dag_id: str, dag_run_id: str) -> DatasetEventCollection:
    """The events that triggered a run."""
    session = db_session()
    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == dag_run_id))
    if run is None:
        raise NotFoundError(
            f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{dag_run_id}' not found"
        )
    rows = session.execute(
        _EVENTS.join(DagRunDatasetEvent, DagRunDatasetEvent.event_id == DatasetEvent.id)
        .where(DagRunDatasetEvent.dag_run_id == run.id)
        .order_by(DatasetEvent.timestamp)
    ).all()
    events = [_event(e, uri) for e, uri in rows]
    return DatasetEventCollection(dataset_events=events, total_entries=len(events))


# --- queued events ----------------------------------------------------------------------

_QUEUED = select(DatasetDagRunQueue, DatasetRow.uri).join(
    DatasetRow, DatasetRow.id == DatasetDagRunQueue.dataset_id
)


def _queued(
    dag_id: str | None, uri: str | None, before: datetime | None = None
) -> QueuedEventCollection:
    statement = _QUEUED
    if before is not None:
        statement = statement.where(DatasetDagRunQueue.created_at < before)
    if dag_id is not None:
        statement = statement.where(DatasetDagRunQueue.target_dag_id == dag_id)
    if uri is not None:
        statement = statement.where(DatasetRow.uri_hash == key_hash(uri))
    rows = db_session().execute(statement.order_by(DatasetDagRunQueue.created_at)).all()
    if not rows:
        raise NotFoundError(f"Queue event with dag_id: `{dag_id}` and uri: `{uri}` was not found")
    items = [QueuedEvent(uri=u, dag_id=q.target_dag_id, created_at=q.created_at) for q, u in rows]
    return QueuedEventCollection(datasets=items, total_entries=len(items))


def _delete_queued(dag_id: str | None, uri: str | None, before: datetime | None = None) -> None:
    _queued(dag_id, uri, before)  # 404 when there is nothing to delete
    statement = delete(DatasetDagRunQueue)
    if before is not None:
        statement = statement.where(DatasetDagRunQueue.created_at < before)
    if dag_id is not None:
        statement = statement.where(DatasetDagRunQueue.target_dag_id == dag_id)
    if uri is not None:
        statement = statement.where(DatasetDagRunQueue.dataset_id == _find(uri).id)
    db_session().execute(statement)


@routes.operation(
    "/dags/<dag_id>/datasets/queuedEvent", "GET", query=BeforeQuery, response=QueuedEventCollection
)
def get_dag_dataset_queued_events(dag_id: str, *, query: BeforeQuery) -> QueuedEventCollection:
    """The events queued for a consumer."""
    return _queued(dag_id, None, query.before)


@routes.operation("/dags/<dag_id>/datasets/queuedEvent", "DELETE", query=BeforeQuery, status=204)
def delete_dag_dataset_queued_events(dag_id: str, *, query: BeforeQuery) -> None:
    """Drop the events queued for a consumer."""
    _delete_queued(dag_id, None, query.before)


@routes.operation(
    "/dags/<dag_id>/datasets/queuedEvent/<path:uri>",
    "GET",
    query=BeforeQuery,
    response=QueuedEventCollection,
)
def get_dag_dataset_queued_event(
    dag_id: str, uri: str, *, query: BeforeQuery
) -> QueuedEventCollection:
    """The event of one dataset queued for a consumer."""
    return _queued(dag_id, uri, query.before)


@routes.operation(
    "/dags/<dag_id>/datasets/queuedEvent/<path:uri>", "DELETE", query=BeforeQuery, status=204
)
def delete_dag_dataset_queued_event(dag_id: str, uri: str, *, query: BeforeQuery) -> None:
    """Drop the event of one dataset queued for a consumer."""
    _delete_queued(dag_id, uri, query.before)


@routes.operation(
    "/datasets/queuedEvent/<path:uri>", "GET", query=BeforeQuery, response=QueuedEventCollection
)
def get_dataset_queued_events(uri: str, *, query: BeforeQuery) -> QueuedEventCollection:
    """Every consumer's queued event of one dataset."""
    return _queued(None, uri, query.before)


@routes.operation("/datasets/queuedEvent/<path:uri>", "DELETE", query=BeforeQuery, status=204)
def delete_dataset_queued_events(uri: str, *, query: BeforeQuery) -> None:
    """Drop every consumer's queued event of one dataset."""
    _delete_queued(None, uri, query.before)
