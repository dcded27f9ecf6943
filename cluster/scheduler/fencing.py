"""The fencing epoch: the token that keeps an old leader from writing.

The leader increments ``scheduler_lease.epoch`` when it wins and remembers the value.
Every write transaction of the loop first locks the lease row and compares: a paused
or partitioned old leader finds a newer epoch, aborts its transaction and steps down.
With ``ha.election = none`` the single scheduler takes an epoch at start the same way.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import FencedOff
from cluster.metastore.models import SchedulerLease

LEASE_ID = 1


class Fence:
    """This scheduler's epoch, and the check every write transaction makes."""

    def __init__(self, *, host: str, pid: int | None = None) -> None:
        self.host = host
        self.pid = pid if pid is not None else os.getpid()
        self.epoch: int | None = None

    def acquire(self, session: Session, *, now: datetime) -> int:
        """Take the next epoch (the caller commits); the previous leader is fenced off."""
        lease = _locked_lease(session)
        if lease is None:
            lease = SchedulerLease(id=LEASE_ID, epoch=0)
            session.add(lease)
        lease.epoch = (lease.epoch or 0) + 1
        lease.leader_host = self.host
        lease.leader_pid = self.pid
        lease.acquired_at = now
        lease.heartbeat_at = now
        self.epoch = lease.epoch
        return lease.epoch

    def check(self, session: Session, *, now: datetime | None = None) -> int:
        """Lock the lease row and verify the epoch; ``now`` also refreshes its heartbeat.

        :raises FencedOff: another scheduler took a newer epoch (or none was taken).
        """
        lease = _locked_lease(session)
        if self.epoch is None or lease is None or lease.epoch != self.epoch:
            current = lease.epoch if lease else None
            raise FencedOff(f"scheduler epoch {self.epoch} is stale (current epoch {current})")
        if now is not None:
            lease.heartbeat_at = now
        return self.epoch

    def release(self) -> None:
        self.epoch = None


def _locked_lease(session: Session) -> SchedulerLease | None:
    return session.scalars(
        select(SchedulerLease).where(SchedulerLease.id == LEASE_ID).with_for_update()
    ).first()
