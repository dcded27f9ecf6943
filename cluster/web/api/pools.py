"""``/pools``: the slot budgets task instances share (Op and Admin only)."""

from __future__ import annotations

from sqlalchemy import func, select

from cluster.errors import AlreadyExistsError, UsageError
from cluster.metastore import pools as store
from cluster.metastore.models import SlotPool, TaskInstance
from cluster.states import TaskState
from cluster.web.api.admin_schemas import Pool, PoolBody, PoolCollection, PoolPatch
from cluster.web.api.lookups import audit_api, paginate
from cluster.web.api.masks import masked
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import Ordered, UpdateMaskQuery
from cluster.web.context import db_session

routes = Routes("Pool")

OCCUPYING = (TaskState.QUEUED, TaskState.RUNNING)
SCHEDULED = TaskState.SCHEDULED
#: deferred instances hold no slot (``include_deferred`` false), but are counted
DEFERRED = TaskState.DEFERRED


def _usage(names: list[str]) -> dict[tuple[str, str], int]:
    """Slots held by scheduled, queued, running and deferred instances, per ``(pool, state)``."""
    if not names:
        return {}
    statement = (
        select(TaskInstance.pool, TaskInstance.state, func.sum(TaskInstance.pool_slots))
        .where(
            TaskInstance.pool.in_(names),
            TaskInstance.state.in_([*OCCUPYING, SCHEDULED, DEFERRED]),
        )
        .group_by(TaskInstance.pool, TaskInstance.state)
    )
    return {(p, s): int(n or 0) for p, s, n in db_session().execute(statement)}


def pool_models(rows: list[tuple[str, int, str | None]]) -> list[Pool]:
    usage = _usage([name for name, _, _ in rows])
    result = []
    for name, slots, description in rows:
        running = usage.get((name, TaskState.RUNNING), 0)
        queued = usage.get((name, TaskState.QUEUED), 0)
        result.append(
            Pool(
                name=name,
                slots=slots,
                occupied_slots=running + queued,
                running_slots=running,
                queued_slots=queued,
                open_slots=max(slots - running - queued, 0),
                scheduled_slots=usage.get((name, SCHEDULED), 0),
                deferred_slots=usage.get((name, DEFERRED), 0),
                description=description,
                include_deferred=False,
            )
        )
    return result


def refuse_deferred(include_deferred: bool | None) -> None:
    """:raises UsageError: for ``include_deferred: true``: deferred instances never hold slots."""
    if include_deferred:
        raise UsageError("include_deferred is not supported: deferred tasks hold no pool slot")


def _read(name: str) -> Pool:
    record = store.get_pool(name, session=db_session())
    return pool_models([(record.pool, record.slots, record.description)])[0]


def _audit(event: str, name: str, **extra: object) -> None:
    audit_api(f"pools.{event}", session=db_session(), pool=name, **extra)


POOL_ORDER = {"name": SlotPool.pool, "slots": SlotPool.slots, "description": SlotPool.description}


@routes.operation("/pools", "GET", query=Ordered, response=PoolCollection)
def get_pools(*, query: Ordered) -> PoolCollection:
    """List pools with their slot usage, by name (or ``order_by``)."""
    order = order_clauses(query.order_by, POOL_ORDER, default="name", tiebreak=SlotPool.pool)
    statement = select(SlotPool).order_by(*order)
    rows, total = paginate(db_session(), statement, query)
    models = pool_models([(r.pool, r.slots, r.description) for r in rows])
    return PoolCollection(pools=models, total_entries=total)


@routes.operation("/pools/<pool_name>", "GET", response=Pool)
def get_pool(pool_name: str) -> Pool:
    """One pool with its slot usage."""
    return _read(pool_name)


@routes.operation("/pools", "POST", body=PoolBody, response=Pool)
def post_pool(*, body: PoolBody) -> Pool:
    """Create a pool (409 when the name is taken)."""
    refuse_deferred(body.include_deferred)
    session = db_session()
    if session.get(SlotPool, body.name) is not None:
        raise AlreadyExistsError(f"pool '{body.name}' exists already: PATCH it instead")
    store.set_pool(body.name, body.slots, session=session, description=body.description)
    _audit("set", body.name, slots=body.slots)
    return _read(body.name)


@routes.operation(
    "/pools/<pool_name>", "PATCH", query=UpdateMaskQuery, body=PoolPatch, response=Pool
)
def patch_pool(pool_name: str, *, query: UpdateMaskQuery, body: PoolPatch) -> Pool:
    """Resize a pool or change its description; with ``update_mask``, only the fields it
    names (``slots``, ``description``, ``name``, ``include_deferred``) change."""
    refuse_deferred(body.include_deferred)
    if body.name is not None and body.name != pool_name:
        raise UsageError("a pool cannot be renamed: the name in the body must match the path")
    session = db_session()
    current = store.get_pool(pool_name, session=session)
    given = body.model_dump(exclude_unset=True)
    updatable = {"name", "slots", "description", "include_deferred"}
    changes = masked(query.update_mask, given, updatable=updatable)
    slots = current.slots if changes.get("slots") is None else changes["slots"]
    store.set_pool(pool_name, slots, session=session, description=changes.get("description"))
    if "description" in changes and changes["description"] is None:
        row = session.get(SlotPool, pool_name)
        if row is not None:
            row.description = None
    _audit("set", pool_name, slots=slots)
    return _read(pool_name)


@routes.operation("/pools/<pool_name>", "DELETE", status=204)
def delete_pool(pool_name: str) -> None:
    """Delete a pool (``default_pool`` cannot be deleted: 400)."""
    store.delete_pool(pool_name, session=db_session())
    _audit("delete", pool_name)
