"""db clean purges finished history and never touches live runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cluster.metastore.audit import record_event
from cluster.metastore.cleanup import clean
from cluster.metastore.dataset_models import DagRunDatasetEvent, DatasetDagRunQueue, DatasetEvent
from cluster.metastore.datasets import EventSpec, record_events, sync_references
from cluster.metastore.models import DagRun, TaskInstance, TaskInstanceHistory, XCom

OLD = datetime(2024, 1, 1, tzinfo=UTC)
CUTOFF = datetime(2024, 6, 1, tzinfo=UTC)
RECENT = datetime(2024, 12, 1, tzinfo=UTC)


def populate(
    session: Session, add_run: Callable[..., DagRun], add_task: Callable[..., TaskInstance]
) -> None:
    add_run("d", "old_ok", state="success", end_date=OLD)
    add_run("d", "old_failed", state="failed", end_date=OLD)
    add_run("d", "old_running", state="running", end_date=OLD)
    add_run("d", "recent", state="success", end_date=RECENT)
    add_run("d", "marked_but_busy", state="success", end_date=OLD)
    for run_id in ("old_ok", "old_failed", "old_running", "recent"):
        add_task("t", run_id=run_id, state="success")
        session.add(XCom(dag_id="d", run_id=run_id, task_id="t", key="k", value="1"))
        session.add(
            TaskInstanceHistory(
                dag_id="d", run_id=run_id, task_id="t", try_number=1, state="failed"
            )
        )
    add_task("t", run_id="marked_but_busy", state="running")
    record_event("old", session=session, now=OLD)
    record_event("recent", session=session, now=RECENT)
    _dataset_events(session)
    session.flush()


def _dataset_events(session: Session) -> None:
    """An old event (queued for the consumer, and linked to the recent run) and a recent one."""
    sync_references(session, "consumer", uris=["s3://old", "s3://new"], aliases=[], outlets={},
                    now=OLD)  # fmt: skip
    (old_event,) = record_events(session, [EventSpec(uri="s3://old")], now=OLD)
    record_events(session, [EventSpec(uri="s3://new")], now=RECENT)
    recent = session.scalars(select(DagRun.id).where(DagRun.run_id == "recent")).one()
    session.add(DagRunDatasetEvent(dag_run_id=recent, event_id=old_event))


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


EXPECTED = {
    "dag_run": 2,
    "task_instance": 2,
    "task_instance_history": 2,
    "xcom": 2,
    "task_map": 0,
    "callback_request": 0,
    "audit_log": 1,
    "dataset_event": 1,
    "dataset_dag_run_queue": 1,
}


def test_dry_run_counts_without_deleting(
    session: Session, add_run: Callable[..., DagRun], add_task: Callable[..., TaskInstance]
) -> None:
    populate(session, add_run, add_task)
    assert clean(session=session, before=CUTOFF, dry_run=True) == EXPECTED
    assert count(session, DagRun) == 5 and count(session, XCom) == 4


def test_clean_deletes_finished_old_runs_only(
    session: Session, add_run: Callable[..., DagRun], add_task: Callable[..., TaskInstance]
) -> None:
    populate(session, add_run, add_task)
    assert clean(session=session, before=CUTOFF) == EXPECTED
    session.commit()
    left = set(session.scalars(select(DagRun.run_id)))
    assert left == {"old_running", "recent", "marked_but_busy"}
    assert count(session, TaskInstance) == 3
    assert count(session, XCom) == 2
    assert clean(session=session, before=CUTOFF + timedelta(days=1))["dag_run"] == 0
    assert [e.timestamp for e in session.scalars(select(DatasetEvent))] == [RECENT]
    queued = session.scalars(select(DatasetDagRunQueue.created_at)).all()
    assert queued == [RECENT] and count(session, DagRunDatasetEvent) == 0
