"""Recording tries that deferred: their trigger row and ``running → deferred`` together.

The pool's book records every ended try through :func:`record_ends`: the tries that
deferred go through :func:`cluster.metastore.triggers.defer_try` (one compare-and-set
each, with the trigger inserted in the same transaction, so a crash leaves either both
or neither), the others through :func:`cluster.execution.recording.record_many`
unchanged. A deferring try writes its XComs (a resumed method may pull them) but no
history row: the try is not over, it resumes later under the same number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cluster.execution.recording import FinishedTry, drop_xcoms, record_many
from cluster.metastore.models import XCOM
from cluster.metastore.triggers import Deferral, defer_try
from cluster.states import TaskState


def record_ends(
    session: Session,
    tries: Sequence[FinishedTry],
    *,
    fernet: Callable[[], MultiFernet],
    optimistic: bool = False,
) -> list[TaskState | None]:
    """Record ended tries in the caller's transaction, in order; ``None`` for a try that
    lost its claim (see :func:`~cluster.execution.recording.record_many`).

    :param fernet: the cluster's cipher, asked for only when a try deferred (trigger
        kwargs are encrypted at rest).
    """
    deferring = {i for i, f in enumerate(tries) if f.state is TaskState.DEFERRED}
    if not deferring:
        return record_many(session, tries, optimistic=optimistic)  # the common case
    rest = [f for f in tries if f.state is not TaskState.DEFERRED]
    states = iter(record_many(session, rest, optimistic=optimistic) if rest else [])
    cipher = fernet()
    return [
        _defer(session, f, cipher) if i in deferring else next(states) for i, f in enumerate(tries)
    ]


def _defer(session: Session, finished: FinishedTry, fernet: MultiFernet) -> TaskState | None:
    spec: dict[str, Any] = finished.outcome.deferral or {}
    claimed = finished.claimed
    deferral = Deferral(
        classpath=str(spec["classpath"]),
        trigger_kwargs=spec.get("kwargs") or {},
        next_method=str(spec["method"]),
        next_kwargs=spec.get("next_kwargs") or {},
        timeout_at=timeout_at(spec, claimed.start_date, finished.end),
    )
    trigger_id = defer_try(
        session, claimed.key, claimed.try_number, deferral, fernet=fernet, now=finished.end
    )
    if trigger_id is None:
        return None
    rows = [
        {
            "dag_id": claimed.key.dag_id,
            "run_id": claimed.key.run_id,
            "task_id": claimed.key.task_id,
            "map_index": claimed.key.map_index,
            "key": key,
            "value": value,
            "timestamp": finished.end,
        }
        for key, value in dict(finished.outcome.xcoms).items()
    ]
    if rows:
        drop_xcoms(session, claimed.key, [str(row["key"]) for row in rows])
        session.connection().execute(insert(XCOM), rows)
    return TaskState.DEFERRED


def timeout_at(spec: dict[str, Any], started: datetime, now: datetime) -> datetime | None:
    """When the scheduler fails the deferred try: the deferral's ``timeout`` from now,
    or the task's ``execution_timeout`` from the try's start if sooner (Airflow's rule)."""
    candidates = []
    if spec.get("timeout") is not None:
        candidates.append(now + timedelta(seconds=float(spec["timeout"])))
    if spec.get("execution_timeout"):
        candidates.append(started + timedelta(seconds=float(spec["execution_timeout"])))
    return min(candidates) if candidates else None
