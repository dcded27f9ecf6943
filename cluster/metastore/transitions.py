"""State changes of task instances and DAG runs, each one compare-and-set.

Every change is one ``UPDATE … WHERE <key> AND state IN (<expected>)``. The database
decides the race: the row changes for exactly one writer, and the others learn it from
a ``False`` (or a smaller count) and back off. Nobody reads a state and writes it back.
``expected`` is checked against :mod:`cluster.states`, so a forbidden move is a bug
that fails loudly even when no row would have matched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.orm import Session

from cluster.errors import InvalidTransition
from cluster.metastore.models import DagRun, TaskInstance
from cluster.states import (
    DAG_RUN_TRANSITIONS,
    DagRunState,
    TaskState,
    sources_of,
)

_NO_VALUES: Mapping[str, Any] = MappingProxyType({})
#: keys per statement in the bulk variant (bounded SQL size, bounded lock footprint)
BULK_CHUNK = 200


@dataclass(frozen=True, slots=True)
class TaskKey:
    """The primary key of a task instance; small, hashable, sent in messages."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


def set_task_state(
    session: Session,
    key: TaskKey,
    target: TaskState,
    *,
    expected: Collection[TaskState] | None = None,
    by_user: bool = False,
    try_number: int | None = None,
    values: Mapping[str, Any] = _NO_VALUES,
) -> bool:
    """Move one task instance to ``target`` if it is in one of ``expected``.

    :param expected: the states it may be in; defaults to every allowed source of
        ``target`` (:func:`cluster.states.sources_of`).
    :param by_user: a user's clear or mark, which may come from any state.
    :param try_number: also require this try (the runner's claim, the zombie reaper):
        a stale message for an older try then changes nothing.
    :param values: other columns to set in the same statement (``start_date``, ...).
    :return: whether the row changed; ``False`` means another writer won or the row
        does not exist, never an error.
    :raises InvalidTransition: when ``expected`` holds a state that may not move to
        ``target``.
    """
    return (
        set_task_states(
            session,
            [key],
            target,
            expected=expected,
            by_user=by_user,
            try_number=try_number,
            values=values,
        )
        == 1
    )


def set_task_states(
    session: Session,
    keys: Iterable[TaskKey],
    target: TaskState,
    *,
    expected: Collection[TaskState] | None = None,
    by_user: bool = False,
    try_number: int | None = None,
    values: Mapping[str, Any] = _NO_VALUES,
) -> int:
    """Move many task instances with one expected set; return how many changed.

    A count below ``len(keys)`` means some were moved by someone else: reload them
    before acting on them (e.g. before sending them to the executor).
    """
    sources = _task_sources(target, expected, by_user)
    assignments = _assignments(TaskInstance, target, values)
    unique = list(dict.fromkeys(keys))
    changed = 0
    for start in range(0, len(unique), BULK_CHUNK):
        chunk = unique[start : start + BULK_CHUNK]
        condition = and_(_keys_clause(chunk), TaskInstance.state.in_([str(s) for s in sources]))
        if try_number is not None:
            condition = and_(condition, TaskInstance.try_number == try_number)
        statement = update(TaskInstance).where(condition).values(assignments)
        result = session.execute(statement.execution_options(synchronize_session=False))
        changed += _rowcount(result)
    return changed


def set_dag_run_state(
    session: Session,
    dag_id: str,
    run_id: str,
    target: DagRunState,
    *,
    expected: Collection[DagRunState] | None = None,
    by_user: bool = False,
    values: Mapping[str, Any] = _NO_VALUES,
) -> bool:
    """Move one DAG run to ``target`` if it is in one of ``expected``.

    :param expected: defaults to every state of :data:`cluster.states.DAG_RUN_TRANSITIONS`
        that may move to ``target``; with ``by_user`` any other state (mark a failed
        run successful).
    :return: whether the row changed.
    :raises InvalidTransition: when ``expected`` holds a forbidden source.
    """
    allowed = dag_run_sources_of(target, by_user=by_user)
    sources = allowed if expected is None else frozenset(DagRunState(s) for s in expected)
    if not sources <= allowed:
        bad = ", ".join(sorted(sources - allowed))
        raise InvalidTransition(f"DAG run cannot move from {bad} to {target!s}")
    statement = (
        update(DagRun)
        .where(
            DagRun.dag_id == dag_id,
            DagRun.run_id == run_id,
            DagRun.state.in_([str(s) for s in sources]),
        )
        .values(_assignments(DagRun, target, values))
    )
    result = session.execute(statement.execution_options(synchronize_session=False))
    return _rowcount(result) == 1


def dag_run_sources_of(target: DagRunState, *, by_user: bool = False) -> frozenset[DagRunState]:
    """Every state from which a DAG run may move to ``target``."""
    if by_user:
        return frozenset(DagRunState) - {target}
    return frozenset(s for s, targets in DAG_RUN_TRANSITIONS.items() if target in targets)


def _task_sources(
    target: TaskState, expected: Collection[TaskState] | None, by_user: bool
) -> frozenset[TaskState]:
    allowed = sources_of(target, by_user=by_user)
    if expected is None:
        return allowed
    sources = frozenset(TaskState(s) for s in expected)
    if not sources:
        raise InvalidTransition(f"no expected state given for a move to {target!s}")
    if not sources <= allowed:
        bad = ", ".join(sorted(sources - allowed))
        raise InvalidTransition(f"task instance cannot move from {bad} to {target!s}")
    return sources


def _assignments(model: type[Any], target: str, values: Mapping[str, Any]) -> dict[str, Any]:
    columns = model.__table__.columns
    unknown = [name for name in values if name not in columns]
    if unknown:
        raise ValueError(f"{model.__tablename__} has no column {', '.join(unknown)}")
    if "state" in values:
        raise ValueError("pass the new state as target, not in values")
    return {**values, "state": str(target)}


def _keys_clause(keys: list[TaskKey]) -> ColumnElement[bool]:
    # OR of ANDs rather than a row-value IN: both SQLite and MySQL use the primary key
    return or_(
        *(
            and_(
                TaskInstance.dag_id == k.dag_id,
                TaskInstance.run_id == k.run_id,
                TaskInstance.task_id == k.task_id,
                TaskInstance.map_index == k.map_index,
            )
            for k in keys
        )
    )


def _rowcount(result: Any) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if count is not None and count >= 0 else 0
