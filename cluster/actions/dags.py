"""Runs and DAGs: trigger, backfill, pause, delete.

Each writes an audit row and leaves the commit to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cluster.actions.base import Actor, load_dag
from cluster.actions.clearing import clear
from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore import audit
from cluster.metastore.cleanup import delete_runs
from cluster.metastore.models import Dag, DagCode, DagRun, ImportErrorRow, SerializedDagRow
from cluster.sdk.params import validate_params
from cluster.sdk.timetables import TimeRestriction, timetable_from_dict
from cluster.states import DagRunState


def trigger(
    session: Session,
    dag_id: str,
    *,
    actor: Actor,
    conf: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    logical_date: datetime | None = None,
    now: datetime | None = None,
    data_interval: tuple[datetime, datetime] | None = None,
) -> DagRun:
    """Create a manual run (state ``queued``) with validated params, like ``airflow dags trigger``.

    :raises ParamValidationError: when ``conf`` breaks the DAG's ``Param`` declarations.
    :raises AlreadyExistsError: when the run id is taken.
    """
    dag = load_dag(session, dag_id)
    now = now or datetime.now(UTC)
    when = logical_date or now
    if when.tzinfo is None:
        raise UsageError("the logical date needs a time zone (e.g. 2024-01-01T00:00:00+00:00)")
    checked = validate_params(dag.params, dict(conf or {}))
    run_id = run_id or f"manual__{when.isoformat()}"
    _check_run_id(run_id)
    if session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)):
        raise AlreadyExistsError(f"DAG run '{run_id}' of '{dag_id}' already exists")
    start, end = data_interval or _manual_interval(dag.timetable, when)
    if start.tzinfo is None or end.tzinfo is None or start > end:
        raise UsageError("the data interval needs a time zone and a start not after its end")
    run = DagRun(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=when,
        data_interval_start=start,
        data_interval_end=end,
        run_type="manual",
        state=DagRunState.QUEUED,
        conf=checked,
        queued_at=now,
    )
    session.add(run)
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.trigger",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_id,
        extra={"conf": checked},
    )
    return run


def _manual_interval(timetable: dict[str, Any], when: datetime) -> tuple[datetime, datetime]:
    interval = timetable_from_dict(timetable).infer_manual_data_interval(run_after=when)
    return interval.start, interval.end


def _check_run_id(run_id: str) -> None:
    if not run_id or len(run_id) > 250 or not re.fullmatch(r"[A-Za-z0-9_.~:+\-]+", run_id):
        raise UsageError(
            f"invalid run id {run_id!r}: use letters, digits and _ . ~ : + - (at most 250)"
        )


def backfill(
    session: Session,
    dag_id: str,
    *,
    start: datetime,
    end: datetime,
    actor: Actor,
    reset_failed: bool = False,
    now: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """Create ``backfill`` runs for every interval of the DAG's timetable from ``start`` to ``end``.

    Intervals that already have a run are left alone, unless the run failed and
    ``reset_failed`` is set: then its failed instances are cleared. New runs get ``conf``
    as given (Airflow's ``backfill -c``). Returns the run ids created and the run ids cleared.
    """
    dag = load_dag(session, dag_id)
    timetable = timetable_from_dict(dag.timetable)
    if not timetable.periodic:
        raise UsageError(
            f"DAG '{dag_id}' has no periodic schedule ({dag.schedule}): nothing to backfill"
        )
    now = now or datetime.now(UTC)
    existing = {
        r.logical_date: r
        for r in session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id, DagRun.logical_date >= start, DagRun.logical_date <= end
            )
        )
    }
    created: list[str] = []
    reset: list[str] = []
    restriction = TimeRestriction(start, end, True)
    last = None
    while (
        info := timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=max(now, end)
        )
    ) is not None:
        last = info.data_interval
        if info.logical_date > end:
            break
        run = existing.get(info.logical_date)
        if run is None:
            run_id = f"backfill__{info.logical_date.isoformat()}"
            session.add(
                DagRun(
                    dag_id=dag_id,
                    run_id=run_id,
                    logical_date=info.logical_date,
                    data_interval_start=info.data_interval.start,
                    data_interval_end=info.data_interval.end,
                    run_type="backfill",
                    state=DagRunState.QUEUED,
                    conf=dict(conf or {}),
                    queued_at=now,
                )
            )
            created.append(run_id)
        elif reset_failed and run.state == DagRunState.FAILED:
            clear(session, dag_id, [run.run_id], set(dag.tasks), actor=actor, only_failed=True)
            reset.append(run.run_id)
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.backfill",
        username=actor.username,
        dag_id=dag_id,
        extra={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "created": len(created),
            "reset": len(reset),
        },
    )
    return created, reset


def set_paused(session: Session, dag_id: str, paused: bool, *, actor: Actor) -> None:
    """Pause or unpause a DAG; a paused DAG gets no new scheduled runs or tasks queued."""
    result = session.execute(update(Dag).where(Dag.dag_id == dag_id).values(is_paused=paused))
    if not getattr(result, "rowcount", 0):
        raise NotFoundError(f"DAG '{dag_id}' not found")
    event = "pause" if paused else "unpause"
    audit.record_event(
        session=session,
        event=f"{actor.source}.dags.{event}",
        username=actor.username,
        dag_id=dag_id,
    )


def delete_run(session: Session, dag_id: str, run_id: str, *, actor: Actor) -> None:
    """Delete one run with its task instances, history and XComs."""
    if not session.scalar(
        select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ):
        raise NotFoundError(f"DAG run '{run_id}' of '{dag_id}' not found")
    delete_runs(session, dag_id, [run_id])
    audit.record_event(
        session=session,
        event=f"{actor.source}.dag_runs.delete",
        username=actor.username,
        dag_id=dag_id,
        run_id=run_id,
    )


def delete_dag(session: Session, dag_id: str, *, actor: Actor) -> int:
    """Delete every record of a DAG (its file stays; the next parse brings the DAG back)."""
    row = session.get(Dag, dag_id)
    if row is None:
        raise NotFoundError(f"DAG '{dag_id}' not found")
    run_ids = list(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))
    delete_runs(session, dag_id, run_ids)
    session.execute(delete(SerializedDagRow).where(SerializedDagRow.dag_id == dag_id))
    session.execute(delete(Dag).where(Dag.dag_id == dag_id))
    others = session.scalar(select(Dag.dag_id).where(Dag.fileloc == row.fileloc).limit(1))
    if others is None:
        session.execute(delete(DagCode).where(DagCode.fileloc == row.fileloc))
        session.execute(delete(ImportErrorRow).where(ImportErrorRow.filename == row.fileloc))
    audit.record_event(
        session=session, event=f"{actor.source}.dags.delete", username=actor.username, dag_id=dag_id
    )
    return len(run_ids)
