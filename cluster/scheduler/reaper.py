"""Zombies and instances queued too long.

A running instance whose heartbeat is older than ``scheduler.zombie_threshold`` lost
its worker (killed, partitioned, machine gone): it fails, or goes up for retry, exactly
as if the try had failed. An instance queued longer than ``scheduler.queued_timeout``
(its message lost with a broker node, a worker that took it and died before claiming)
goes back to ``scheduled`` to be sent again; its next try has a new number, so the
old message can no longer be claimed, and it does not count against its retries.
A deferred try whose ``trigger_timeout`` passed goes to a worker to fail there
(Airflow's ``check_trigger_timeouts``), at the reaper's pace, not every iteration.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedTask
from cluster.metastore import triggers
from cluster.metastore.history import write_history
from cluster.metastore.models import TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.policy.retries import next_try_at
from cluster.scheduler.dagcache import DagCache
from cluster.states import TaskState

log = logging.getLogger(__name__)


def reap(
    session: Session,
    dags: DagCache,
    *,
    now: datetime,
    zombie_threshold: float,
    queued_timeout: float,
) -> tuple[int, int]:
    """Handle zombies, stale queued instances and deferred tries whose trigger timed
    out (one indexed UPDATE over ``deferred`` rows only); returns ``(zombies, re-sent)``."""
    timed_out = triggers.time_out(session, now=now)
    if timed_out:
        log.info("Timed out %d deferred tasks without fired triggers", timed_out)
    return (
        _reap_zombies(session, dags, now=now, threshold=zombie_threshold),
        _requeue_stale(session, now=now, timeout=queued_timeout),
    )


def _reap_zombies(session: Session, dags: DagCache, *, now: datetime, threshold: float) -> int:
    stale = session.scalars(
        select(TaskInstance).where(
            TaskInstance.state == TaskState.RUNNING,
            TaskInstance.heartbeat_at < now - timedelta(seconds=threshold),
        )
    ).all()
    reaped = 0
    for ti in stale:
        key = TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        retry = ti.try_number <= ti.max_tries
        target = TaskState.UP_FOR_RETRY if retry else TaskState.FAILED
        spec = _task_spec(session, dags, ti)
        values = {
            "end_date": now,
            "next_try_at": next_try_at(spec, ti.try_number, now) if retry else None,
        }
        if set_task_state(
            session,
            key,
            target,
            expected=[TaskState.RUNNING],
            try_number=ti.try_number,
            values=values,
        ):
            write_history(
                session,
                key,
                ti.try_number,
                target,
                ti.start_date,
                now,
                hostname=ti.hostname,
                pid=ti.pid,
                operator=ti.operator,
            )
            log.warning(
                "zombie %s try %s (no heartbeat since %s) → %s",
                key,
                ti.try_number,
                ti.heartbeat_at,
                target,
            )
            reaped += 1
    return reaped


def _requeue_stale(session: Session, *, now: datetime, timeout: float) -> int:
    stale = session.scalars(
        select(TaskInstance).where(
            TaskInstance.state == TaskState.QUEUED,
            TaskInstance.queued_at < now - timedelta(seconds=timeout),
        )
    ).all()
    sent = 0
    for ti in stale:
        key = TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        if set_task_state(
            session,
            key,
            TaskState.SCHEDULED,
            expected=[TaskState.QUEUED],
            try_number=ti.try_number,
            values={"max_tries": ti.max_tries + 1},
        ):
            log.warning("%s queued since %s: sending it again", key, ti.queued_at)
            sent += 1
    return sent


def _task_spec(session: Session, dags: DagCache, ti: TaskInstance) -> SerializedTask:
    dag = dags.get(session, ti.dag_id)
    if dag is not None and ti.task_id in dag.tasks:
        return dag.tasks[ti.task_id]
    return SerializedTask(task_id=ti.task_id, operator=ti.operator or "?")
