"""State changes of task instances and DAG runs, each one compare-and-set.

Every change is one ``UPDATE … WHERE <key> AND state IN (<expected>)``. The database
decides the race: the row changes for exactly one writer, and the others learn it from
a ``False`` (or a smaller count) and back off. Nobody reads a state and writes it back.
``expected`` is checked against :mod:`cluster.states`, so a forbidden move is a bug
that fails loudly even when no row would have matched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from cluster.errors import InvalidTransition, MetastoreError
from cluster.metastore.array_moves import array_params, moves_by_array
from cluster.metastore.case_moves import alike_values, case_params, moves_by_case, padded_size
from cluster.metastore.engine import SessionFactory, transaction
from cluster.metastore.models import TASK_INSTANCE, DagRun, TaskInstance
from cluster.metastore.state_moves import key_branch, states_update
from cluster.states import (
    DAG_RUN_TRANSITIONS,
    DagRunState,
    TaskState,
    sources_of,
)

T = TypeVar("T")

_NO_VALUES: Mapping[str, Any] = MappingProxyType({})
#: what a user's clear or mark also resets: a deferred try's trigger no longer waits for
#: it (the row goes with ``delete_unused``), and a cleared try starts afresh, not resumed
USER_RESETS: Mapping[str, Any] = MappingProxyType(
    {"trigger_id": None, "trigger_timeout": None, "next_method": None, "next_kwargs": None}
)
#: the try number a queueing sets: one expression, so :func:`set_task_states` builds the
#: queueing's statement once
NEXT_TRY = TASK_INSTANCE.c.try_number + 1
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
    if by_user:
        values = {**USER_RESETS, **values}
    assignments = _assignments(TaskInstance, target, values)
    unique = list(dict.fromkeys(keys))
    session.flush()  # what the ORM's autoflush did: pending rows are seen by the UPDATE
    connection = session.connection()  # Core: the ORM's bulk-update path costs more than the SQL
    states = sorted(str(s) for s in sources)
    changed = 0
    for start in range(0, len(unique), BULK_CHUNK):
        groups = {
            group: (varying, [getattr(k, varying) for k in keys])
            for group, (varying, keys) in key_groups(
                unique[start : start + BULK_CHUNK], _same
            ).items()
        }
        statement, params = states_update(groups, states, assignments, try_number=try_number)
        changed += _rowcount(connection.execute(statement, params))
    return changed


@dataclass(frozen=True, slots=True)
class IfNull:
    """A shared value of :func:`move_tries` set only where the column is still NULL."""

    value: Any


@dataclass(frozen=True, slots=True)
class TryMove:
    """One try to move to ``target``, setting ``values`` (plain values, per try)."""

    key: TaskKey
    try_number: int
    target: TaskState
    values: Mapping[str, Any]


class RaceLost(Exception):
    """An optimistic :func:`move_tries` changed fewer rows than it had moves.

    Not an error: the caller's transaction rolls back and :func:`moves_transaction`
    runs it again with the locking read, which tells the winners from the losers.
    """


def moves_transaction(factory: SessionFactory, fn: Callable[[Session, bool], T], **retry: Any) -> T:
    """Run ``fn(session, optimistic)`` in one :func:`~cluster.metastore.engine.transaction`:
    first optimistic, and once more with the locking read if a move lost its race.

    Nearly every batch of claims or records wins whole, and then the UPDATE alone
    decides it: one round trip instead of a locking read and an UPDATE.
    """
    try:
        return transaction(factory, lambda s: fn(s, True), **retry)
    except RaceLost:
        return transaction(factory, lambda s: fn(s, False), **retry)


def move_tries(
    session: Session,
    moves: Sequence[TryMove],
    *,
    expected: TaskState,
    shared: Mapping[str, Any] = _NO_VALUES,
    optimistic: bool = False,
) -> list[bool]:
    """Move each try that is still in ``expected`` with its own try number; one result per move.

    The runners' claims and records, many at a time: one locking read of the rows, then
    one UPDATE per run and set of columns, whose ``WHERE`` still holds each move's
    compare-and-set. The rows stay locked (MySQL ``FOR UPDATE``, SQLite's write lock
    from ``BEGIN IMMEDIATE``) until commit, so what the read saw is what the UPDATE
    finds. A key given twice wins at most once.

    ``optimistic`` skips the read: the UPDATEs alone decide when every move wins, and
    :class:`RaceLost` says when one did not (run it again without, see
    :func:`moves_transaction`).

    :param shared: columns set alike for every move: plain values, or :class:`IfNull`.
    :raises InvalidTransition: a target that may not follow ``expected``.
    :raises MetastoreError: an UPDATE found fewer rows than the locked read (a bug).
    :raises RaceLost: ``optimistic``, and a move lost.
    """
    for target in {m.target for m in moves}:
        _task_sources(target, [expected], False)
    if len(moves) == 1:  # one compare-and-set decides alone: no read needed
        move = moves[0]
        columns = tuple(sorted(move.values))
        return [_update_each(session, columns, [move], expected=expected, shared=shared) == 1]
    if optimistic:
        changed = sum(
            _update_each(session, columns, group, expected=expected, shared=shared)
            for columns, group in _by_columns(moves).items()
        )
        if changed != len(moves):
            raise RaceLost(f"{changed} of {len(moves)} task instances moved")
        return [True] * len(moves)
    current = current_tries(session, [m.key for m in moves], lock=True)
    won = [current.pop(m.key, None) == (str(expected), m.try_number) for m in moves]
    for columns, group in _by_columns(m for m, ok in zip(moves, won, strict=True) if ok).items():
        changed = _update_each(session, columns, group, expected=expected, shared=shared)
        if changed != len(group):
            raise MetastoreError(f"{len(group)} locked task instances, but {changed} updated")
    return won


def _by_columns(moves: Iterable[TryMove]) -> dict[tuple[str, ...], list[TryMove]]:
    groups: dict[tuple[str, ...], list[TryMove]] = {}
    for move in moves:
        groups.setdefault(tuple(sorted(move.values)), []).append(move)
    return groups


def current_tries(
    session: Session, keys: Sequence[TaskKey], *, lock: bool = False
) -> dict[TaskKey, tuple[str, int]]:
    """``key → (state, try number)`` of these instances; ``lock`` holds their rows
    (``FOR UPDATE``) until the caller's transaction ends. Missing rows are left out."""
    if not keys:
        return {}
    c = TASK_INSTANCE.c
    query = select(c.dag_id, c.run_id, c.task_id, c.map_index, c.state, c.try_number).where(
        keys_clause(keys)
    )
    rows = session.connection().execute(query.with_for_update() if lock else query)
    return {
        TaskKey(r.dag_id, r.run_id, r.task_id, r.map_index): (r.state, r.try_number) for r in rows
    }


def _update_each(
    session: Session,
    columns: tuple[str, ...],
    moves: list[TryMove],
    *,
    expected: TaskState,
    shared: Mapping[str, Any],
) -> int:
    """Every move's compare-and-set in one UPDATE per group of :func:`key_groups` (a
    run's unmapped tries, or one mapped task's); rows changed.

    A per-try value (a pid, an end date, the try number compared) is a ``CASE`` on the
    column that varies in the group (:mod:`cluster.metastore.case_moves`): one statement
    where an ``executemany`` costs the metastore a statement and a round trip per try.
    PostgreSQL gets the per-try values as arrays instead
    (:mod:`cluster.metastore.array_moves`): one statement whatever the number of tries.
    """
    plain = tuple(sorted(n for n, v in shared.items() if not isinstance(v, IfNull)))
    if_null = tuple(sorted(n for n, v in shared.items() if isinstance(v, IfNull)))
    fixed = {f"s_{n}": v.value if isinstance(v, IfNull) else v for n, v in shared.items()}
    _check_columns((*columns, *plain, *if_null))
    connection = session.connection()
    arrays = connection.dialect.name == "postgresql"
    changed = 0
    for (dag_id, run_id, _, value), (varying, group) in key_groups(moves, _move_key).items():
        params = {"k_dag_id": dag_id, "k_run_id": run_id, "k_fixed": value, **fixed}
        if arrays and len(group) > 1:  # one statement for any number of tries
            dialect = connection.dialect
            statement = moves_by_array(dialect, columns, plain, if_null, str(expected), varying)
            params.update(array_params(dialect, varying, columns, group))
            changed += _rowcount(connection.execute(statement, params))
            continue
        alike = alike_values(group, columns)
        size = padded_size(len(group))
        statement = moves_by_case(columns, plain, if_null, str(expected), varying, size, alike)
        params.update(case_params(varying, columns, group, size, alike))
        changed += _rowcount(connection.execute(statement, params))
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


@lru_cache(maxsize=256)
def _check_columns(names: tuple[str, ...]) -> None:
    """Raise unless every name is a ``task_instance`` column other than ``state``: once
    per set of names a batch of moves sets, whichever form carries its values."""
    _assignments(TaskInstance, "", dict.fromkeys(names))


def _assignments(model: type[Any], target: str, values: Mapping[str, Any]) -> dict[str, Any]:
    columns = model.__table__.columns
    unknown = [name for name in values if name not in columns]
    if unknown:
        raise ValueError(f"{model.__tablename__} has no column {', '.join(unknown)}")
    if "state" in values:
        raise ValueError("pass the new state as target, not in values")
    return {**values, "state": str(target)}


def keys_clause(keys: Iterable[TaskKey]) -> ColumnElement[bool]:
    """``WHERE`` these instances: per run, one ``task_id IN (…)`` for the unmapped ones
    and one ``map_index IN (…)`` per mapped task.

    The instances of one call nearly always share a run (and a mapped task's share its
    task id), so this is a few equalities on the leading primary-key columns and one
    expanding ``IN`` each: cheap to build, compiled once whatever the number of keys,
    and a primary-key range scan on SQLite and MySQL. Grouping mapped instances by map
    index instead gave one branch per instance (1,000 for a task mapped 1,000 times).
    """
    branches = [
        key_branch(fixed, varying, dag_id, run_id, value, [getattr(k, varying) for k in group])
        for (dag_id, run_id, fixed, value), (varying, group) in key_groups(keys, _same).items()
    ]
    return or_(*branches)


def key_groups(
    items: Iterable[T], key: Callable[[T], TaskKey]
) -> dict[tuple[str, str, str, Any], tuple[str, list[T]]]:
    """``(dag_id, run_id, fixed column, its value) → (varying column, the items)``.

    Unmapped instances (``map_index < 0``) share ``map_index`` and vary by task id;
    mapped ones share their task id and vary by map index.
    """
    groups: dict[tuple[str, str, str, Any], tuple[str, list[T]]] = {}
    group: tuple[str, str, str, Any]
    for item in items:
        k = key(item)
        if k.map_index < 0:
            group, varying = (k.dag_id, k.run_id, "map_index", k.map_index), "task_id"
        else:
            group, varying = (k.dag_id, k.run_id, "task_id", k.task_id), "map_index"
        groups.setdefault(group, (varying, []))[1].append(item)
    return groups


def _same(key: TaskKey) -> TaskKey:
    return key


def _move_key(move: TryMove) -> TaskKey:
    return move.key


def _rowcount(result: Any) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if count is not None and count >= 0 else 0
