"""Which triggerer runs which trigger: claims by compare-and-set, and the rows one holds.

A trigger row is free when ``triggerer_id`` is NULL or names a triggerer that is not
alive: no ``component`` row of kind ``triggerer`` with that id, a heartbeat older than
the health timeout, or ``stopped``. :func:`claim` picks free rows (oldest first, those a
deferred try waits on) and takes each with ``UPDATE … WHERE id IN (…) AND triggerer_id
<=> <the owner it saw>``: when two triggerers race for the rows of a dead one, the row
lock makes the second re-read the row, see the winner's id and leave it, so each trigger
is claimed by one triggerer. The writes of a triggerer (:func:`lock_held`) check again
that it still holds the row, so one whose triggers were taken over while it was cut off
writes nothing for them.

Heartbeat ages compare the claiming triggerer's clock with the clocks of the others
(each writes its own ``heartbeat_at``), as everywhere in the cluster: nodes keep NTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from cluster.metastore.models import Component, TaskInstance, Trigger
from cluster.states import TaskState

#: the ``component.kind`` of triggerers
TRIGGERER = "triggerer"


def live_triggerers(*, now: datetime, health_timeout: float) -> Select[Any]:
    """The ids of the triggerers alive at ``now`` (a subquery)."""
    return select(Component.id).where(
        Component.kind == TRIGGERER,
        Component.state != "stopped",
        Component.heartbeat_at >= now - timedelta(seconds=health_timeout),
    )


def held_ids(session: Session, triggerer_id: int) -> set[int]:
    """The triggers ``triggerer_id`` holds now."""
    return set(session.scalars(select(Trigger.id).where(Trigger.triggerer_id == triggerer_id)))


def claim(
    session: Session,
    triggerer_id: int,
    *,
    room: int,
    now: datetime,
    health_timeout: float,
) -> dict[int | None, int]:
    """Claim up to ``room`` free triggers; return how many were taken from each
    previous owner (``None``: unassigned ones), counting only those this call won."""
    if room <= 0:
        return {}
    alive = live_triggerers(now=now, health_timeout=health_timeout)
    waited_on = exists().where(
        TaskInstance.trigger_id == Trigger.id, TaskInstance.state == str(TaskState.DEFERRED)
    )
    candidates = session.execute(
        select(Trigger.id, Trigger.triggerer_id)
        .where(
            or_(
                Trigger.triggerer_id.is_(None),
                and_(Trigger.triggerer_id != triggerer_id, Trigger.triggerer_id.not_in(alive)),
            ),
            waited_on,
        )
        .order_by(Trigger.id)
        .limit(room)
    ).all()
    by_owner: dict[int | None, list[int]] = {}
    for trigger_id, owner in candidates:
        by_owner.setdefault(owner, []).append(trigger_id)
    won: dict[int | None, int] = {}
    for owner, ids in by_owner.items():
        seen = Trigger.triggerer_id.is_(None) if owner is None else Trigger.triggerer_id == owner
        result = session.execute(
            update(Trigger)
            .where(Trigger.id.in_(ids), seen)
            .values(triggerer_id=triggerer_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        taken = int(getattr(result, "rowcount", 0) or 0)
        if taken:
            won[owner] = taken
    return won


def lock_held(session: Session, triggerer_id: int, ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that ``triggerer_id`` still holds, locked until the transaction
    ends (``FOR UPDATE``; SQLite serializes writers instead), so nobody takes them over
    while their outcome is written."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Trigger.id)
            .where(Trigger.id.in_(wanted), Trigger.triggerer_id == triggerer_id)
            .with_for_update()
        )
    )


def delete_triggers(session: Session, ids: Iterable[int]) -> int:
    """Delete these trigger rows (their outcome was written); return how many."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    result = session.execute(
        delete(Trigger).where(Trigger.id.in_(wanted)).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release(session: Session, triggerer_id: int) -> int:
    """Hand back every trigger of a triggerer that stops cleanly, so the others claim
    them at their next pass instead of after the health timeout."""
    result = session.execute(
        update(Trigger)
        .where(Trigger.triggerer_id == triggerer_id)
        .values(triggerer_id=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count_by_triggerer(session: Session) -> dict[int | None, int]:
    """How many triggers each triggerer holds (``None``: unassigned): for status pages."""
    rows = session.execute(
        select(Trigger.triggerer_id, func.count()).group_by(Trigger.triggerer_id)
    ).all()
    return {owner: int(count) for owner, count in rows}
