"""The SLA check, run on the DAG processor's pass (never in the scheduling loop).

Airflow 2 checks SLAs where it parses DAG files; Tradewind does it on the same pass,
from the serialized DAGs (no DAG file is imported for it): for each active DAG with a
task ``sla``, :func:`cluster.policy.slas.missed_dates` says which misses to record,
they are inserted unless present, and when this check inserted any, one
``sla_miss_callback`` request is written in the same transaction. The callback runner
(:mod:`cluster.dagfiles.callbacks`) then calls the DAG's ``sla_miss_callback`` and
emails the tasks' ``email`` once, as Airflow does. A check interrupted by a leader's
death leaves nothing half done: the next leader's check inserts what is missing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore import slas
from cluster.metastore.callbacks import request_sla_callback
from cluster.metastore.engine import transaction
from cluster.policy.slas import missed_dates
from cluster.sdk.timetable_base import DataInterval

log = logging.getLogger(__name__)

#: how often the processor's pass checks SLAs (Airflow: each time it parses the file)
CHECK_INTERVAL = 10.0


class SlaChecker:
    """Records SLA misses of every DAG with SLAs, at most every ``interval`` seconds."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._interval = timedelta(seconds=interval)
        self._last: datetime | None = None

    def check_if_due(self) -> int:
        """:meth:`check` when ``interval`` passed since the last one; else 0."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return 0
        self._last = now
        return self.check()

    def check(self) -> int:
        """Record the misses of every DAG with SLAs; returns how many were new."""
        now = self._clock()
        recorded = 0
        for _dag_id, data in transaction(self._sessions, slas.dags_with_slas):
            dag = SerializedDag.from_json(data)
            recorded += transaction(self._sessions, functools.partial(_check, dag=dag, now=now))
        return recorded


def _check(session: Session, *, dag: SerializedDag, now: datetime) -> int:
    with_sla = {t.task_id: t.sla for t in dag.tasks.values() if t.sla}
    if not with_sla:
        return 0
    latest = slas.latest_done(session, dag.dag_id, list(with_sla))
    recorded = slas.recorded_dates(session, dag.dag_id)
    misses = [
        (task_id, when)
        for task_id, (start, end) in sorted(latest.items())
        for when in missed_dates(
            dag.timetable,
            DataInterval(start, end),
            timedelta(seconds=with_sla[task_id] or 0),
            now=now,
            recorded=recorded.get(task_id, set()),
        )
    ]
    inserted = slas.record_misses(session, dag.dag_id, misses, now=now)
    if inserted:
        log.info("SLA missed: %d new misses of DAG '%s'", inserted, dag.dag_id)
        request_sla_callback(session, dag.dag_id, now=now)
    return inserted
