"""The cluster page: who leads the schedulers (and who led before), and which processes live.

Read from ``scheduler_lease`` (the leader's host, pid, fencing epoch and heartbeat),
the ``scheduler_leader`` audit events each new epoch writes (the leader history), and
the ``component`` rows every scheduler, webserver, worker and triggerer (and any other
kind) refreshes, a triggerer's with how many triggers it runs of its capacity; queue depths and broker nodes from
:func:`cluster.deploy.rabbitmq.read_status` when ``celery.broker_urls`` is set. The
heartbeat ages count on by themselves in the browser (``ages.js``); without script
they are the ages when the page was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template

from cluster.deploy.rabbitmq import BrokerStatus, read_status
from cluster.metastore.audit import LEADER_EVENT, list_events
from cluster.metastore.components import ComponentRecord, list_components
from cluster.metastore.models import SchedulerLease
from cluster.web.context import db_session, web_context

bp = Blueprint("cluster", __name__)

#: a process whose heartbeat is older than this is shown as stale
STALE_SECONDS = 60.0
#: the kinds always shown, even with none registered, in this order; others follow
KNOWN_KINDS = ("scheduler", "webserver", "worker", "triggerer")
#: leaders the history lists
LEADER_HISTORY = 20


@dataclass(frozen=True)
class Process:
    record: ComponentRecord
    age: float

    @property
    def stale(self) -> bool:
        return self.age > STALE_SECONDS


@dataclass(frozen=True)
class PastLeader:
    epoch: Any
    host: Any
    pid: Any
    since: datetime


def kind_title(kind: str) -> str:
    """``scheduler`` → ``Schedulers``; any other kind is named the same way."""
    return kind.replace("_", " ").capitalize() + "s"


def group_processes(records: list[ComponentRecord], now: datetime) -> dict[str, list[Process]]:
    """Processes by kind: the known kinds first (even empty), then any other, by name."""
    processes: dict[str, list[Process]] = {kind: [] for kind in KNOWN_KINDS}
    others: dict[str, list[Process]] = {}
    for record in records:
        age = (now - record.heartbeat_at).total_seconds()
        (processes if record.kind in processes else others).setdefault(record.kind, []).append(
            Process(record, age)
        )
    return processes | dict(sorted(others.items()))


def leader_history() -> list[PastLeader]:
    history = []
    for event in list_events(session=db_session(), event=LEADER_EVENT, limit=LEADER_HISTORY):
        extra = event.extra if isinstance(event.extra, dict) else {}
        history.append(
            PastLeader(extra.get("epoch"), extra.get("host"), extra.get("pid"), event.ts)
        )
    return history


@bp.get("/cluster")
def index() -> str:
    session = db_session()
    now = web_context().clock()
    lease = session.get(SchedulerLease, 1)
    processes = group_processes(list_components(session=session), now)
    lease_age = (now - lease.heartbeat_at).total_seconds() if lease and lease.heartbeat_at else None
    celery = web_context().settings.celery
    broker: BrokerStatus | None = read_status(celery) if celery.broker_urls else None
    return render_template(
        "cluster.html",
        lease=lease,
        lease_age=lease_age,
        history=leader_history(),
        processes=processes,
        titles={kind: kind_title(kind) for kind in processes},
        stale_seconds=STALE_SECONDS,
        broker=broker,
        now=now,
    )
