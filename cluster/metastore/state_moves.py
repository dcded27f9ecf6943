"""The statements of :func:`~cluster.metastore.transitions.set_task_states`, built once per shape.

Building an ``UPDATE`` with its ``WHERE`` costs more Python than executing it: the
scheduler moves tries to ``scheduled`` and to ``queued`` in every iteration, so a chain
paid that twice per step. A statement depends only on the shape of a call (the runs
and which key column varies in each, the states expected, the columns set and which of
them are SQL expressions); the keys and values travel as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, func, or_, update

from cluster.metastore.models import TASK_INSTANCE

#: the state as the bulk move tests it: through a function, so no index on ``state`` can
#: serve the test and the keys find the rows by primary key. Without statistics SQLite
#: took ``idx_ti_dag_run_state`` (dag_id, run_id, state) instead and walked every
#: scheduled row of the run to move 32 of them: each iteration of a 10,000-task fan-out
#: cost in proportion to what was left of it (the state is never NULL)
_STATE_OF_ROW = func.coalesce(TASK_INSTANCE.c.state, "")
#: shapes kept; a shape is a few branches and columns, so this bounds a few MiB at most
MAX_SHAPES = 512

#: ``(dag_id, run_id, fixed column, its value) → (varying column, its values)``
Groups = Mapping[tuple[str, str, str, Any], tuple[str, Sequence[Any]]]

_shapes: dict[tuple[Any, ...], tuple[Update, tuple[Any, ...]]] = {}


def states_update(
    groups: Groups,
    sources: Sequence[str],
    assignments: Mapping[str, Any],
    *,
    try_number: int | None,
) -> tuple[Update, dict[str, Any]]:
    """The statement for these keys and columns and its parameters.

    A value that is a SQL expression (``try_number + 1``) is part of the statement, by
    identity: pass a module-level expression, or each call adds a shape.
    """
    expressions = tuple(
        (name, id(value)) for name, value in assignments.items() if isinstance(value, ColumnElement)
    )
    plain = tuple(n for n, v in assignments.items() if not isinstance(v, ColumnElement))
    branches = tuple((fixed, varying) for (_, _, fixed, _), (varying, _) in groups.items())
    key = (branches, tuple(sources), try_number is not None, plain, expressions)
    found = _shapes.get(key)
    if found is None:
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        kept = tuple(v for v in assignments.values() if isinstance(v, ColumnElement))
        found = _shapes[key] = (_build(branches, sources, try_number, assignments), kept)
    params: dict[str, Any] = {f"v_{n}": assignments[n] for n in plain}
    for i, ((dag_id, run_id, _, value), (_, varying)) in enumerate(groups.items()):
        params.update({f"d{i}": dag_id, f"r{i}": run_id, f"f{i}": value, f"in{i}": varying})
    if try_number is not None:
        params["w_try"] = try_number
    return found[0], params


def _build(
    branches: tuple[tuple[str, str], ...],
    sources: Sequence[str],
    try_number: int | None,
    assignments: Mapping[str, Any],
) -> Update:
    where = and_(
        or_(
            *(
                key_branch(
                    fixed,
                    varying,
                    bindparam(f"d{i}"),
                    bindparam(f"r{i}"),
                    bindparam(f"f{i}"),
                    bindparam(f"in{i}", expanding=True),
                )
                for i, (fixed, varying) in enumerate(branches)
            )
        ),
        _STATE_OF_ROW.in_(list(sources)),
    )
    if try_number is not None:
        where = and_(where, TASK_INSTANCE.c.try_number == bindparam("w_try"))
    values = {
        name: value if isinstance(value, ColumnElement) else bindparam(f"v_{name}")
        for name, value in assignments.items()
    }
    return update(TASK_INSTANCE).where(where).values(values)


def key_branch(
    fixed: str, varying: str, dag_id: Any, run_id: Any, value: Any, values: Any
) -> ColumnElement[bool]:
    """The instances of one run whose ``fixed`` key column is ``value`` and whose
    ``varying`` one is among ``values`` (plain values, or bind parameters)."""
    c = TASK_INSTANCE.c
    return and_(c.dag_id == dag_id, c.run_id == run_id, c[fixed] == value, c[varying].in_(values))
