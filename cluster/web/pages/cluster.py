"""The cluster page: who leads the schedulers, and which processes are alive.

Read from ``scheduler_lease`` (the leader's host, pid, fencing epoch and heartbeat)
and the ``component`` rows every scheduler, webserver and worker refreshes; queue
depths and broker nodes from :func:`cluster.deploy.rabbitmq.read_status` when
``celery.broker_urls`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template

from cluster.deploy.rabbitmq import BrokerStatus, read_status
from cluster.metastore.components import ComponentRecord, list_components
from cluster.metastore.models import SchedulerLease
from cluster.web.context import db_session, web_context

bp = Blueprint("cluster", __name__)

#: a process whose heartbeat is older than this is shown as stale
STALE_SECONDS = 60.0


@dataclass(frozen=True)
class Process:
    record: ComponentRecord
    age: float

    @property
    def stale(self) -> bool:
        return self.age > STALE_SECONDS


@bp.get("/cluster")
def index() -> str:
    session = db_session()
    now = web_context().clock()
    lease = session.get(SchedulerLease, 1)
    processes: dict[str, list[Process]] = {"scheduler": [], "webserver": [], "worker": []}
    for record in list_components(session=session):
        age = (now - record.heartbeat_at).total_seconds()
        processes.setdefault(record.kind, []).append(Process(record, age))
    lease_age = (now - lease.heartbeat_at).total_seconds() if lease and lease.heartbeat_at else None
    celery = web_context().settings.celery
    broker: BrokerStatus | None = read_status(celery) if celery.broker_urls else None
    return render_template(
        "cluster.html",
        lease=lease,
        lease_age=lease_age,
        processes=processes,
        stale_seconds=STALE_SECONDS,
        broker=broker,
    )
