"""``GET /health``: can this webserver reach the metastore, and who leads the schedulers.

HAProxy calls it to take a webserver out of rotation: 200 when the metastore
answers, 503 (still with JSON detail) when it does not. It needs no login and reads
the one ``scheduler_lease`` row, whose heartbeat tells whether a leader is active.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cluster.metastore.models import SchedulerLease
from cluster.web.context import web_context

#: a leader whose heartbeat is older than this many scheduler heartbeats is unhealthy
STALE_HEARTBEATS = 10
MIN_STALE_SECONDS = 30.0

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """200 with the scheduler's state when the metastore answers, else 503."""
    body, healthy = check_health()
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
    return response


def check_health() -> tuple[dict[str, Any], bool]:
    """The health document and whether the metastore answered.

    Uses a session of its own, never the request's, so a broken metastore cannot
    leave a half-used session behind.
    """
    context = web_context()
    try:
        with context.session_factory() as session:
            lease = session.scalar(select(SchedulerLease).where(SchedulerLease.id == 1))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return {
            "metastore": {"status": "unhealthy", "detail": detail},
            "scheduler": {"status": "unknown"},
        }, False
    threshold = max(
        MIN_STALE_SECONDS, STALE_HEARTBEATS * context.settings.scheduler.heartbeat_interval
    )
    scheduler = scheduler_status(lease, now=context.clock(), threshold=threshold)
    return {"metastore": {"status": "healthy"}, "scheduler": scheduler}, True


def scheduler_status(
    lease: SchedulerLease | None, *, now: datetime, threshold: float
) -> dict[str, Any]:
    """``healthy`` when a leader heartbeat is fresher than ``threshold`` seconds."""
    if lease is None or lease.heartbeat_at is None:
        return {"status": "unknown", "leader": None, "epoch": 0, "latest_heartbeat": None}
    fresh = now - lease.heartbeat_at <= timedelta(seconds=threshold)
    return {
        "status": "healthy" if fresh else "unhealthy",
        "leader": lease.leader_host,
        "epoch": lease.epoch,
        "latest_heartbeat": lease.heartbeat_at.isoformat(),
    }
