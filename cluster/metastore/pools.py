"""Pools: named slot budgets that task instances share (``default_pool`` always exists)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cluster.errors import NotFoundError, UsageError
from cluster.metastore.models import DEFAULT_POOL, SlotPool, TaskInstance
from cluster.states import OCCUPYING


@dataclass(frozen=True, slots=True)
class PoolRecord:
    pool: str
    slots: int
    description: str | None


def set_pool(
    name: str, slots: int, *, session: Session, description: str | None = None
) -> PoolRecord:
    """Create or resize a pool; shrinking below its occupied slots only delays new tasks.

    :raises UsageError: for a negative number of slots.
    """
    if slots < 0:
        raise UsageError(f"pool '{name}': slots must be 0 or more, got {slots}")
    row = session.get(SlotPool, name)
    if row is None:
        row = SlotPool(pool=name, slots=slots)
        session.add(row)
    row.slots = slots
    if description is not None:
        row.description = description
    session.flush()
    return PoolRecord(row.pool, row.slots, row.description)


def get_pool(name: str, *, session: Session) -> PoolRecord:
    """:raises NotFoundError: when no such pool exists."""
    row = session.get(SlotPool, name)
    if row is None:
        raise NotFoundError(f"pool '{name}' does not exist (tradewind pools set {name} SLOTS)")
    return PoolRecord(row.pool, row.slots, row.description)


def delete_pool(name: str, *, session: Session) -> None:
    """:raises UsageError: for ``default_pool``; :raises NotFoundError: for unknown pools."""
    if name == DEFAULT_POOL:
        raise UsageError(f"'{DEFAULT_POOL}' cannot be deleted (resize it instead)")
    row = session.get(SlotPool, name)
    if row is None:
        raise NotFoundError(f"pool '{name}' does not exist")
    session.delete(row)
    session.flush()


def list_pools(*, session: Session) -> list[PoolRecord]:
    rows = session.scalars(select(SlotPool).order_by(SlotPool.pool))
    return [PoolRecord(r.pool, r.slots, r.description) for r in rows]


def occupied_slots(*, session: Session) -> dict[str, int]:
    """Slots held per pool by queued and running task instances (index ``state, pool``)."""
    statement = (
        select(TaskInstance.pool, func.sum(TaskInstance.pool_slots))
        .where(TaskInstance.state.in_([str(s) for s in OCCUPYING]))
        .group_by(TaskInstance.pool)
    )
    return {pool: int(total or 0) for pool, total in session.execute(statement)}
