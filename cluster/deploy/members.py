"""Who is in the cluster right now: schedulers and their roles, webservers, workers, triggerers.

Each process beats its own ``component`` row. A scheduler's role is not what it says of
itself (a paused old leader may still believe it leads) but what the metastore says:
the leader is the process holding the newest fencing epoch in ``scheduler_lease`` while
its heartbeat is fresh. ZooKeeper's view of the election is shown beside it. A triggerer
is down by the rule the other triggerers take its triggers over by: no heartbeat for
``triggerer.health_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.metastore.components import ComponentRecord, list_components
from cluster.metastore.heartbeats import WEBSERVER_BEAT_SECONDS
from cluster.metastore.models import SchedulerLease

#: beats a process may miss before it counts as down
MISSED_BEATS = 3


@dataclass(frozen=True)
class ElectionView:
    """ZooKeeper's election contenders in order (the first holds it), if it could be read."""

    reachable: bool
    contenders: tuple[str, ...] = ()
    error: str = ""

    @property
    def holder(self) -> str | None:
        return self.contenders[0] if self.contenders else None


def read_election(settings: Settings, *, timeout: float = 3.0) -> ElectionView | None:
    """The election as ZooKeeper sees it; ``None`` when ``ha.election`` is not zookeeper."""
    if settings.ha.election != "zookeeper":
        return None
    client = KazooClient(hosts=",".join(settings.ha.zookeeper_hosts), timeout=timeout)
    try:
        client.start(timeout=timeout)
        contenders = client.Election(settings.ha.election_path).contenders()
    except (KazooException, KazooTimeoutError) as exc:
        return ElectionView(reachable=False, error=str(exc) or type(exc).__name__)
    finally:
        client.stop()
        client.close()
    return ElectionView(reachable=True, contenders=tuple(str(c) for c in contenders))


def cluster_members(
    session: Session, settings: Settings, *, now: datetime, election: ElectionView | None
) -> dict[str, Any]:
    """``{"schedulers": [...], "webservers": [...], "workers": [...], "triggerers": [...],
    "election": {...}}``."""
    lease = session.get(SchedulerLease, 1)
    records = [r for r in list_components(session=session) if r.state != "stopped"]
    scheduler_fresh = timedelta(seconds=MISSED_BEATS * settings.scheduler.heartbeat_interval + 1)
    other_fresh = timedelta(seconds=MISSED_BEATS * WEBSERVER_BEAT_SECONDS + 1)
    triggerer_fresh = timedelta(seconds=settings.triggerer.health_timeout)
    schedulers = [
        _scheduler(r, lease, alive=now - r.heartbeat_at <= scheduler_fresh)
        for r in records
        if r.kind == "scheduler"
    ]
    return {
        "schedulers": sorted(
            schedulers, key=lambda s: (s["role"] != "leader", s["host"], s["pid"])
        ),
        "webservers": [
            _member(r, now - r.heartbeat_at <= other_fresh)
            for r in records
            if r.kind == "webserver"
        ],
        "workers": [
            _member(r, now - r.heartbeat_at <= other_fresh) for r in records if r.kind == "worker"
        ],
        "triggerers": [
            _member(r, now - r.heartbeat_at <= triggerer_fresh)
            for r in records
            if r.kind == "triggerer"
        ],
        "election": _election(settings, election),
    }


def _scheduler(
    record: ComponentRecord, lease: SchedulerLease | None, *, alive: bool
) -> dict[str, Any]:
    holds_lease = (
        lease is not None and lease.leader_host == record.host and lease.leader_pid == record.pid
    )
    role = "down" if not alive else "leader" if holds_lease else "standby"
    extra = record.extra if isinstance(record.extra, dict) else {}
    return {
        "host": record.host,
        "pid": record.pid,
        "role": role,
        "epoch": lease.epoch if holds_lease and lease is not None else extra.get("epoch"),
        "last_heartbeat": record.heartbeat_at.isoformat(),
    }


def _member(record: ComponentRecord, alive: bool) -> dict[str, Any]:
    return {
        "host": record.host,
        "pid": record.pid,
        "state": record.state if alive else "down",
        "last_heartbeat": record.heartbeat_at.isoformat(),
        "detail": record.extra,
    }


def _election(settings: Settings, view: ElectionView | None) -> dict[str, Any]:
    if view is None:
        return {"kind": settings.ha.election}
    return {
        "kind": "zookeeper",
        "hosts": list(settings.ha.zookeeper_hosts),
        "reachable": view.reachable,
        "holder": view.holder,
        "contenders": list(view.contenders),
        "error": view.error,
    }
