"""The fencing epoch: the token that keeps an old leader from writing.

The leader increments ``scheduler_lease.epoch`` when it wins and remembers the value.
Every write transaction of the loop first updates the lease row where the epoch is
still its own, which locks the row and compares in one statement: a paused
or partitioned old leader finds a newer epoch, aborts its transaction and steps down.
With ``ha.election = none`` the single scheduler takes an epoch at start the same way.

A frozen leader (SIGSTOP, a long GC pause, a hung VM) may be stopped in the middle of a
transaction that holds the lease row's lock, which would keep the new leader from
taking its epoch. :func:`cluster.metastore.engine.bound_idle_transactions` makes MariaDB and
PostgreSQL end such a transaction.
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from cluster.errors import FencedOff
from cluster.metastore.audit import LEADER_EVENT, record_event
from cluster.metastore.models import SchedulerLease, table_of

LEASE_ID = 1
_LEASE = table_of(SchedulerLease)
#: built once: every iteration of the loop runs it, and building a statement costs more
#: Python than executing it (Core on the session's connection skips the ORM's bulk path)
_BEAT = (
    update(_LEASE)
    .where(_LEASE.c.id == LEASE_ID, _LEASE.c.epoch == bindparam("mine"))
    .values(heartbeat_at=bindparam("now"))
)
_HOLD = (
    update(_LEASE)
    .where(_LEASE.c.id == LEASE_ID, _LEASE.c.epoch == bindparam("mine"))
    .values(heartbeat_at=_LEASE.c.heartbeat_at)
)


class Fence:
    """This scheduler's epoch, and the check every write transaction makes."""

    def __init__(self, *, host: str, pid: int | None = None) -> None:
        self.host = host
        self.pid = pid if pid is not None else os.getpid()
        self.epoch: int | None = None

    def acquire(self, session: Session, *, now: datetime) -> int:
        """Take the next epoch (the caller commits); the previous leader is fenced off.

        The same transaction adds an audit event naming the epoch, host and pid, so the
        history of leaders survives the lease row, which only holds the latest.
        """
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
        record_event(
            LEADER_EVENT,
            session=session,
            extra={"epoch": lease.epoch, "host": self.host, "pid": self.pid},
            now=now,
        )
        return lease.epoch

    def check(self, session: Session, *, now: datetime | None = None) -> int:
        """Lock the lease row and verify the epoch; ``now`` also refreshes its heartbeat.

        One ``UPDATE … WHERE epoch = mine`` does all three: it finds the row only while
        the epoch is ours, and holds its lock until the caller's transaction ends.

        :raises FencedOff: another scheduler took a newer epoch (or none was taken).
        """
        if self.epoch is not None:
            connection = session.connection()
            if now is None:
                result = connection.execute(_HOLD, {"mine": self.epoch})
            else:
                result = connection.execute(_BEAT, {"mine": self.epoch, "now": now})
            if result.rowcount == 1:
                return self.epoch
        current = session.scalar(select(SchedulerLease.epoch).where(SchedulerLease.id == LEASE_ID))
        raise FencedOff(f"scheduler epoch {self.epoch} is stale (current epoch {current})")

    def release(self) -> None:
        self.epoch = None


def _locked_lease(session: Session) -> SchedulerLease | None:
    return session.scalars(
        select(SchedulerLease).where(SchedulerLease.id == LEASE_ID).with_for_update()
    ).first()
