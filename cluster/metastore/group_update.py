"""The UPDATE that moves one group's tries, whichever form carries their per-try values.

A group is a run's unmapped tries or one mapped task's: the run and one key column are
fixed, the other key column varies. :mod:`cluster.metastore.case_moves` binds each
try's values as ``CASE`` branches, and on PostgreSQL :mod:`cluster.metastore.array_moves`
joins them from arrays; both must keep the same compare-and-set, so both build their
statement here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Update, bindparam, func, update

from cluster.metastore.models import TASK_INSTANCE


def group_update(
    *,
    varying: str,
    expected: str,
    per_try: Mapping[str, Any],
    shared: tuple[str, ...],
    if_null: tuple[str, ...],
    key_matches: ColumnElement[bool],
    try_number: Any,
) -> Update:
    """Set ``per_try`` (column → each try's expression, the state included), the
    ``shared`` columns to ``s_<column>`` and the ``if_null`` ones to it where still
    null, on the rows of run ``k_dag_id``/``k_run_id`` whose fixed key is ``k_fixed``,
    whose varying key ``key_matches``, still in ``expected`` with ``try_number``."""
    c = TASK_INSTANCE.c
    fixed = "map_index" if varying == "task_id" else "task_id"
    values = dict(per_try)
    values.update({name: bindparam(f"s_{name}", type_=c[name].type) for name in shared})
    for name in if_null:
        values[name] = func.coalesce(c[name], bindparam(f"s_{name}", type_=c[name].type))
    return (
        update(TASK_INSTANCE)
        .where(
            c.dag_id == bindparam("k_dag_id"),
            c.run_id == bindparam("k_run_id"),
            c[fixed] == bindparam("k_fixed", type_=c[fixed].type),
            key_matches,
            c.state == expected,
            c.try_number == try_number,
        )
        .values(values)
    )
