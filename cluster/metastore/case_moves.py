"""MariaDB's and SQLite's form of a batch of try moves: per-try values as ``CASE`` branches.

:func:`cluster.metastore.transitions.move_tries` moves the tries of one group (a run's
unmapped tries, or one mapped task's) in one UPDATE. Here a value that differs from try
to try (a pid, an end date, the try number compared) is a ``CASE`` on the key column
that varies in the group, one ``WHEN`` per try: one statement where an ``executemany``
costs the metastore a statement and a round trip per try. PostgreSQL joins arrays
instead (:mod:`cluster.metastore.array_moves`); both build on
:func:`cluster.metastore.group_update.group_update`, so both keep the same
compare-and-set.

Two things keep the statement small and its texts few:

- a value every try of the group has alike (the target state and try number of a
  batch of claims; a record's target and most of its values) is bound once
  (:func:`alike_values`): the ``CASE`` branches were most of the statement's text and
  parameters, each parameter escaped by the client and parsed by the server;
- the statement is built for a power-of-two number of tries (:func:`padded_size`), so
  a process compiles a handful of texts, not one per batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

from sqlalchemy import Update, bindparam, case

from cluster.metastore.group_update import group_update
from cluster.metastore.models import TASK_INSTANCE

#: the per-try values besides the columns: the try number compared and the target state
#: (no column is named ``try``; ``state`` is never among a move's values)
TRY, TARGET = "try", "state"


def padded_size(n: int) -> int:
    """The number of tries a group's UPDATE is built for: ``n`` rounded up to a power
    of two, the last try repeated to fill it (a key given twice matches its row once,
    and the first ``WHEN`` wins, which has the same values).

    Each size is a statement SQLAlchemy compiles once per process, and compiling one
    with a ``CASE`` per column costs milliseconds: the pump's batches take every size
    from 1 to the pool's, which cost a fresh scheduler about a tenth of its CPU in
    compilations during its first thousand tries.
    """
    return 1 << (n - 1).bit_length()


def per_try_value(move: Any, name: str) -> Any:
    """``name``'s value of ``move`` (a :class:`~cluster.metastore.transitions.TryMove`):
    :data:`TRY`, :data:`TARGET` or a column of its values."""
    if name == TRY:
        return move.try_number
    return str(move.target) if name == TARGET else move.values[name]


def alike_values(group: Sequence[Any], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The per-try values (``columns``, :data:`TRY`, :data:`TARGET`) that every move of
    ``group`` has alike, equal and of one type: each is bound once (``u_<name>``)."""
    if len(group) < 2:
        return ()
    alike = []
    for name in (*columns, TRY, TARGET):
        value = per_try_value(group[0], name)
        kind = type(value)
        if all(type(v := per_try_value(m, name)) is kind and v == value for m in group):
            alike.append(name)
    return tuple(alike)


def case_params(
    varying: str, columns: tuple[str, ...], group: Sequence[Any], size: int, alike: tuple[str, ...]
) -> dict[str, Any]:
    """The per-try parameters of :func:`moves_by_case` for ``group``, padded to ``size``."""
    params = {f"u_{name}": per_try_value(group[0], name) for name in alike}
    varied = [name for name in (*columns, TRY, TARGET) if name not in alike]
    for i, move in enumerate(chain(group, repeat(group[-1], size - len(group)))):
        params[f"t_{i}"] = getattr(move.key, varying)
        params.update({_param(name, i): per_try_value(move, name) for name in varied})
    return params


def _param(name: str, i: int) -> str:
    return {TRY: f"try_{i}", TARGET: f"to_{i}"}.get(name) or f"v_{name}_{i}"


@lru_cache(maxsize=256)
def moves_by_case(
    columns: tuple[str, ...],
    shared: tuple[str, ...],
    if_null: tuple[str, ...],
    expected: str,
    varying: str,
    n: int,
    alike: tuple[str, ...] = (),
) -> Update:
    """The UPDATE of ``n`` tries of one group, every value bound.

    Parameters: ``k_*`` the run and the fixed key column (``map_index`` when ``varying``
    is ``task_id``, else ``task_id``); ``t_<i>``, ``try_<i>`` and ``to_<i>`` each try's
    varying key, try number and target; ``v_<column>_<i>`` its values; ``s_<column>`` the
    shared ones; ``u_<name>`` instead of ``…_<i>`` for the names in ``alike``
    (:func:`case_params` fills them). No name has the form ``<column>_<n>``, which
    SQLAlchemy gives its own.
    """
    c = TASK_INSTANCE.c

    def per_try(name: str, column: str, key: str) -> Any:
        def value(i: int) -> Any:
            return bindparam(f"{name}_{i}", type_=c[column].type)

        if key in alike:
            return bindparam(f"u_{key}", type_=c[column].type)
        if n == 1:
            return value(0)
        return case(*((c[varying] == bindparam(f"t_{i}"), value(i)) for i in range(n)))

    values: dict[str, Any] = {name: per_try(f"v_{name}", name, name) for name in columns}
    values["state"] = per_try("to", "state", TARGET)
    keys: list[Any] = [bindparam(f"t_{i}", type_=c[varying].type) for i in range(n)]
    return group_update(
        varying=varying,
        expected=expected,
        per_try=values,
        shared=shared,
        if_null=if_null,
        key_matches=c[varying] == keys[0] if n == 1 else c[varying].in_(keys),
        try_number=per_try("try", "try_number", TRY),
    )
