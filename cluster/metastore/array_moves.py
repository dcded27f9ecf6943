"""PostgreSQL's form of a batch of try moves: one UPDATE whatever the number of tries.

:func:`cluster.metastore.transitions.move_tries` moves the tries of one group (a run's
unmapped tries, or one mapped task's) in one UPDATE. Its ``CASE`` form
(:mod:`cluster.metastore.case_moves`) has a branch and bound parameters per try, so its
text grows with the batch; on PostgreSQL each new text costs the whole way down:
SQLAlchemy builds and compiles it (and walks its tree for the cache key on every
execution), psycopg parses its text anew on every execution past 50 parameters, and the
server plans it again. A fan-out's records and claims come in batches of every size, and that was a
third of the scheduler process's CPU in ``bench/run.py --shapes fanout_200``.

Here the per-try values travel as one array per column, joined to the rows with
``unnest``: ``UPDATE task_instance SET … FROM unnest(:keys, :tries, …) AS m(…) WHERE
<run and key> AND state = <expected> AND try_number = m.m_try``. One text per set of
columns, compiled once, parsed once by psycopg and prepared by the server. The compare-
and-set is the same: a row changes only in the expected state with its try's number.
A key given twice still changes its row at most once (an UPDATE changes a row once,
whatever joins it); :func:`move_tries` never passes one twice but optimistically, and
then the count tells it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, Dialect, Float, Update, bindparam, cast, column, func
from sqlalchemy.types import TypeDecorator, TypeEngine

from cluster.metastore.group_update import group_update
from cluster.metastore.models import TASK_INSTANCE

#: the array parameters' names: the varying key, the try number, the target state
KEY, TRY, STATE = "m_key", "m_try", "m_state"


def value_name(column_name: str) -> str:
    """The array parameter (and ``unnest`` column) of a per-try value of ``column_name``."""
    return f"m_v_{column_name}"


@lru_cache(maxsize=64)
def moves_by_array(
    dialect: Dialect,
    columns: tuple[str, ...],
    shared: tuple[str, ...],
    if_null: tuple[str, ...],
    expected: str,
    varying: str,
) -> Update:
    """The UPDATE of any number of tries of one group, PostgreSQL only.

    Parameters: ``k_dag_id``, ``k_run_id`` and ``k_fixed`` (the run and the key column
    that does not vary), ``s_<column>`` the shared values, and one array each of
    :data:`KEY` (``varying``'s values), :data:`TRY`, :data:`STATE` and
    :func:`value_name` of every per-try column, all of one length, each value as the
    column's type makes it for ``dialect`` (:func:`array_params`).
    """
    c = TASK_INSTANCE.c
    per_try = {KEY: c[varying].type, TRY: c.try_number.type, STATE: c.state.type}
    per_try.update({value_name(name): c[name].type for name in columns})
    per_try = {name: _stored(kind, dialect) for name, kind in per_try.items()}
    arrays = [cast(bindparam(name), ARRAY(kind)) for name, kind in per_try.items()]
    moves = (
        func.unnest(*arrays)
        .table_valued(*(column(name, kind) for name, kind in per_try.items()))
        .render_derived(name="m")
    )
    values: dict[str, Any] = {name: moves.c[value_name(name)] for name in columns}
    values["state"] = moves.c[STATE]
    return group_update(
        varying=varying,
        expected=expected,
        per_try=values,
        shared=shared,
        if_null=if_null,
        key_matches=c[varying] == moves.c[KEY],
        try_number=moves.c[TRY],
    )


def array_params(
    dialect: Dialect, varying: str, columns: Sequence[str], moves: Sequence[Any]
) -> dict[str, list[Any]]:
    """The array parameters of :func:`moves_by_array` for ``moves`` (:class:`TryMove`).

    SQLAlchemy does not run a column type's own conversion (a JSON column's dump, a
    timestamp's check) on the items of an array parameter: each value goes through it
    here, as it would as a parameter of its own.
    """
    params: dict[str, list[Any]] = {
        KEY: [getattr(m.key, varying) for m in moves],
        TRY: [m.try_number for m in moves],
        STATE: [str(m.target) for m in moves],
    }
    for name in columns:
        values = [m.values[name] for m in moves]
        convert = _bind_processor(dialect, name)
        params[value_name(name)] = [convert(v) for v in values] if convert else values
    return params


def _stored(kind: TypeEngine[Any], dialect: Dialect) -> TypeEngine[Any]:
    """The database's type under ``kind`` (a decorated type's implementation): the array
    holds values already converted (:func:`array_params`)."""
    impl = kind.dialect_impl(dialect)
    return impl.impl_instance if isinstance(impl, TypeDecorator) else impl


@lru_cache(maxsize=256)
def _bind_processor(dialect: Dialect, name: str) -> Callable[[Any], Any] | None:
    """The column's conversion of a value; for a float column, ints become floats too
    (psycopg refuses a list that mixes them)."""
    kind = TASK_INSTANCE.c[name].type
    if isinstance(kind, Float):
        return _as_float
    return kind.dialect_impl(dialect).bind_processor(dialect)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)
