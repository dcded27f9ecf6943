"""Registry of running processes (schedulers, webservers, workers, triggerers), heartbeats.

Each process upserts its own row every few seconds; ``/health`` and ``tradewind
status`` list them and judge liveness from ``heartbeat_at``. A process may also record
short fingerprints of the secrets every node must share (``webserver.secret_key``,
``core.fernet_key``): ``tradewind cluster doctor`` compares them with its own, so a
node with another key shows up before its log requests fail with 403 or it cannot
decrypt a connection. A fingerprint is a 12-hex-digit slice of a salted SHA-256: it
tells two keys apart and says nothing of either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.errors import UsageError
from cluster.metastore.models import Component

KINDS = ("scheduler", "webserver", "worker", "triggerer")
#: the key of ``extra`` holding a component's secret fingerprints
FINGERPRINTS = "fingerprints"
#: keeps these digests apart from any other hash of the same secrets
_FINGERPRINT_SALT = b"tradewind-fingerprint-v1\n"


@dataclass(frozen=True, slots=True)
class ComponentRecord:
    id: int
    kind: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    state: str
    extra: Any

    @property
    def fingerprints(self) -> dict[str, str]:
        """The secret fingerprints this process recorded (empty when it recorded none)."""
        found = self.extra.get(FINGERPRINTS) if isinstance(self.extra, dict) else None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def fingerprint(secret: str) -> str:
    """A short digest of ``secret`` that tells keys apart and reveals nothing; ``unset``
    for an empty one. A Fernet key list (during rotation) is fingerprinted whole."""
    if not secret:
        return "unset"
    return hashlib.sha256(_FINGERPRINT_SALT + secret.encode()).hexdigest()[:12]


def settings_fingerprints(settings: Settings) -> dict[str, str]:
    """This process's fingerprints of the secrets every node of the cluster must share."""
    return {
        "secret_key": fingerprint(settings.webserver.secret_key),
        "fernet_key": fingerprint(settings.core.fernet_key),
    }


def heartbeat_component(
    kind: str,
    host: str,
    pid: int,
    *,
    session: Session,
    now: datetime,
    state: str = "running",
    extra: Any = None,
    fingerprints: Mapping[str, str] | None = None,
) -> int:
    """Create or refresh this process's row and return its id.

    Only the process itself writes its row (unique on kind, host, pid), so the
    read-then-write here does not race.

    :param fingerprints: from :func:`settings_fingerprints`, kept in ``extra``.
    """
    if kind not in KINDS:
        raise UsageError(f"unknown component kind '{kind}' (one of {', '.join(KINDS)})")
    row = session.scalars(
        select(Component).where(
            Component.kind == kind, Component.host == host, Component.pid == pid
        )
    ).first()
    if row is None:
        row = Component(kind=kind, host=host, pid=pid, started_at=now)
        session.add(row)
    row.heartbeat_at = now
    row.state = state
    if fingerprints is not None:
        base = extra if extra is not None else row.extra
        extra = {**(base if isinstance(base, dict) else {}), FINGERPRINTS: dict(fingerprints)}
    if extra is not None:
        row.extra = extra
    session.flush()
    return row.id


def list_components(*, session: Session, kind: str | None = None) -> list[ComponentRecord]:
    """Every registered process, newest heartbeat first."""
    statement = select(Component).order_by(Component.heartbeat_at.desc())
    if kind is not None:
        statement = statement.where(Component.kind == kind)
    return [
        ComponentRecord(r.id, r.kind, r.host, r.pid, r.started_at, r.heartbeat_at, r.state, r.extra)
        for r in session.scalars(statement)
    ]


def remove_stale_components(*, session: Session, older_than: datetime) -> int:
    """Forget processes whose last heartbeat is older than ``older_than``."""
    result = session.execute(delete(Component).where(Component.heartbeat_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
